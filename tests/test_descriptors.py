"""A parallel client and the process's limit on open files.

Before connecting, the client counts the descriptors its hosts will hold: a soft limit
that is too low is raised (and logged), a hard limit that is too low refuses the run
before anything connects. Descriptors that still run out during a run (another part of
the program took them) end each host with its output or a typed error naming it, and
nothing hangs.

The client runs in a child process that lowers its own limit (as on the many machines
whose default soft limit is 1,024) before importing pssh. The child prints what each
host ended with, or the error the run raised, as JSON; its log goes to stderr.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import pickle
import resource
import socket
import subprocess
import sys
from typing import Any

import gevent
import pytest
from conftest import NATIVE_ONLY

from pssh.clients.base._descriptors import make_room, open_descriptors
from pssh.exceptions import ConnectionError, OpenFilesLimitError, SSHError

CHILD = """
import json, logging, os, resource, sys
soft, hard, engine, hosts, kwargs, eat = sys.argv[1:7]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1] if hard == "high" else int(hard)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(soft), hard))
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
import importlib
from pssh.clients.base import parallel
from pssh.exceptions import OpenFilesLimitError

if eat != "no":
    # Another part of the program takes descriptors once the check has made room,
    # leaving a few free.
    checked = parallel.make_room
    def make_room_then_eat(*args):
        checked(*args)
        eaten = []
        try:
            while True:
                eaten.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        for fd in eaten[:int(eat)]:
            os.close(fd)
    parallel.make_room = make_room_then_eat

clients = importlib.import_module("pssh.clients." + engine)
client = clients.ParallelSSHClient(json.loads(hosts), **json.loads(kwargs))
try:
    output = client.run_command("echo ok", stop_on_errors=False)
except OpenFilesLimitError as exc:
    print(json.dumps({"refused": str(exc), "errno": exc.errno,
                      "is_os_error": isinstance(exc, OSError),
                      "fields": [exc.hosts, exc.needed, exc.soft_limit, exc.hard_limit]}))
    sys.exit(0)
client.join(output, timeout=60)
print(json.dumps({"soft_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                  "ended": [[out.host, type(out.exception).__name__ if out.exception else None,
                             str(out.exception or ""), out.exit_code] for out in output]}))
"""


def _run_child(engine: Any, hosts: list[str], kwargs: dict[str, Any], soft: int,
               hard: int | str = "high", eat: int | str = "no") -> tuple[dict[str, Any], str]:
    """Run ``CHILD``; what it printed, and its log."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(soft), str(hard),
         engine.__name__.rpartition(".")[2], json.dumps(hosts), json.dumps(kwargs),
         str(eat)], capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return json.loads(result.stdout), result.stderr


@pytest.mark.timeout(180)
def test_a_low_soft_limit_is_raised_and_every_host_succeeds(engine, sshd, client_kwargs):
    hosts = sshd.hosts * 2  # 200 connections for a process allowed 64 open files

    printed, log = _run_child(engine, hosts, {**client_kwargs, "timeout": 30}, soft=64)

    assert [host for host, *_ in printed["ended"]] == hosts
    assert all(error is None and code == 0 for _, error, _, code in printed["ended"]), [
        entry for entry in printed["ended"] if entry[1]][:3]
    assert printed["soft_limit"] > 200
    assert (f"INFO pssh.clients Raised this process's soft limit on open files from 64 to "
            f"{printed['soft_limit']}: 200 hosts to connect") in log


def _listener() -> socket.socket:
    """A loopback listener that never accepts: connections that reach it wait in its
    queue, where the test can count them."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=512)
    listener.setblocking(False)
    return listener


def _connections_made(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.timeout(120)
def test_a_hard_limit_too_low_refuses_before_connecting(engine, client_kwargs):
    listener = _listener()
    try:
        port = listener.getsockname()[1]
        printed, log = _run_child(engine, ["127.0.0.1"] * 200,
                                  {**client_kwargs, "port": port, "timeout": 2},
                                  soft=64, hard=64)
        made = _connections_made(listener)
    finally:
        listener.close()

    assert made == 0, "the client connected before refusing"
    message = printed["refused"]
    assert "200 hosts" in message
    assert "limit is 64 (hard limit 64" in message
    assert "ulimit -n" in message and "fewer hosts" in message and "sharded" in message
    assert printed["errno"] == errno.EMFILE and printed["is_os_error"]
    hosts, needed, soft, hard = printed["fields"]
    assert (hosts, soft, hard) == (200, 64, 64) and needed > 200
    assert f"about {needed} open files" in message
    assert "Raised" not in log


@pytest.mark.timeout(180)
def test_descriptors_running_out_during_a_run_end_each_host_with_output_or_a_named_error(
        engine, sshd, client_kwargs):
    hosts = sshd.hosts * 2
    # Ten at a time, so that some hosts get all they need before the rest run out
    # (libssh's engine needs a second descriptor once connected).
    kwargs = {**client_kwargs, "timeout": 30, "pool_size": 10}

    printed, _ = _run_child(engine, hosts, kwargs, soft=64, eat=40)

    ended = printed["ended"]
    assert [host for host, *_ in ended] == hosts
    succeeded = [host for host, error, _, code in ended if error is None and code == 0]
    failed = [(host, error, message) for host, error, message, _ in ended if error]
    assert succeeded and failed
    for host, error, message in failed:
        assert error == "ConnectionError"
        assert host in message and "file descriptors" in message and "ulimit -n" in message


# --- the parts, in this process ------------------------------------------------------------


def test_open_descriptors_counts_a_file_opened():
    before = open_descriptors()
    with open(os.devnull) as _:
        assert open_descriptors() == before + 1
    assert open_descriptors() == before


def test_more_than_the_hard_limit_is_refused_and_nothing_changes():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this process has no hard limit on open files to exceed")

    with pytest.raises(OpenFilesLimitError) as caught:
        make_room(hard, 7)

    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
    error = caught.value
    assert (error.hosts, error.soft_limit, error.hard_limit) == (7, soft, hard)
    assert error.needed > hard and f"about {error.needed} open files" in str(error)


def test_the_refusal_is_an_os_error_emfile_and_a_connection_error():
    error = OpenFilesLimitError("too many", hosts=3, needed=90, soft_limit=64, hard_limit=64)

    assert isinstance(error, OSError) and error.errno == errno.EMFILE
    assert isinstance(error, ConnectionError) and isinstance(error, SSHError)
    assert error.args == ("too many",)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is OpenFilesLimitError and copy.__dict__ == error.__dict__
    assert copy.errno == errno.EMFILE


def _grown_and_counted(client: Any) -> tuple[int, int]:
    """Descriptors that connecting every host of ``client`` opened, and the count the
    check made beforehand."""
    counted = client._descriptors_to_connect(list(range(len(client.hosts))))
    # gevent makes its event loop's descriptors (epoll, an eventfd) on first use, once
    # per process: the margin's business, not the hosts'.
    gevent.get_hub().threadpool.apply(int)
    # Earlier tests' clients left in reference cycles would close their sockets when the
    # collector happens to run, in the middle of the count: collect them first.
    gc.collect()
    gc.disable()
    try:
        before = open_descriptors()
        gevent.joinall(client.connect_auth(), raise_error=True)
        grown = open_descriptors() - before
    finally:
        gc.enable()
    client.disconnect()
    return grown, counted


def test_the_count_covers_what_connections_hold(engine, hosts, client_kwargs):
    grown, counted = _grown_and_counted(engine.ParallelSSHClient(hosts, **client_kwargs))

    assert len(hosts) <= grown <= counted


@NATIVE_ONLY
def test_the_count_covers_connections_through_a_jump_chain(engine, sshd, hosts,
                                                           client_kwargs):
    chain = f"{sshd.hosts[-1]},{sshd.hosts[-2]}"  # two jump hosts of the same sshd
    client = engine.ParallelSSHClient(hosts, proxy_host=chain, proxy_port=sshd.port,
                                      proxy_user=sshd.user, proxy_pkey=sshd.pkey,
                                      **client_kwargs)

    grown, counted = _grown_and_counted(client)

    assert 2 * len(hosts) <= grown <= counted
