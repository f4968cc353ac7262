"""pssh.distributed on a real Dask cluster: two worker processes on this machine, both
reaching the test sshd's loopback hosts.

One LocalCluster serves the whole module (starting one takes seconds). The test that
kills a worker runs last and leaves the cluster with a worker the nanny made anew.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_names_host, command_line, process_table, signal_all, wait_until
from distributed import Client, LocalCluster

from pssh import distributed as pssh_dask
from pssh.config import HostConfig
from pssh.exceptions import (
    HostArgumentError,
    HostConfigError,
    PKeyFileError,
    RefusedConnectionError,
    Timeout,
    UnknownHostError,
)
from pssh.testing import LocalSSHD


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as local:
        yield local


@pytest.fixture
def dask_client(cluster: LocalCluster) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as client:
        yield client
        pssh_dask.disconnect(client)  # each test starts with no cached connections


def by_position(outcomes: Iterator[pssh_dask.HostOutcome]) -> list[pssh_dask.HostOutcome]:
    """The outcomes in host order, after checking each position came exactly once."""
    listed = list(outcomes)
    positions = sorted(outcome.position for outcome in listed)
    assert positions == list(range(len(listed))), positions
    return sorted(listed, key=lambda outcome: outcome.position)


def client_ports(outcomes: list[pssh_dask.HostOutcome]) -> list[str]:
    """Each host's client-side port, from ``echo $SSH_CONNECTION`` output."""
    return [outcome.stdout[0].split()[1] for outcome in outcomes]


def test_every_host_once_with_its_output_and_exit_code(dask_client, sshd, client_kwargs):
    hosts = sshd.hosts[:6]

    outcomes = by_position(pssh_dask.run_command(
        dask_client, hosts, 'echo "%s $SSH_CONNECTION"; echo oops >&2; exit 3', shards=3,
        host_args=[f"n{index}" for index in range(6)], **client_kwargs))

    assert [outcome.host for outcome in outcomes] == hosts
    for index, outcome in enumerate(outcomes):
        assert outcome.exception is None
        assert outcome.exit_code == 3
        assert outcome.stdout[0].startswith(f"n{index} 127.0.0.1 ")
        assert outcome.stdout[0].endswith(f" {hosts[index]} {sshd.port}")
        assert outcome.stderr == ["oops"]
        assert outcome.worker in dask_client.nthreads()


def test_libssh_engine(dask_client, sshd, client_kwargs):
    outcomes = by_position(pssh_dask.run_command(dask_client, sshd.hosts[:2], "echo libssh",
                                                 engine="ssh", **client_kwargs))

    assert [(outcome.stdout, outcome.exit_code) for outcome in outcomes] == \
        [(["libssh"], 0)] * 2


def test_host_config_reaches_its_host_and_failures_name_theirs(
        dask_client, sshd, client_kwargs, closed_port):
    hosts = [sshd.hosts[0], sshd.hosts[1], "127.0.0.1", "nosuchhost.example", sshd.hosts[2]]
    # The key is a path in one host's HostConfig only: read by the caller, sent as bytes.
    pkey = client_kwargs.pop("pkey")
    with open(pkey, "rb") as key_file:
        client_kwargs["pkey"] = key_file.read()
    config = [HostConfig(private_key=pkey), HostConfig(), HostConfig(port=closed_port),
              HostConfig(), HostConfig()]

    outcomes = by_position(pssh_dask.run_command(
        dask_client, hosts, "echo ok", host_config=config, shards=2, **client_kwargs))

    assert [outcome.host for outcome in outcomes] == hosts
    assert [outcome.stdout for outcome in outcomes] == [["ok"], ["ok"], [], [], ["ok"]]
    refused, unknown = outcomes[2].exception, outcomes[3].exception
    assert isinstance(refused, RefusedConnectionError)
    assert_names_host(refused, "127.0.0.1", closed_port)
    assert isinstance(unknown, UnknownHostError)
    assert_names_host(unknown, "nosuchhost.example")
    assert [outcome.is_ok() for outcome in outcomes] == [True, True, False, False, True]


def test_second_call_reuses_the_workers_connections(dask_client, sshd, client_kwargs):
    hosts = sshd.hosts[:4]

    def run() -> list[pssh_dask.HostOutcome]:
        return by_position(pssh_dask.run_command(dask_client, hosts, "echo $SSH_CONNECTION",
                                                 **client_kwargs))

    first, second = run(), run()
    closed = pssh_dask.disconnect(dask_client)
    third = run()

    assert client_ports(second) == client_ports(first)
    assert closed == 2  # one shard per worker, one client set each
    assert not set(client_ports(third)) & set(client_ports(first))


def test_scheduler_address_instead_of_a_client(cluster, dask_client, sshd, client_kwargs):
    outcomes = by_position(pssh_dask.run_command(cluster.scheduler_address, sshd.hosts[:2],
                                                 "echo hi", **client_kwargs))

    assert [outcome.stdout for outcome in outcomes] == [["hi"], ["hi"]]


def test_join_timeout_keeps_the_lines_read_so_far(dask_client, sshd, client_kwargs):
    outcomes = by_position(pssh_dask.run_command(
        dask_client, sshd.hosts[:2], "echo before; sleep 5; echo after", join_timeout=0.5,
        **client_kwargs))

    for outcome in outcomes:
        assert isinstance(outcome.exception, Timeout)
        assert_names_host(outcome.exception, outcome.host)
        assert outcome.stdout == ["before"]
        assert outcome.exit_code is None


def test_closing_early_cancels_what_is_left(dask_client, sshd, client_kwargs):
    outcomes = pssh_dask.run_command(dask_client, sshd.hosts[:2], "sleep %s; echo done",
                                     shards=2, host_args=["0", "2"], **client_kwargs)

    first = next(outcomes)
    outcomes.close()

    assert (first.position, first.stdout) == (0, ["done"])
    wait_until(lambda: not any(dask_client.processing().values()),
               what="the second shard's task leaving the scheduler")


def test_uploads_and_downloads_per_host(dask_client, sshd, client_kwargs, tmp_path):
    hosts = sshd.hosts[:3]
    source = tmp_path / "source.txt"
    source.write_text("payload\n")
    remote = str(tmp_path / "remote_%s.txt")

    uploaded = by_position(pssh_dask.copy_file(
        dask_client, hosts, str(source), remote, copy_args=[(index,) for index in range(3)],
        **client_kwargs))
    sent = by_position(pssh_dask.scp_send(
        dask_client, hosts, str(source), str(tmp_path / "scp_%s.txt"),
        copy_args=[(index,) for index in range(3)], **client_kwargs))
    downloaded = by_position(pssh_dask.copy_remote_file(
        dask_client, hosts, str(tmp_path / "remote_0.txt"), str(tmp_path / "back"),
        **client_kwargs))
    missing = by_position(pssh_dask.scp_recv(
        dask_client, hosts[:1], str(tmp_path / "nothing_here"), str(tmp_path / "none"),
        **client_kwargs))

    assert [outcome.exception for outcome in uploaded + sent + downloaded] == [None] * 9
    for name in ("remote", "scp"):
        assert [(tmp_path / f"{name}_{index}.txt").read_text() for index in range(3)] == \
            ["payload\n"] * 3
    assert [(tmp_path / f"back_{host}").read_text() for host in hosts] == ["payload\n"] * 3
    assert missing[0].exception is not None
    assert_names_host(missing[0].exception, hosts[0])


def test_bad_arguments_fail_before_anything_is_submitted(dask_client, sshd, client_kwargs):
    hosts = sshd.hosts[:2]

    with pytest.raises(HostArgumentError):
        pssh_dask.run_command(dask_client, hosts, "echo %s", host_args=["one"],
                              **client_kwargs)
    with pytest.raises(HostConfigError):
        pssh_dask.run_command(dask_client, hosts, "true", host_config=[HostConfig()],
                              **client_kwargs)
    with pytest.raises(TypeError):
        pssh_dask.run_command(dask_client, hosts, "true", no_such_setting=1, **client_kwargs)
    with pytest.raises(ValueError, match="shards"):
        pssh_dask.run_command(dask_client, hosts, "true", shards=0, **client_kwargs)
    with pytest.raises(PKeyFileError):
        pssh_dask.copy_file(dask_client, hosts, "/etc/hostname", "/tmp/x",
                            **{**client_kwargs, "pkey": "/nonexistent/key"})
    assert not any(dask_client.processing().values())  # no task was submitted


def test_importing_without_dask(tmp_path):
    # A None entry in sys.modules makes an import fail as if the package were missing.
    script = ("import sys\nsys.modules['distributed'] = None\nimport pssh\n"
              "try:\n    import pssh.distributed\nexcept ImportError as exc:\n"
              "    print(exc)\n")

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})

    assert "pip install 'parallel-ssh[distributed]'" in result.stdout


def _running(sshd: LocalSSHD, text: str) -> list[int]:
    """The pids of the sshd's descendants whose command line holds ``text``."""
    table = process_table()
    tree = list(sshd.pids)
    for pid in tree:
        tree.extend(child for child, parent in table.items() if parent == pid)
    return [pid for pid in tree if text in command_line(pid)]


def test_a_killed_worker_fails_only_its_hosts(dask_client, cluster, sshd, client_kwargs):
    hosts = sshd.hosts[:4]
    pids: dict[str, Any] = dask_client.run(os.getpid)
    first_worker = sorted(pids)[0]  # shard 0 goes to the first worker by address
    long_sleep = "sleep 20.5"  # shard 0's, killed long before it ends

    outcomes = pssh_dask.run_command(dask_client, hosts, "sleep %s; echo done", shards=2,
                                     host_args=["20.5", "20.5", "0.5", "0.5"],
                                     **client_kwargs)
    doomed: list[int] = []  # shells and sleeps the dead connections leave behind
    try:
        wait_until(lambda: [command_line(pid).strip() for pid in _running(sshd, long_sleep)]
                   .count(long_sleep) == 2, timeout=30, what="shard 0's two commands starting")
        doomed = _running(sshd, long_sleep)
        os.kill(pids[first_worker], signal.SIGKILL)
        outcomes_in_order = by_position(outcomes)
    finally:
        signal_all(doomed, signal.SIGKILL)

    for outcome in outcomes_in_order[:2]:
        assert isinstance(outcome.exception, pssh_dask.WorkerLostError)
        assert_names_host(outcome.exception, outcome.host)
        assert outcome.worker != first_worker
    assert [outcome.stdout for outcome in outcomes_in_order[2:]] == [["done"], ["done"]]
    # The nanny starts a new worker; closing the cluster before it is up is slower.
    wait_until(lambda: len(dask_client.nthreads()) == 2, timeout=60, what="a new worker")


def test_a_call_from_an_address_dropped_unread_lets_go_of_its_scheduler_connection(
        cluster, dask_client, sshd, client_kwargs):
    def connected(dask_scheduler) -> list[str]:
        return list(dask_scheduler.clients)
    before = set(dask_client.run_on_scheduler(connected))

    outcomes = pssh_dask.run_command(cluster.scheduler_address, sshd.hosts[:2], "true",
                                     **client_kwargs)
    # Other tests' clients may come and go meanwhile: follow this call's own.
    ours = set(dask_client.run_on_scheduler(connected)) - before
    assert ours
    del outcomes
    gc.collect()

    wait_until(lambda: not ours & set(dask_client.run_on_scheduler(connected)),
               what="the call's own scheduler connection closing", timeout=30)


def test_outcomes_read_in_a_with_block(dask_client, sshd, client_kwargs):
    with pssh_dask.run_command(dask_client, sshd.hosts[:2], "echo hi",
                               **client_kwargs) as outcomes:
        assert sorted(outcome.position for outcome in outcomes) == [0, 1]
