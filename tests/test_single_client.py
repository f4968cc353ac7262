"""SSHClient, the one-host client, against the local sshd, on both engines.

Each test runs as ``[native]`` (libssh2) and ``[ssh]`` (libssh) through the ``engine`` and
``client`` fixtures of conftest.py; the ones marked ``NATIVE_ONLY`` drive ssh2-python's own
channel and session methods. The sshd runs on this machine, so a remote command's files
are local files: the channel tests check what arrived by reading them back here.
"""

from __future__ import annotations

import gc
import os

import gevent
import pytest
from conftest import NATIVE_ONLY, LateRead, assert_names_host, keygen

from pssh.clients import SSHClient
from pssh.clients.native import SSHClient as NativeSSHClient
from pssh.exceptions import AuthenticationError, ConnectionError, SessionError, SSHError, Timeout
from pssh.output import HostOutput

NO_OTHER_METHODS = {"allow_agent": False, "identity_auth": False}


@pytest.fixture
def host(hosts):
    return hosts[0]


def _run(client, command, **kwargs):
    output = client.run_command(command, **kwargs)
    client.wait_finished(output)
    return output


def test_native_import_path_is_the_same_class():
    assert SSHClient is NativeSSHClient


# --- commands and output ---------------------------------------------------------------------


def test_run_command_returns_host_output(client, host):
    output = client.run_command("echo hello")

    assert isinstance(output, HostOutput)
    assert output.host == host
    assert output.client is client
    assert output.exception is None
    assert list(output.stdout) == ["hello"]


def test_exit_code_after_wait_finished(client):
    output = _run(client, "echo out; echo err >&2; exit 4")

    assert output.exit_code == 4
    assert list(output.stdout) == ["out"]
    assert list(output.stderr) == ["err"]


def test_exit_code_after_reading_stdout(client):
    output = client.run_command("seq 1 3; exit 9")

    assert list(output.stdout) == ["1", "2", "3"]
    assert output.exit_code == 9


def test_lines_crlf_empty_lines_and_a_final_partial_line(client):
    output = client.run_command("printf 'one\\n\\nthree\\r\\nno newline'; exit 4")

    assert list(output.stdout) == ["one", "", "three", "no newline"]
    assert output.exit_code == 4


def test_exit_code_is_none_while_running(client):
    output = client.run_command("cat")

    assert output.exit_code is None
    output.stdin.close()
    client.wait_finished(output)
    assert output.exit_code == 0


def test_finished_and_get_exit_status_on_the_channel(client):
    output = client.run_command("cat; exit 6")
    assert client.finished(output.channel) is False

    output.stdin.close()
    client.wait_finished(output)

    assert client.finished(output.channel) is True
    assert client.get_exit_status(output.channel) == 6
    assert output.exit_code == 6


def test_several_commands_on_one_connection(client):
    outputs = [client.run_command(f"echo {number}") for number in range(5)]

    for output in outputs:
        client.wait_finished(output)

    assert [list(output.stdout) for output in outputs] == [[str(n)] for n in range(5)]


@pytest.mark.timeout(60)
def test_concurrent_channels_read_in_reverse_order(client):
    outputs = [client.run_command(f"seq {n} 100000") for n in range(8)]

    counts = [len(list(output.stdout)) for output in reversed(outputs)]

    assert counts == [100001 - n for n in reversed(range(8))]
    assert [output.exit_code for output in outputs] == [0] * 8


def test_concurrent_run_commands_on_one_client_get_their_own_channels(client):
    # Twenty greenlets open channels on one session at once (libssh2 opens channels
    # with one session-wide state machine, so the client makes them take turns).
    starts = [gevent.spawn(client.run_command, f"echo {number}") for number in range(20)]
    gevent.joinall(starts, raise_error=True)
    for number, greenlet in enumerate(starts):
        client.wait_finished(greenlet.value)
        assert list(greenlet.value.stdout) == [str(number)]


@pytest.mark.timeout(120)
def test_output_read_the_moment_commands_start_is_never_missed(engine, hosts, client_kwargs):
    # Reading one stream can make libssh take the other stream's bytes off the socket;
    # a reader that then waited on the socket would sleep through them. Commands read
    # the moment they start hit that now and then, so run a few hundred.
    clients = [engine.SSHClient(host, **client_kwargs) for host in hosts[:3]]
    commands = ["echo out", "echo err >&2", "echo err >&2; echo out", "echo out; echo err >&2"]

    def run(client, command):
        output = client.run_command(command, read_timeout=5)
        return list(output.stdout), list(output.stderr), output.exit_code

    for round_number in range(100):
        command = commands[round_number % len(commands)]
        runs = [gevent.spawn(run, client, command) for client in clients]
        gevent.joinall(runs, raise_error=True)
        expected = (["out"] if "out" in command else [], ["err"] if "err" in command else [], 0)
        assert [each.value for each in runs] == [expected] * len(clients), command
    for client in clients:
        client.disconnect()


class _LateStderrRead:
    """A channel whose first stderr read is held back (see ``conftest.LateRead``)."""

    def __init__(self, channel, late):
        self._channel = channel
        self.late = late

    def __getattr__(self, name):
        return getattr(self._channel, name)

    def read_stderr(self, *args):  # libssh2
        return self.late.run(lambda: self._channel.read_stderr(*args))

    def read_nonblocking(self, size, is_stderr=False):  # libssh
        if not is_stderr:
            return self._channel.read_nonblocking(size, is_stderr)
        return self.late.run(lambda: self._channel.read_nonblocking(size, is_stderr))


def test_output_filed_by_the_stderr_read_is_read_without_waiting_for_the_socket(
        client, tmp_path):
    # The stdout read finds nothing (the command waits for the mark); then the command's
    # line and its end reach the socket before the stderr read, which drains the socket
    # and files them in the library's queue. Nothing more will come on the socket, so a
    # reader that then parked on it would never end.
    mark = tmp_path / "go"
    output = client.run_command(
        f"while [ ! -e {mark} ]; do sleep 0.01; done; echo out", read_timeout=5)
    reader = output.buffers.stdout.reader
    late = LateRead(client, mark.touch)
    reader._channel = _LateStderrRead(reader._channel, late)

    assert list(output.stdout) == ["out"]
    client.wait_finished(output, timeout=5)
    assert output.exit_code == 0
    assert late.took_bytes  # the race was really run


def test_context_manager(engine, host, client_kwargs):
    with engine.SSHClient(host, **client_kwargs) as client:
        output = _run(client, "echo inside")

    assert list(output.stdout) == ["inside"]


def test_alias_is_carried_to_output(engine, host, client_kwargs):
    client = engine.SSHClient(host, alias="web-1", **client_kwargs)

    output = client.run_command("true")

    assert output.alias == "web-1"
    client.disconnect()


# --- timeouts --------------------------------------------------------------------------------


def test_wait_finished_timeout_keeps_output_readable(client):
    output = client.run_command("echo early; sleep 2; echo late")

    with pytest.raises(Timeout):
        client.wait_finished(output, timeout=0.5)
    client.wait_finished(output, timeout=30)

    assert list(output.stdout) == ["early", "late"]
    assert output.exit_code == 0


def test_read_timeout_yields_lines_then_raises(client, host):
    output = client.run_command("echo first; printf partial; sleep 2", read_timeout=0.5)
    stream, lines = output.stdout, []

    with pytest.raises(Timeout) as caught:
        while True:
            lines.append(next(stream))
    client.wait_finished(output)

    assert lines == ["first"]
    assert_names_host(caught.value, host)
    assert list(output.stdout) == ["partial"]
    assert output.exit_code == 0


# --- stdin -----------------------------------------------------------------------------------


def test_stdin_to_cat(client):
    output = client.run_command("cat")

    output.stdin.write("hello\n")
    output.stdin.flush()
    output.stdin.close()

    assert list(output.stdout) == ["hello"]
    client.wait_finished(output)
    assert output.exit_code == 0


def test_large_stdin_round_trip(client):
    # Nothing reads stdin for a moment, so the channel window fills and the write has to
    # wait for the server and resume where it stopped.
    output = client.run_command("sleep 1; wc -l")

    output.stdin.write("line\n" * 1_000_000)  # 5 MB, more than two channel windows
    output.stdin.close()

    assert list(output.stdout) == ["1000000"]
    assert output.exit_code == 0


def test_stdin_of_an_ended_command_raises_naming_the_host(client, host):
    output = client.run_command("true")
    client.wait_finished(output, timeout=10)

    with pytest.raises(SessionError) as failed:
        output.stdin.write("too late\n")

    assert_names_host(failed.value, host)
    output.stdin.close()  # nothing to close any more: no error


# --- command options -------------------------------------------------------------------------


def test_shell_and_quoting(client):
    output = _run(client, "echo \"$0\" 'single' `echo tick`", shell="bash -c")

    assert list(output.stdout) == ["bash single tick"]


def test_latin1_encoding(client):
    output = _run(client, "printf 'caf\\xe9\\n'", encoding="latin-1")

    assert list(output.stdout) == ["café"]


def test_use_pty(client):
    output = _run(client, "tty >/dev/null && echo is-a-tty", use_pty=True)

    assert list(output.stdout) == ["is-a-tty"]
    assert output.exit_code == 0


def test_rsa_key_with_compression(engine, sshd, host, client_kwargs):
    client = engine.SSHClient(host, compress=True, **{**client_kwargs, "pkey": sshd.pkey_rsa})

    assert list(_run(client, "echo rsa; seq 1 1000 | tail -1").stdout) == ["rsa", "1000"]
    client.disconnect()


def test_private_key_given_as_bytes(engine, sshd, host, client_kwargs):
    with open(sshd.pkey, "rb") as key_file:
        kwargs = {**client_kwargs, "pkey": key_file.read()}

    with engine.SSHClient(host, **kwargs) as client:
        assert list(_run(client, "echo bytes").stdout) == ["bytes"]


def test_keepalives_do_not_disturb_commands(engine, host, client_kwargs):
    with engine.SSHClient(host, keepalive_seconds=1, **client_kwargs) as client:
        output = client.run_command("sleep 1.3; echo alive")
        client.wait_finished(output, timeout=10)
        keepalive = client._keepalive

        assert list(output.stdout) == ["alive"]
        assert keepalive is not None and keepalive.active
    assert not keepalive.active  # disconnecting stopped it


def test_disconnect_twice_is_harmless(engine, host, client_kwargs):
    client = engine.SSHClient(host, **client_kwargs)
    _run(client, "true")

    client.disconnect()
    client.disconnect()

    assert host in repr(client)


def test_repr_names_the_host(client, host):
    assert host in repr(client)


# --- errors at connection time ---------------------------------------------------------------


def test_refused_connection_names_host_and_port(engine, client_kwargs, closed_port):
    with pytest.raises(ConnectionError) as refused:
        engine.SSHClient("127.0.0.1", **{**client_kwargs, "port": closed_port})

    assert_names_host(refused.value, "127.0.0.1", closed_port)


@pytest.mark.timeout(60)
def test_black_hole_raises_timeout_naming_host_and_port(engine, client_kwargs, black_hole):
    # The listener never answers: without the 0.5 s this would hang until the mark ends it.
    host, port = black_hole

    with pytest.raises(Timeout) as timed_out:
        engine.SSHClient(host, **{**client_kwargs, "port": port, "timeout": 0.5})

    assert_names_host(timed_out.value, host, port)


def test_garbage_banner_is_an_error_naming_the_host(engine, client_kwargs, garbage_server):
    host, port = garbage_server

    with pytest.raises((SessionError, ConnectionError)) as failed:
        engine.SSHClient(host, **{**client_kwargs, "port": port})

    assert_names_host(failed.value, host, port)


def test_unknown_key_says_what_was_tried(engine, host, client_kwargs, tmp_path):
    stranger = keygen(tmp_path / "stranger")

    with pytest.raises(AuthenticationError) as refused:
        engine.SSHClient(host, **{**client_kwargs, "pkey": stranger, **NO_OTHER_METHODS})

    assert_names_host(refused.value, host)
    assert "private key" in str(refused.value)


def test_no_method_at_all_says_so(engine, host, client_kwargs):
    kwargs = {**client_kwargs, "pkey": None, **NO_OTHER_METHODS}

    with pytest.raises(AuthenticationError, match="no agent, identity file or password"):
        engine.SSHClient(host, **kwargs)


def _open_descriptors():
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def test_no_descriptor_leaks(engine, host, client_kwargs, closed_port, garbage_server):
    def cycle():
        client = engine.SSHClient(host, **client_kwargs)
        output = client.run_command("echo x")
        assert list(output.stdout) == ["x"]
        client.disconnect()
        for port in (closed_port, garbage_server[1]):
            with pytest.raises(SSHError):
                engine.SSHClient("127.0.0.1", **{**client_kwargs, "port": port})

    cycle()  # the hub and its helpers open what they keep for later
    before = _open_descriptors()
    for _ in range(25):
        cycle()

    assert _open_descriptors() == before


# --- native only: ssh2-python's channel and session methods ----------------------------------


@NATIVE_ONLY
def test_eagain_runs_raw_channel_calls(client):
    channel = client.open_session()

    client.eagain(channel.execute, "exit 5")
    client.eagain(channel.wait_eof)
    client.close_channel(channel)
    client.eagain(channel.wait_closed)

    assert client.get_exit_status(channel) == 5


@NATIVE_ONLY
def test_eagain_write_sends_all_data(client, tmp_path):
    target = tmp_path / "written"
    size = 4 * 1024 * 1024  # more than one channel window
    data = bytes(range(256)) * (size // 256)
    channel = client.open_session()
    # Nothing reads for a moment, so the window fills and the write must resume.
    client.eagain(channel.execute, f"sleep 1; cat > {target}")

    client.eagain_write(channel.write, data)
    client.eagain(channel.send_eof)
    client.eagain(channel.wait_eof)
    client.close_channel(channel)
    client.eagain(channel.wait_closed)

    assert client.get_exit_status(channel) == 0
    assert target.stat().st_size == size
    assert target.read_bytes() == data


@NATIVE_ONLY
def test_aes_gcm_is_negotiated_before_chacha20(client):
    # libssh2's chacha20 is several times slower than AES-GCM; OpenSSH offers both.
    from ssh2.session import LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC

    assert client.session.methods(LIBSSH2_METHOD_CRYPT_CS) == "aes128-gcm@openssh.com"
    assert client.session.methods(LIBSSH2_METHOD_CRYPT_SC) == "aes128-gcm@openssh.com"
