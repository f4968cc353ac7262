"""What a user sees when a host cannot be reached, refuses them, or fails mid-command.

The misbehaving peers are real: a closed port, an unresolvable name, a listener that never
speaks, one that sends a garbage banner, a key the server does not know, and sshd children
killed or stopped while a command runs.
"""

from __future__ import annotations

import signal
import socket
import threading

import pytest
from conftest import (
    assert_names_host,
    command_line,
    connection_processes,
    keygen,
    process_table,
    signal_all,
    wait_until,
)

import pssh.exceptions as exc_module
from pssh.clients import ParallelSSHClient, SSHClient
from pssh.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoIPv6AddressFoundError,
    SessionError,
    SSHError,
    Timeout,
    UnknownHostError,
)

UNKNOWN_HOST = "nosuchhost.invalid"
# A loopback address the test sshd does not listen on: connecting to it is refused.
REFUSING_HOST = "127.0.1.1"


@pytest.fixture
def unauthorized_key(tmp_path):
    """A fresh ed25519 key that the test sshd has never seen."""
    return keygen(tmp_path / "stranger")


def _no_fallback_auth(**kwargs):
    """Keep agent and ~/.ssh keys out of authentication so only the given key counts."""
    return {"allow_agent": False, "identity_auth": False, **kwargs}


def _single_error(client):
    with pytest.raises(SSHError) as caught:
        client.run_command("echo unreachable")
    return caught.value


# --- the exception classes ---------------------------------------------------------------

ALL_ERRORS = [
    "SSHError", "UnknownHostError", "ConnectionError", "AuthenticationError", "Timeout",
    "SessionError", "PKeyFileError", "HostArgumentError", "SFTPError", "SFTPIOError",
    "SCPError", "ProxyError", "ShellError", "HostConfigError", "InvalidAPIUseError",
    "NoIPv6AddressFoundError",
]


@pytest.mark.parametrize("name", ALL_ERRORS)
def test_every_error_is_an_ssh_error(name):
    assert issubclass(getattr(exc_module, name), SSHError)


@pytest.mark.parametrize("old, new", [
    ("UnknownHostException", "UnknownHostError"),
    ("ConnectionErrorException", "ConnectionError"),
    ("AuthenticationException", "AuthenticationError"),
    ("SSHException", "SSHError"),
    ("HostArgumentException", "HostArgumentError"),
])
def test_old_names_are_the_same_classes(old, new):
    assert getattr(exc_module, old) is getattr(exc_module, new)


def test_errors_group_by_what_a_caller_can_do():
    assert issubclass(UnknownHostError, ConnectionError)
    assert issubclass(exc_module.NoIPv6AddressFoundError, ConnectionError)
    assert issubclass(exc_module.SFTPIOError, exc_module.SFTPError)


# --- cannot connect ----------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_closed_port(closed_port, client_kwargs):
    client = ParallelSSHClient(["127.0.0.1"], **{**client_kwargs, "port": closed_port})

    error = _single_error(client)

    assert isinstance(error, ConnectionError)
    assert_names_host(error, "127.0.0.1", closed_port)


@pytest.mark.timeout(60)
def test_closed_port_with_retries(engine, closed_port, client_kwargs):
    kwargs = {**client_kwargs, "port": closed_port, "num_retries": 2, "retry_delay": 0.1}

    with pytest.raises(ConnectionError) as caught:
        engine.SSHClient("127.0.0.1", **kwargs)

    assert "127.0.0.1" in str(caught.value)


@pytest.mark.timeout(60)
def test_unknown_host(client_kwargs):
    client = ParallelSSHClient([UNKNOWN_HOST], **client_kwargs)

    error = _single_error(client)

    assert isinstance(error, UnknownHostError)
    assert isinstance(error, ConnectionError)
    assert_names_host(error, UNKNOWN_HOST)


@pytest.mark.timeout(60)
def test_unknown_host_single_client(engine, client_kwargs):
    with pytest.raises(UnknownHostError) as caught:
        engine.SSHClient(UNKNOWN_HOST, **client_kwargs)

    assert UNKNOWN_HOST in str(caught.value)


@pytest.mark.timeout(60)
def test_garbage_banner(garbage_server, client_kwargs):
    host, port = garbage_server
    client = ParallelSSHClient([host], **{**client_kwargs, "port": port})

    error = _single_error(client)

    assert isinstance(error, (SessionError, ConnectionError))
    assert_names_host(error, host, port)


@pytest.fixture
def closes_after_banner():
    """(host, port) of a server that sends an SSH banner, reads the client's first
    packets and hangs up in the middle of the key exchange."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed at teardown
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                conn.settimeout(5)
                try:
                    conn.recv(4096)
                except OSError:
                    pass  # the client gave up first

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    stop.set()
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
    server.close()
    thread.join(timeout=10)


@pytest.mark.timeout(20)
def test_server_hangs_up_mid_key_exchange(engine, closes_after_banner, client_kwargs):
    host, port = closes_after_banner

    with pytest.raises((SessionError, ConnectionError)) as caught:
        engine.SSHClient(host, **{**client_kwargs, "port": port})

    assert_names_host(caught.value, host)


@pytest.mark.timeout(20)
def test_black_hole_times_out(black_hole, client_kwargs):
    host, port = black_hole
    client = ParallelSSHClient([host], **{**client_kwargs, "port": port, "timeout": 1})

    error = _single_error(client)

    assert isinstance(error, (Timeout, ConnectionError))
    assert_names_host(error, host, port)


@pytest.mark.timeout(20)
def test_ipv6_only_with_an_ipv4_host(engine, hosts, client_kwargs):
    with pytest.raises(NoIPv6AddressFoundError) as caught:
        engine.SSHClient(hosts[0], ipv6_only=True, **client_kwargs)

    assert hosts[0] in str(caught.value)


# --- cannot authenticate -----------------------------------------------------------------

@pytest.mark.timeout(60)
def test_unauthorized_key(hosts, client_kwargs, unauthorized_key):
    kwargs = _no_fallback_auth(**{**client_kwargs, "pkey": unauthorized_key})
    client = ParallelSSHClient(hosts[:1], **kwargs)

    error = _single_error(client)

    assert isinstance(error, AuthenticationError)
    assert_names_host(error, hosts[0])


@pytest.mark.timeout(60)
def test_unknown_user(engine, hosts, client_kwargs):
    kwargs = _no_fallback_auth(**{**client_kwargs, "user": "nosuchuser"})

    with pytest.raises(AuthenticationError) as caught:
        engine.SSHClient(hosts[0], **kwargs)

    assert hosts[0] in str(caught.value)


@pytest.mark.timeout(60)
def test_wrong_password(engine, hosts, client_kwargs):
    kwargs = _no_fallback_auth(**{**client_kwargs, "pkey": None, "password": "wrong"})

    with pytest.raises(AuthenticationError) as caught:
        engine.SSHClient(hosts[0], **kwargs)

    assert hosts[0] in str(caught.value)


# --- several hosts, some bad -------------------------------------------------------------

@pytest.fixture
def mixed_hosts(hosts):
    return [hosts[0], REFUSING_HOST, UNKNOWN_HOST, hosts[1]]


@pytest.mark.timeout(60)
def test_stop_on_errors_raises_the_failure(mixed_hosts, client_kwargs):
    client = ParallelSSHClient(mixed_hosts, **client_kwargs)

    with pytest.raises(ConnectionError) as caught:
        client.run_command("true")

    assert caught.value.host in (REFUSING_HOST, UNKNOWN_HOST)


@pytest.mark.timeout(60)
def test_without_stop_on_errors_each_host_reports(mixed_hosts, client_kwargs):
    client = ParallelSSHClient(mixed_hosts, **client_kwargs)

    output = client.run_command("echo fine", stop_on_errors=False)
    client.join(output)

    assert [out.host for out in output] == mixed_hosts
    good, refused, unknown, other_good = output
    assert isinstance(refused.exception, ConnectionError)
    assert isinstance(unknown.exception, UnknownHostError)
    assert REFUSING_HOST in str(refused.exception)
    assert UNKNOWN_HOST in str(unknown.exception)
    assert [refused.exit_code, unknown.exit_code] == [None, None]
    assert [refused.stdin, unknown.stdin] == [None, None]
    assert list(refused.stdout) == []
    for out in (good, other_good):
        assert out.exception is None
        assert list(out.stdout) == ["fine"]
        assert out.exit_code == 0


@pytest.mark.timeout(60)
def test_without_stop_on_errors_auth_failure_is_per_host(sshd, hosts, unauthorized_key):
    client = ParallelSSHClient(hosts[:2], port=sshd.port, user=sshd.user,
                               pkey=unauthorized_key, num_retries=0, timeout=10,
                               allow_agent=False, identity_auth=False)

    output = client.run_command("true", stop_on_errors=False)

    assert all(isinstance(out.exception, AuthenticationError) for out in output)
    assert [out.exception.host for out in output] == hosts[:2]


# --- a server that fails mid-command -----------------------------------------------------

def _connection_processes(sshd_pid, marker):
    """The process tree of the sshd child (of master ``sshd_pid``) whose connection runs
    a command containing ``marker``.

    The marked command should not be the script's last one: bash execs a last command in
    place, and during the exec its command line reads as empty.
    """
    tree = connection_processes(sshd_pid, lambda pid: marker in command_line(pid))
    if tree:
        return tree
    table = process_table()
    anywhere = {pid: _ancestry(table, pid) for pid in table if marker in command_line(pid)}
    raise AssertionError(f"no connection of sshd {sshd_pid} runs {marker!r}; "
                         f"processes running it, with their ancestors: {anywhere}")


def _ancestry(table, pid):
    chain = [(pid, command_line(pid))]
    while table.get(pid, 0) > 1:
        pid = table[pid]
        chain.append((pid, command_line(pid)))
    return chain


def _sleeps(processes, marker):
    """The processes among ``processes`` that run ``sleep <marker>``."""
    return [pid for pid in processes if command_line(pid).split() == ["sleep", marker]]


def _connection_once_sleeping(sshd_pid, marker):
    """The processes of the connection running ``sleep <marker>``, once the sleep runs.

    The shell prints what comes before the sleep before it starts it, and the shell's
    own command line names the sleep too, so the sleep itself is waited for.
    """
    def sleeping():
        try:
            tree = _connection_processes(sshd_pid, f"sleep {marker}")
        except AssertionError:
            return None  # the shell is in the middle of starting it
        return tree if _sleeps(tree, marker) else None

    return wait_until(sleeping, 30, f"the remote 'sleep {marker}'")


def _end_sleep(processes, marker):
    """Kill the remote ``sleep <marker>`` among ``processes``: its script goes on at once
    to the next command, however long the test took to get there."""
    signal_all(_sleeps(processes, marker), signal.SIGKILL)


def _run_and_kill_first_connection(sshd, client, marker):
    """Run a command on every host and kill the connection of the first one mid-command."""
    output = client.run_command("echo started; sleep %s; true", host_args=(marker, "2", "2"))
    assert next(output[0].stdout) == "started"
    signal_all(_connection_once_sleeping(sshd.pid, marker), signal.SIGKILL)
    return output


@pytest.mark.timeout(60)
def test_connection_killed_mid_command(sshd, hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:3], **client_kwargs)
    output = _run_and_kill_first_connection(sshd, client, "29.101")
    broken, others = output[0], output[1:]

    try:
        client.join(output)
    except SSHError as error:
        assert not isinstance(error, Timeout)
        assert error.host == hosts[0]
    client.join(others)

    assert isinstance(broken.exception, SSHError)
    assert broken.exception.host == hosts[0]
    assert broken.exit_code is None
    assert [out.exit_code for out in others] == [0, 0]
    assert [out.exception for out in others] == [None, None]


@pytest.mark.timeout(60)
def test_next_command_after_a_killed_connection_reconnects(sshd, hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:3], **client_kwargs)
    output = _run_and_kill_first_connection(sshd, client, "29.102")
    try:
        client.join(output)
    except SSHError:
        pass  # what the failure looks like is the test above's business

    again = client.run_command("echo again")
    client.join(again)

    assert [list(out.stdout) for out in again] == [["again"]] * 3
    assert [out.exit_code for out in again] == [0] * 3


@pytest.mark.timeout(60)
def test_connection_killed_while_reading_single_client(sshd, hosts, client_kwargs):
    client = SSHClient(hosts[0], **client_kwargs)
    output = client.run_command("echo started; sleep 29.103; true")
    lines = output.stdout
    assert next(lines) == "started"

    signal_all(_connection_once_sleeping(sshd.pid, "29.103"), signal.SIGKILL)
    with pytest.raises((SessionError, ConnectionError)) as caught:
        next(lines)

    assert caught.value.host == hosts[0]
    assert output.exception is caught.value
    assert output.exit_code is None


@pytest.mark.timeout(60)
def test_stopped_server_times_out_then_recovers(sshd, hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:2], **client_kwargs)
    output = client.run_command("echo started; sleep %s; echo done", host_args=("29.202", "0"))
    assert next(output[0].stdout) == "started"
    assert list(output[1].stdout) == ["started", "done"]  # the other host's command ended

    stopped = _connection_once_sleeping(sshd.pid, "29.202")
    signal_all(stopped, signal.SIGSTOP)
    try:
        with pytest.raises(Timeout) as caught:
            client.join(output, timeout=3)
    finally:
        _end_sleep(stopped, "29.202")
        signal_all(stopped, signal.SIGCONT)
    client.join(output)

    assert [out.host for out in caught.value.unfinished_output] == [hosts[0]]
    assert [out.host for out in caught.value.finished_output] == [hosts[1]]
    assert list(output[0].stdout) == ["done"]
    assert [out.exit_code for out in output] == [0, 0]


@pytest.mark.timeout(60)
def test_stopped_server_read_timeout(sshd, hosts, client_kwargs):
    client = SSHClient(hosts[0], **client_kwargs)
    output = client.run_command("echo started; sleep 29.303; echo done", read_timeout=3)
    lines = output.stdout
    assert next(lines) == "started"

    stopped = _connection_once_sleeping(sshd.pid, "29.303")
    signal_all(stopped, signal.SIGSTOP)
    try:
        with pytest.raises(Timeout):
            next(lines)
    finally:
        _end_sleep(stopped, "29.303")
        signal_all(stopped, signal.SIGCONT)
    client.wait_finished(output)

    assert list(output.stdout) == ["done"]
    assert output.exit_code == 0
    client.disconnect()
