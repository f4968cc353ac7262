"""The sharded client against the local sshd: its hosts spread over worker processes,
the caller holding the same objects the one-process client gives.

Worker processes take a moment to start (a fresh interpreter each), so most tests
share one client on seven hosts in three shards (3 + 2 + 2 hosts); the tests that kill
a worker, stop one or need other settings make their own. Waiting is never a sleep: a
command that must still run when the test looks reads its stdin (``read x``), and the
test releases it by writing a line or closing stdin.
"""

from __future__ import annotations

import gc
import inspect
import os
import pickle
import signal

import gevent
import pytest
from conftest import assert_names_host, process_table, wait_for_exit

from pssh import exceptions
from pssh.clients import ParallelSSHClient, ShardedSSHClient
from pssh.config import HostConfig
from pssh.exceptions import (
    BufferFullError,
    ConnectionError,
    HostArgumentError,
    HostKeyError,
    SCPError,
    SFTPError,
    Timeout,
    UnknownHostError,
    WorkerLostError,
)
from pssh.output import HostOutput


@pytest.fixture(scope="module")
def seven(sshd):
    """A sharded client on seven hosts in three workers, shared by the module."""
    client = ShardedSSHClient(sshd.hosts[:7], processes=3, **sshd.client_kwargs())
    yield client
    client.disconnect()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_hosts_keep_their_order_and_exit_codes(seven, sshd):
    hosts = sshd.hosts[:7]
    output = seven.run_command("echo $SSH_CONNECTION %s; echo to-stderr >&2; exit %s",
                               host_args=[(position, position) for position in range(7)])
    seven.join(output)
    assert [host_out.host for host_out in output] == hosts
    for position, host_out in enumerate(output):
        assert isinstance(host_out, HostOutput)
        [line] = list(host_out.stdout)
        assert line.split()[2] == hosts[position]  # the server address it reached
        assert line.endswith(f" {position}")
        assert list(host_out.stderr) == ["to-stderr"]
        assert host_out.exit_code == position
        assert host_out.exception is None
    assert seven.finished(output)


def test_lines_stream_before_the_command_ends(seven):
    output = seven.run_command("echo first; read x; echo second $x")
    for host_out in output:
        lines = host_out.stdout
        assert next(lines) == "first"
        assert host_out.exit_code is None  # still waiting on its stdin
        assert not seven.finished(output)
        host_out.stdin.write(f"from-{host_out.host}\n")
        host_out.stdin.flush()
        assert list(lines) == [f"second from-{host_out.host}"]
        assert host_out.exit_code == 0


def test_stdin_reaches_the_command_and_close_ends_it(seven):
    output = seven.run_command("cat; echo done")
    for host_out in output:
        host_out.stdin.write(b"bytes\n")
        host_out.stdin.write("text\n")
        host_out.stdin.close()
    seven.join(output)
    assert [list(host_out.stdout) for host_out in output] == [["bytes", "text", "done"]] * 7
    with pytest.raises(exceptions.SessionError):
        output[0].stdin.write("too late\n")


def test_large_output_arrives_whole_and_spools_past_the_limit(seven):
    # 1.3 MB per host, 9 MB in all: many frames, the workers' outbox limit, and each
    # stream's 64 KiB buffer_limit in the caller (the rest waits in a temporary file).
    output = seven.run_command("seq 1 200000", buffer_limit=64 * 1024)
    seven.join(output, timeout=120)
    for host_out in output:
        lines = list(host_out.stdout)
        assert len(lines) == 200000
        assert lines[0] == "1" and lines[-1] == "200000"
        assert host_out.exit_code == 0


def test_a_full_buffer_without_spooling_stops_its_host(seven):
    # 15 MB on one host, a 64 KiB limit and no spooling: once the caller's buffer is
    # full the worker stops reading that host, so join raises, nothing more arrives
    # while the caller waits (2 s on stderr, where "done" would come after the 15 MB),
    # and reading the lines lets the command go on to its end.
    output = seven.run_command("%s", host_args=["seq 1 2000000; echo done >&2"] +
                               ["true"] * 6, buffer_limit=64 * 1024, spool_to_disk=False,
                               read_timeout=2)
    with pytest.raises(BufferFullError):
        seven.join(output, timeout=120)
    with pytest.raises(Timeout):
        list(output[0].stderr)
    buffer = output[0].buffers.stdout.rw_buffer
    assert buffer.is_full()
    held = buffer.read()
    assert len(held) < 8 * 1024 * 1024  # of 14.9 MB
    output[0].read_timeout = None
    assert held.count(b"\n") + sum(1 for _ in output[0].stdout) == 2000000
    assert list(output[0].stderr) == ["done"]
    assert output[0].exit_code == 0


def test_polling_finished_sees_commands_end(seven):
    output = seven.run_command("echo one")
    while not seven.finished(output):  # no join: polling alone lets output arrive
        pass
    assert [host_out.exit_code for host_out in output] == [0] * 7


def test_join_lets_other_greenlets_run(seven):
    output = seven.run_command("cat")
    closer = gevent.spawn(lambda: [host_out.stdin.close() for host_out in output])
    seven.join(output, timeout=60)  # would time out if join held the hub
    assert closer.successful()
    assert [host_out.exit_code for host_out in output] == [0] * 7


def test_iter_completed_yields_every_host(seven, sshd):
    output = seven.run_command("exit 4")
    ended = list(seven.iter_completed(output, timeout=30))
    assert sorted(host_out.host for host_out in ended) == sorted(sshd.hosts[:7])
    assert {host_out.exit_code for host_out in ended} == {4}


def test_join_timeout_keeps_what_was_read(seven):
    output = seven.run_command("echo partial; cat")
    assert next(output[0].stdout) == "partial"
    with pytest.raises(Timeout) as raised:
        seven.join(output, timeout=0.3)
    assert output[0] in raised.value.unfinished_output
    for host_out in output:
        host_out.stdin.close()
    seven.join(output, timeout=30, consume_output=True)
    assert [host_out.exit_code for host_out in output] == [0] * 7
    assert list(output[1].stdout) == []  # consumed


def test_read_timeout_on_a_silent_host(seven):
    output = seven.run_command("read x", read_timeout=0.3)
    with pytest.raises(Timeout) as raised:
        list(output[4].stdout)
    assert_names_host(raised.value, output[4].host)
    for host_out in output:
        host_out.stdin.close()
    seven.join(output, timeout=30)


def test_bad_host_args_fail_before_any_host_starts(seven):
    with pytest.raises(HostArgumentError):
        seven.run_command("echo %s", host_args=[1, 2])
    with pytest.raises(HostArgumentError):
        seven.run_command("echo %(name)s", host_args=[{"name": 1}] * 6 + [{}])


def test_errors_cross_typed_and_name_their_host(sshd, closed_port):
    hosts = [sshd.hosts[0], "nosuchhost.example", sshd.hosts[1], sshd.hosts[2]]
    config = [HostConfig(), HostConfig(), HostConfig(port=closed_port, alias="closed"),
              HostConfig(alias="fine")]
    with ShardedSSHClient(hosts, host_config=config, processes=2,
                          **sshd.client_kwargs()) as client:
        output = client.run_command("echo ok", stop_on_errors=False)
        client.join(output)
        assert isinstance(output[1].exception, UnknownHostError)
        assert_names_host(output[1].exception, "nosuchhost.example")
        assert isinstance(output[2].exception, ConnectionError)
        assert isinstance(output[2].exception, ConnectionRefusedError)
        assert_names_host(output[2].exception, sshd.hosts[1], closed_port)
        assert output[2].alias == "closed" and output[3].alias == "fine"
        assert [list(output[i].stdout) for i in (0, 3)] == [["ok"], ["ok"]]
        with pytest.raises(UnknownHostError) as raised:
            client.run_command("echo ok")  # stop_on_errors: the first in host order
        assert raised.value.host == "nosuchhost.example"


def test_host_config_and_repeated_hosts_reach_their_shard(sshd, closed_port):
    hosts = [sshd.hosts[0], sshd.hosts[1], sshd.hosts[0], sshd.hosts[0], sshd.hosts[1]]
    config = [HostConfig(alias=f"h{position}") for position in range(5)]
    config[3] = HostConfig(alias="h3", port=closed_port)
    with ShardedSSHClient(hosts, host_config=config, processes=2,
                          **sshd.client_kwargs()) as client:
        output = client.run_command("echo %s", host_args=range(5), stop_on_errors=False)
        client.join(output)
        assert [host_out.alias for host_out in output] == [f"h{i}" for i in range(5)]
        assert [host_out.host for host_out in output] == hosts
        assert [list(host_out.stdout) for host_out in output] == [
            ["0"], ["1"], ["2"], [], ["4"]]
        assert_names_host(output[3].exception, sshd.hosts[0], closed_port)


def test_copies_both_ways(seven, sshd, tmp_path):
    hosts = sshd.hosts[:7]
    source = tmp_path / "source.txt"
    source.write_bytes(b"payload\n" * 1000)
    for upload, download in (("copy_file", "copy_remote_file"), ("scp_send", "scp_recv")):
        remote = str(tmp_path / f"{upload}-remote-%s")
        results = getattr(seven, upload)(str(source), remote,
                                         copy_args=[(position,) for position in range(7)])
        gevent.joinall(results, raise_error=True)
        for position in range(7):
            assert (tmp_path / f"{upload}-remote-{position}").read_bytes() == \
                source.read_bytes()
        local = str(tmp_path / f"{download}-local")
        results = getattr(seven, download)(str(tmp_path / f"{upload}-remote-0"), local)
        gevent.joinall(results, raise_error=True)
        for host in hosts:
            assert (tmp_path / f"{download}-local_{host}").read_bytes() == \
                source.read_bytes()


def test_copy_progress_reaches_the_caller(seven, sshd, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3000))
    seen = []
    results = seven.copy_file(str(source), str(tmp_path / "up-%s"), copy_args=range(7),
                              progress=lambda *args: seen.append(args))
    gevent.joinall(results, raise_error=True)
    assert {(host, done, total) for host, _, done, total in seen if done == total} == {
        (host, 3000, 3000) for host in sshd.hosts[:7]}


def test_copies_killed_as_they_start_are_stopped(seven, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(8 * 1024 * 1024))
    results = seven.copy_file(str(source), str(tmp_path / "killed-%s"), copy_args=range(7))
    for result in results:
        result.kill(block=True, timeout=30)
    for result in results:
        with pytest.raises(gevent.GreenletExit):
            result.get()


def test_copy_failures_name_their_host(sshd, closed_port, tmp_path):
    config = [HostConfig(), HostConfig(port=closed_port)]
    with ShardedSSHClient(sshd.hosts[:2], host_config=config, processes=2,
                          **sshd.client_kwargs()) as client:
        results = client.copy_remote_file(str(tmp_path / "missing"), str(tmp_path / "x"))
        gevent.joinall(results)
        assert isinstance(results[0].exception, SFTPError)
        assert_names_host(results[0].exception, sshd.hosts[0])
        assert_names_host(results[1].exception, sshd.hosts[1], closed_port)
        with pytest.raises(SCPError):
            gevent.joinall(client.scp_recv(str(tmp_path / "missing"), str(tmp_path / "y"))[:1],
                           raise_error=True)


def test_a_killed_worker_fails_only_its_hosts(sshd):
    hosts = sshd.hosts[:7]
    with ShardedSSHClient(hosts, processes=2, **sshd.client_kwargs()) as client:
        # Shard 0 has hosts 0-3 and finishes; shard 1 (hosts 4-6) waits on stdin.
        output = client.run_command("%s", host_args=["echo ok"] * 4 + ["echo up; read x"] * 3)
        assert next(output[5].stdout) == "up"
        victim = client.worker_pids()[1]
        os.kill(victim, signal.SIGKILL)
        client.join(output, timeout=60)
        for host_out in output[:4]:
            assert host_out.exception is None and host_out.exit_code == 0
        for host_out in output[4:]:
            error = host_out.exception
            assert isinstance(error, WorkerLostError)
            assert_names_host(error, host_out.host)
            assert error.reason == "killed by SIGKILL" and error.exitcode == -signal.SIGKILL
            assert "SIGKILL" in str(error)
            assert host_out.exit_code is None
        assert victim not in process_table()  # reaped, no zombie
        with pytest.raises(WorkerLostError) as raised:
            output[5].stdin.write("to a dead worker\n")
        assert_names_host(raised.value, output[5].host)
        again = client.run_command("echo back")  # a new worker for shard 1
        client.join(again)
        assert [host_out.host for host_out in again] == hosts  # order kept over 2 shards
        assert [list(host_out.stdout) for host_out in again] == [["back"]] * 7
        assert client.worker_pids()[1] not in (None, victim)


def test_disconnect_stops_and_reaps_workers_without_leaking_fds(sshd):
    with ShardedSSHClient(sshd.hosts[:2], processes=2, **sshd.client_kwargs()) as warm:
        warm.join(warm.run_command("true"))  # the hub and its thread pool exist now
    before = _fds()
    client = ShardedSSHClient(sshd.hosts[:2], processes=2, **sshd.client_kwargs())
    output = client.run_command("echo ok; read x")
    pids = client.worker_pids()
    assert len(set(pids)) == 2 and None not in pids
    client.disconnect()
    wait_for_exit([pid for pid in pids if pid is not None])
    table = process_table()
    assert not [pid for pid in pids if pid in table]
    assert client.worker_pids() == [None] * 2
    for host_out in output:  # cut off: their connections closed, or their worker ended
        assert isinstance(host_out.exception, (ConnectionError, WorkerLostError))
        assert_names_host(host_out.exception, host_out.host)
    assert _fds() == before


def test_bad_processes_refused():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError):
            ShardedSSHClient(["127.0.0.2"], processes=bad)


def test_shells_are_refused(seven):
    with pytest.raises(NotImplementedError):
        seven.open_shell()


@pytest.mark.parametrize("error", [
    exceptions.ConnectionError("cannot reach %s", "h", host="h", port=22, reason="refused"),
    exceptions.RefusedConnectionError("refused", host="h", port=2222),
    exceptions.Timeout("slow", host="h", port=22, timeout=1.5),
    HostKeyError("changed", host="h", port=22, reason="changed", key_type="ssh-ed25519",
                 fingerprint="SHA256:x", known_hosts_file="/k", known_hosts_line=3),
    exceptions.HostArgumentKeyError("no key", key="name", host="h"),
    WorkerLostError("gone", host="h", port=22, reason="killed by SIGKILL", exitcode=-9),
], ids=lambda error: type(error).__name__)
def test_exceptions_survive_pickling(error):
    _check_round_trip(error)


@pytest.mark.parametrize("name", [name for name in exceptions.__all__
                                  if isinstance(getattr(exceptions, name), type)])
def test_every_exception_class_survives_pickling(name):
    _check_round_trip(getattr(exceptions, name)("%s failed", "x", host="h", port=2200,
                                                reason="why"))


def _check_round_trip(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.args == error.args and str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_takes_every_parameter_of_the_one_process_client_with_its_default() -> None:
    one = inspect.signature(ParallelSSHClient).parameters
    sharded = inspect.signature(ShardedSSHClient).parameters
    assert {name: parameter.default for name, parameter in one.items()} == {
        name: sharded[name].default for name in one if name in sharded}
    assert set(one) <= set(sharded)


def test_an_output_outlives_its_client_dropped_while_the_command_runs(sshd):
    def start() -> list[HostOutput]:
        client = ShardedSSHClient(sshd.hosts[:2], processes=2, **sshd.client_kwargs())
        return client.run_command("read line; echo got $line")

    output = start()
    gc.collect()
    for host_out in output:
        host_out.stdin.write("it\n")
        host_out.stdin.flush()

    assert [list(host_out.stdout) for host_out in output] == [["got it"]] * 2
    assert [host_out.exception for host_out in output] == [None, None]
