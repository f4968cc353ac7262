"""SSHClient, the one-host client, against the local sshd.

The sshd runs on this machine, so a remote command's files are local files: the channel
tests check what arrived by reading them back here.
"""

from __future__ import annotations

import pytest

from pssh.clients import SSHClient
from pssh.clients.native import SSHClient as NativeSSHClient
from pssh.exceptions import Timeout
from pssh.output import HostOutput


@pytest.fixture
def host(hosts):
    return hosts[0]


@pytest.fixture
def client(host, client_kwargs):
    client = SSHClient(host, **client_kwargs)
    yield client
    client.disconnect()


def _run(client, command, **kwargs):
    output = client.run_command(command, **kwargs)
    client.wait_finished(output)
    return output


def test_native_import_path_is_the_same_class():
    assert SSHClient is NativeSSHClient


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


def test_context_manager(host, client_kwargs):
    with SSHClient(host, **client_kwargs) as client:
        output = _run(client, "echo inside")

    assert list(output.stdout) == ["inside"]


def test_alias_is_carried_to_output(host, client_kwargs):
    client = SSHClient(host, alias="web-1", **client_kwargs)

    output = client.run_command("true")

    assert output.alias == "web-1"
    client.disconnect()


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
    assert caught.value.host == host
    assert host in str(caught.value)
    assert list(output.stdout) == ["partial"]


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


def test_shell_and_quoting(client):
    output = _run(client, "echo \"$0\" 'single' `echo tick`", shell="bash -c")

    assert list(output.stdout) == ["bash single tick"]


def test_latin1_encoding(client):
    output = _run(client, "printf 'caf\\xe9\\n'", encoding="latin-1")

    assert list(output.stdout) == ["café"]


def test_use_pty(client):
    output = _run(client, "tty >/dev/null && echo is-a-tty", use_pty=True)

    assert [line.rstrip("\r") for line in output.stdout] == ["is-a-tty"]
    assert output.exit_code == 0


def test_eagain_runs_raw_channel_calls(client):
    channel = client.open_session()

    client.eagain(channel.execute, "exit 5")
    client.eagain(channel.wait_eof)
    client.close_channel(channel)
    client.eagain(channel.wait_closed)

    assert client.get_exit_status(channel) == 5


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


def test_rsa_key(sshd, host, client_kwargs):
    client = SSHClient(host, **{**client_kwargs, "pkey": sshd.pkey_rsa})

    assert list(_run(client, "echo rsa").stdout) == ["rsa"]
    client.disconnect()


def test_disconnect_twice_is_harmless(host, client_kwargs):
    client = SSHClient(host, **client_kwargs)
    _run(client, "true")

    client.disconnect()
    client.disconnect()

    assert host in repr(client)


def test_repr_names_the_host(client, host):
    assert host in repr(client)


def test_aes_gcm_is_negotiated_before_chacha20(client):
    # libssh2's chacha20 is several times slower than AES-GCM; OpenSSH offers both.
    from ssh2.session import LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC

    assert client.session.methods(LIBSSH2_METHOD_CRYPT_CS) == "aes128-gcm@openssh.com"
    assert client.session.methods(LIBSSH2_METHOD_CRYPT_SC) == "aes128-gcm@openssh.com"


def test_concurrent_run_commands_on_one_client_get_their_own_channels(client):
    # Twenty greenlets open channels on one session at once (libssh2 opens channels
    # with one session-wide state machine, so the client makes them take turns).
    import gevent

    starts = [gevent.spawn(client.run_command, f"echo {number}") for number in range(20)]
    gevent.joinall(starts, raise_error=True)
    for number, greenlet in enumerate(starts):
        client.wait_finished(greenlet.value)
        assert list(greenlet.value.stdout) == [str(number)]
