"""The libssh engine (pssh.clients.ssh) against real sshds.

The shared 100-host sshd serves the command, output, stdin, shell and error cases. A
module sshd of its own trusts a user certificate authority made here with ssh-keygen, so
the certificate tests pass only if the client really offered the certificate: the key it
certifies is in no authorized_keys file. Password and keyboard-interactive logins get a
user with a password and an sshd each that accepts only that method.
"""

from __future__ import annotations

import gc
import inspect
import os
import shutil
import subprocess
import time
from types import SimpleNamespace

import gevent
import pytest

from pssh.clients.base.shell import InteractiveShell
from pssh.clients.ssh import ParallelSSHClient, SSHClient
from pssh.config import HostConfig
from pssh.exceptions import (
    AuthenticationError,
    ConnectionError,
    PKeyFileError,
    SessionError,
    SSHError,
    Timeout,
)
from pssh.testing import LocalSSHD

NO_OTHER_METHODS = {"allow_agent": False, "identity_auth": False}
PASSWORD_USER = "pssh-libsshtest"
PASSWORD = "Libssh-Battery-7"


@pytest.fixture
def client(hosts, client_kwargs):
    client = SSHClient(hosts[0], **client_kwargs)
    yield client
    client.disconnect()


@pytest.fixture
def parallel(hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:3], **client_kwargs)
    yield client
    client.disconnect()


def _keygen(path, key_type="ed25519", passphrase=""):
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-f", str(path)],
                   check=True)
    return str(path)


def _authorize(server, key):
    """Let ``key`` log in to ``server`` (an sshd of this module's own)."""
    with open(os.path.join(server.workdir, "authorized_keys"), "a") as keys:
        with open(key + ".pub") as public:
            keys.write(public.read())


def _assert_names_host(error, host, port=None):
    assert error.host == host
    assert host in str(error)
    if port is not None:
        assert str(port) in str(error)


# --- the API is parallel-ssh's ---------------------------------------------------------------


def test_constructor_parameters_follow_parallel_ssh():
    single = list(inspect.signature(SSHClient).parameters)
    parallel = list(inspect.signature(ParallelSSHClient).parameters)

    assert single[:19] == [
        "host", "user", "password", "port", "pkey", "alias", "cert_file", "num_retries",
        "retry_delay", "allow_agent", "timeout", "identity_auth", "gssapi_auth",
        "gssapi_server_identity", "gssapi_client_identity", "gssapi_delegate_credentials",
        "ipv6_only", "compress", "_auth_thread_pool"]
    assert parallel[:20] == [
        "hosts", "user", "password", "port", "pkey", "cert_file", "num_retries", "timeout",
        "pool_size", "allow_agent", "host_config", "retry_delay", "forward_ssh_agent",
        "gssapi_auth", "gssapi_server_identity", "gssapi_client_identity",
        "gssapi_delegate_credentials", "identity_auth", "ipv6_only", "compress"]


# --- commands and output ---------------------------------------------------------------------


def test_echo_on_ten_hosts(hosts, client_kwargs):
    with ParallelSSHClient(hosts, **client_kwargs) as client:
        output = client.run_command("echo $SSH_CONNECTION | cut -d' ' -f3")
        client.join(output, timeout=30)

    assert [out.host for out in output] == hosts
    assert [list(out.stdout) for out in output] == [[host] for host in hosts]
    assert [out.exit_code for out in output] == [0] * len(hosts)
    assert [out.exception for out in output] == [None] * len(hosts)


def test_lines_exit_code_and_final_partial_line(client):
    output = client.run_command("printf 'one\\n\\nthree\\r\\nno newline'; exit 4")

    assert list(output.stdout) == ["one", "", "three", "no newline"]
    assert output.exit_code == 4


def test_exit_code_is_none_until_the_command_ends(client):
    output = client.run_command("cat; exit 6")

    assert output.exit_code is None
    assert client.finished(output.channel) is False
    output.stdin.close()
    client.wait_finished(output, timeout=10)

    assert output.exit_code == 6
    assert client.finished(output.channel) is True
    assert client.get_exit_status(output.channel) == 6


def test_stderr_is_kept_apart(parallel):
    output = parallel.run_command("echo out; echo err >&2; echo more-err >&2")
    parallel.join(output, timeout=10)

    assert [list(out.stdout) for out in output] == [["out"]] * 3
    assert [list(out.stderr) for out in output] == [["err", "more-err"]] * 3


def test_heavy_stderr_does_not_stall_stdout(client):
    output = client.run_command("seq 1 300000 >&2; echo done")

    assert list(output.stdout) == ["done"]
    assert len(list(output.stderr)) == 300000
    assert output.exit_code == 0


def test_large_output_read_host_by_host(parallel):
    # About 3.9 MB per host; hosts not being read meanwhile wait on their windows.
    output = parallel.run_command("seq 1 600000")

    counts = [sum(1 for _ in out.stdout) for out in output]

    assert counts == [600000] * 3
    assert [out.exit_code for out in output] == [0] * 3


def test_join_reads_large_unread_output(parallel):
    output = parallel.run_command("head -c 3000000 /dev/zero | tr '\\0' x | fold -w 99")
    parallel.join(output, timeout=30)

    assert [out.exit_code for out in output] == [0] * 3
    assert [len(list(out.stdout)) for out in output] == [30304] * 3


def test_concurrent_channels_on_one_connection(client):
    outputs = [client.run_command(f"seq {n} 50000") for n in range(6)]

    counts = [len(list(output.stdout)) for output in reversed(outputs)]

    assert counts == [50001 - n for n in reversed(range(6))]
    assert [output.exit_code for output in outputs] == [0] * 6


def test_concurrent_run_commands_on_one_client(client):
    starts = [gevent.spawn(client.run_command, f"echo {number}") for number in range(10)]
    gevent.joinall(starts, raise_error=True)

    assert [list(start.value.stdout) for start in starts] == [[str(n)] for n in range(10)]


def test_output_read_the_moment_commands_start_is_never_missed(hosts, client_kwargs):
    # Reading one stream can make libssh take the other stream's bytes off the socket;
    # a reader that then waited on the socket would sleep through them. Commands read
    # the moment they start hit that now and then, so run a few hundred.
    clients = [SSHClient(host, **client_kwargs) for host in hosts[:3]]
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


def test_join_timeout_reports_finished_and_unfinished(parallel, hosts):
    output = parallel.run_command("sleep %s; echo woke", host_args=("0", "1.5", "0"))

    with pytest.raises(Timeout) as timed_out:
        parallel.join(output, timeout=0.5)

    assert timed_out.value.unfinished_output == [output[1]]
    assert timed_out.value.finished_output == [output[0], output[2]]
    parallel.join(output, timeout=10)
    assert [list(out.stdout) for out in output] == [["woke"]] * 3
    assert parallel.finished(output)


def test_read_timeout_yields_lines_then_raises(client, hosts):
    output = client.run_command("echo first; printf partial; sleep 1.5", read_timeout=0.5)
    lines = output.stdout
    seen = []

    with pytest.raises(Timeout) as timed_out:
        for line in lines:
            seen.append(line)

    assert seen == ["first"]
    _assert_names_host(timed_out.value, hosts[0])
    client.wait_finished(output, timeout=10)
    assert list(output.stdout) == ["partial"]
    assert output.exit_code == 0


def test_wait_finished_timeout_keeps_output(client):
    output = client.run_command("echo early; sleep 1.5; echo late")

    with pytest.raises(Timeout):
        client.wait_finished(output, timeout=0.5)
    client.wait_finished(output, timeout=10)

    assert list(output.stdout) == ["early", "late"]


def test_use_pty(client):
    output = client.run_command("tty >/dev/null && echo is-a-tty", use_pty=True)

    assert list(output.stdout) == ["is-a-tty"]
    assert output.exit_code == 0


def test_shell_sudo_and_encoding_arguments(client):
    quoted = client.run_command("echo \"$0\" 'single'", shell="bash -c")
    latin1 = client.run_command("printf 'caf\\xe9\\n'", encoding="latin-1")

    assert list(quoted.stdout) == ["bash single"]
    assert list(latin1.stdout) == ["café"]


def test_compression_and_rsa_key(sshd, hosts, client_kwargs):
    kwargs = {**client_kwargs, "pkey": sshd.pkey_rsa}
    with SSHClient(hosts[0], compress=True, **kwargs) as client:
        output = client.run_command("seq 1 1000 | tail -1")

        assert list(output.stdout) == ["1000"]


def test_private_key_given_as_bytes(sshd, hosts, client_kwargs):
    with open(sshd.pkey, "rb") as key_file:
        kwargs = {**client_kwargs, "pkey": key_file.read()}
    with SSHClient(hosts[0], **kwargs) as client:
        assert list(client.run_command("echo bytes").stdout) == ["bytes"]


# --- stdin --------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["single", "parallel"])
def test_closing_stdin_lets_cat_finish(make, client, parallel):
    outputs = [client.run_command("cat")] if make == "single" else parallel.run_command("cat")
    for output in outputs:
        output.stdin.write("line one\n")
        output.stdin.write(b"line two\n")
        output.stdin.flush()
        output.stdin.close()
    for output in outputs:
        output.client.wait_finished(output, timeout=10)

    assert [list(out.stdout) for out in outputs] == [["line one", "line two"]] * len(outputs)
    assert [out.exit_code for out in outputs] == [0] * len(outputs)


def test_wait_finished_with_stdin_open_times_out(client):
    output = client.run_command("cat")

    with pytest.raises(Timeout):
        client.wait_finished(output, timeout=0.5)
    output.stdin.close()
    client.wait_finished(output, timeout=10)
    assert output.exit_code == 0


def test_stdin_larger_than_the_channel_window(client):
    # Nothing reads stdin for a second, so the window closes and the write must wait
    # for the server to open it again.
    output = client.run_command("sleep 1; wc -l")

    output.stdin.write("line\n" * 1_000_000)  # 5 MB, more than two windows
    output.stdin.close()

    assert list(output.stdout) == ["1000000"]
    assert output.exit_code == 0


def test_stdin_of_an_ended_command_raises_naming_the_host(client, hosts):
    output = client.run_command("true")
    client.wait_finished(output, timeout=10)

    with pytest.raises(SessionError) as failed:
        output.stdin.write("too late\n")

    _assert_names_host(failed.value, hosts[0])
    output.stdin.close()  # nothing to close any more: no error


def test_eagain_write_and_raw_channels(client, tmp_path):
    target = tmp_path / "written"
    data = bytes(range(256)) * 12288  # 3 MB, more than one window
    channel = client.open_session()
    client.eagain(channel.request_exec, f"sleep 0.5; cat > {target}")

    client.eagain_write(channel.write, data)
    client.close_channel(channel)

    for _ in range(100):
        if target.exists() and target.stat().st_size == len(data):
            break
        gevent.sleep(0.05)
    assert target.read_bytes() == data
    with pytest.raises(TypeError):
        client.eagain_write(print, b"x")


# --- interactive shells -------------------------------------------------------------------------


def test_shell_runs_commands_in_one_session(client):
    with client.open_shell() as shell:
        shell.run("cd /tmp")
        shell.run("pwd")
        shell.run("echo oops >&2")
        shell.run("(exit 3)")

    assert isinstance(shell, InteractiveShell)
    assert list(shell.stdout) == ["/tmp"]
    assert list(shell.stderr) == ["oops"]
    assert shell.exit_code == 3


def test_shell_output_while_it_runs(client):
    shell = client.open_shell(read_timeout=5)
    shell.run("echo first")

    assert next(iter(shell.stdout)) == "first"
    shell.run("echo second")
    shell.close()
    assert list(shell.stdout) == ["second"]


def test_parallel_shells(parallel, hosts):
    shells = parallel.open_shell()
    parallel.run_shell_commands(shells, ["cd /", "echo $SSH_CONNECTION | cut -d' ' -f3"])
    parallel.run_shell_commands(shells, "pwd")
    parallel.join_shells(shells, timeout=10)

    assert [list(shell.stdout) for shell in shells] == [[host, "/"] for host in hosts[:3]]
    assert [shell.exit_code for shell in shells] == [0, 0, 0]


def test_join_shells_timeout_lists_the_unfinished(parallel):
    shells = parallel.open_shell()
    parallel.run_shell_commands(shells[:1], "sleep 30")

    with pytest.raises(Timeout) as timed_out:
        parallel.join_shells(shells, timeout=0.5)

    assert timed_out.value.unfinished_output == shells[:1]
    assert timed_out.value.finished_output == shells[1:]


# --- errors ---------------------------------------------------------------------------------------


def test_refused_connection_names_host_and_port(client_kwargs, closed_port):
    with pytest.raises(ConnectionError) as refused:
        SSHClient("127.0.0.1", **{**client_kwargs, "port": closed_port})

    _assert_names_host(refused.value, "127.0.0.1", closed_port)


def test_black_hole_times_out_within_the_timeout(client_kwargs, black_hole):
    host, port = black_hole
    started = time.monotonic()

    with pytest.raises(Timeout) as timed_out:
        SSHClient(host, **{**client_kwargs, "port": port, "timeout": 0.5})

    _assert_names_host(timed_out.value, host, port)
    assert time.monotonic() - started < 5  # the 0.5 s, not the 10 s of client_kwargs


def test_garbage_banner_is_an_error_naming_the_host(client_kwargs, garbage_server):
    host, port = garbage_server

    with pytest.raises(SSHError) as failed:
        SSHClient(host, **{**client_kwargs, "port": port})

    assert not isinstance(failed.value, Timeout)
    _assert_names_host(failed.value, host, port)


def test_unknown_key_says_what_was_tried(hosts, client_kwargs, tmp_path):
    stranger = _keygen(tmp_path / "stranger")

    with pytest.raises(AuthenticationError) as refused:
        SSHClient(hosts[0], **{**client_kwargs, "pkey": stranger})

    _assert_names_host(refused.value, hosts[0])
    assert "private key" in str(refused.value)


def test_no_method_at_all_says_so(hosts, client_kwargs):
    kwargs = {**client_kwargs, "pkey": None, **NO_OTHER_METHODS}

    with pytest.raises(AuthenticationError, match="no agent, identity file or password"):
        SSHClient(hosts[0], **kwargs)


def test_parallel_errors_stay_on_their_host(hosts, client_kwargs, closed_port):
    config = [HostConfig(), HostConfig(port=closed_port)]
    client = ParallelSSHClient(hosts[:2], host_config=config, **client_kwargs)

    output = client.run_command("echo fine", stop_on_errors=False)
    client.join(output, timeout=10)

    assert list(output[0].stdout) == ["fine"]
    assert isinstance(output[1].exception, ConnectionError)
    _assert_names_host(output[1].exception, hosts[1], closed_port)
    with pytest.raises(ConnectionError):
        client.run_command("echo again")
    client.disconnect()


def test_connection_lost_mid_command_then_reconnects(parallel, hosts):
    # Killing the command's parent, the sshd process serving the connection, drops it.
    # (The pause keeps "started" apart from the failure: libssh drops output that
    # arrives in the same read as a broken connection.)
    output = parallel.run_command("echo started; sleep 0.3; %s; echo rest",
                                  host_args=("kill -9 $PPID", "true", "true"))
    lines = output[0].stdout

    assert next(lines) == "started"
    with pytest.raises((ConnectionError, SessionError)) as lost:
        next(lines)
    parallel.join(output, timeout=10)

    _assert_names_host(lost.value, hosts[0])
    assert output[0].exception is lost.value
    assert output[0].exit_code is None
    assert [list(out.stdout) for out in output[1:]] == [["started", "rest"]] * 2
    again = parallel.run_command("echo again")
    parallel.join(again, timeout=10)
    assert [list(out.stdout) for out in again] == [["again"]] * 3


# --- what the libssh engine does not do -----------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda c: c.copy_file("a", "b"), lambda c: c.copy_remote_file("a", "b"),
    lambda c: c.scp_send("a", "b"), lambda c: c.scp_recv("a", "b"),
    lambda c: c.sftp_put(None, "a", "b"), lambda c: c.sftp_get(None, "a", "b"),
    lambda c: c.mkdir(None, "a"), lambda c: c.make_sftp()])
def test_file_copies_name_the_native_client(client, call):
    with pytest.raises(NotImplementedError, match="pssh.clients.native"):
        call(client)


@pytest.mark.parametrize("method", ["copy_file", "copy_remote_file", "scp_send", "scp_recv"])
def test_parallel_file_copies_raise_at_once(parallel, method):
    with pytest.raises(NotImplementedError, match="pssh.clients.native"):
        getattr(parallel, method)("a", "b")


@pytest.mark.parametrize("make", [SSHClient, ParallelSSHClient])
@pytest.mark.parametrize("option", [{"proxy_host": "bastion"}, {"forward_ssh_agent": True}])
def test_proxies_and_agent_forwarding_are_refused_before_connecting(make, option,
                                                                    client_kwargs,
                                                                    closed_port):
    target = "127.0.0.1" if make is SSHClient else ["127.0.0.1"]
    kwargs = {**client_kwargs, "port": closed_port, **option}

    with pytest.raises(NotImplementedError) as refused:
        make(target, **kwargs)

    assert "native" in str(refused.value) or "ssh -A" in str(refused.value)


@pytest.mark.parametrize("option", [{"proxy_host": "bastion"}, {"forward_ssh_agent": True}])
def test_host_config_asking_for_a_proxy_or_forwarding_names_the_host(option, client_kwargs,
                                                                     closed_port):
    config = [HostConfig(), HostConfig(**option)]

    with pytest.raises(NotImplementedError, match="127.0.0.3"):
        ParallelSSHClient(["127.0.0.2", "127.0.0.3"], host_config=config,
                          **{**client_kwargs, "port": closed_port})


def test_cert_file_is_checked_before_connecting(client_kwargs, closed_port, tmp_path):
    kwargs = {**client_kwargs, "port": closed_port}

    with pytest.raises(PKeyFileError):
        SSHClient("127.0.0.1", cert_file=str(tmp_path / "missing-cert.pub"), **kwargs)
    with pytest.raises(ValueError, match="needs pkey"):
        SSHClient("127.0.0.1", cert_file=client_kwargs["pkey"] + ".pub",
                  **{**kwargs, "pkey": None})


# --- HostConfig ---------------------------------------------------------------------------------


def test_per_host_port_user_and_key_override_the_client(sshd, hosts, closed_port):
    config = [HostConfig(port=sshd.port, user=sshd.user, private_key=sshd.pkey),
              HostConfig(port=sshd.port, user=sshd.user, private_key=sshd.pkey_rsa,
                         alias="rsa-host")]
    client = ParallelSSHClient(hosts[:2], host_config=config, port=closed_port,
                               user="nobody-here", num_retries=0, timeout=10)

    output = client.run_command("whoami")
    client.join(output, timeout=10)

    assert [list(out.stdout) for out in output] == [[sshd.user]] * 2
    assert [out.alias for out in output] == [None, "rsa-host"]
    client.disconnect()


def test_falsy_and_libssh_overrides_reach_the_host(hosts, client_kwargs):
    config = [HostConfig(num_retries=0, keepalive_seconds=0, allow_agent=False,
                         identity_auth=False, compress=True, gssapi_auth=True,
                         gssapi_delegate_credentials=True), HostConfig()]
    client = ParallelSSHClient(hosts[:2], **{**client_kwargs, "num_retries": 2})

    client.host_config = config
    gevent.joinall(client.connect_auth(), raise_error=True)
    overridden, default = (client._host_clients[(n, hosts[n])] for n in (0, 1))

    assert (overridden.num_retries, default.num_retries) == (0, 2)
    assert overridden._keepalive is None and default._keepalive is not None
    assert (overridden.allow_agent, overridden.identity_auth) == (False, False)
    assert (overridden.compress, default.compress) == (True, False)
    assert (overridden.gssapi_auth, overridden.gssapi_delegate_credentials) == (True, True)
    assert (default.gssapi_auth, default.gssapi_delegate_credentials) == (False, False)
    client.disconnect()


# --- resources ----------------------------------------------------------------------------------


def _open_descriptors():
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def test_no_descriptor_leaks(hosts, client_kwargs, closed_port, garbage_server):
    def cycle():
        client = SSHClient(hosts[0], **client_kwargs)
        output = client.run_command("echo x")
        assert list(output.stdout) == ["x"]
        client.disconnect()
        for port in (closed_port, garbage_server[1]):
            with pytest.raises(SSHError):
                SSHClient("127.0.0.1", **{**client_kwargs, "port": port})

    cycle()  # the hub and its helpers open what they keep for later
    before = _open_descriptors()
    for _ in range(25):
        cycle()

    assert _open_descriptors() == before


def test_keepalives_do_not_disturb_commands(hosts, client_kwargs):
    with SSHClient(hosts[0], keepalive_seconds=1, **client_kwargs) as client:
        output = client.run_command("sleep 1.3; echo alive")
        client.wait_finished(output, timeout=10)
        keepalive = client._keepalive

        assert list(output.stdout) == ["alive"]
        assert keepalive is not None and keepalive.active
    assert not keepalive.active  # disconnecting stopped it


# --- certificates -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certified(tmp_path_factory):
    """A user key certified by a fresh CA, and an sshd trusting that CA only.

    The key is in no authorized_keys file, so only the certificate can log it in. It is
    an ECDSA key: the libssh bundled with ssh-python cannot attach certificates to
    Ed25519 keys (see the test below).
    """
    directory = tmp_path_factory.mktemp("certs")
    authority = _keygen(directory / "user_ca")
    key = _keygen(directory / "certified", "ecdsa")
    server = LocalSSHD(num_hosts=1, first_address=250,
                       extra_config={"TrustedUserCAKeys": authority + ".pub"})
    server.start()
    yield SimpleNamespace(server=server, key=key, cert=_certify(authority, key, server.user),
                          authority=authority)
    server.stop()


def _certify(authority, key, user):
    """Sign ``key``'s public half with ``authority`` for ``user``; the certificate's path."""
    subprocess.run(["ssh-keygen", "-q", "-s", authority, "-I", "pssh-test", "-n", user,
                    key + ".pub"], check=True, capture_output=True)
    return key + "-cert.pub"


def _cert_kwargs(server, **kwargs):
    return {"port": server.port, "user": server.user, "num_retries": 0, "timeout": 10,
            **NO_OTHER_METHODS, **kwargs}


def test_certificate_authentication(certified):
    server, key, cert = certified.server, certified.key, certified.cert

    with SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=key, cert_file=cert)) as client:
        output = client.run_command("whoami")

        assert list(output.stdout) == [server.user]


def test_without_the_certificate_the_key_is_refused(certified):
    server, key = certified.server, certified.key

    with pytest.raises(AuthenticationError) as refused:
        SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=key))

    _assert_names_host(refused.value, server.hosts[0])


def test_certificate_of_another_key_fails_clearly(certified, tmp_path):
    server, cert = certified.server, certified.cert
    other = _keygen(tmp_path / "other", "ecdsa")

    with pytest.raises(AuthenticationError, match="certificate"):
        SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=other, cert_file=cert))


def test_ed25519_certificates_are_refused_with_a_hint(certified, tmp_path):
    server, key = certified.server, _keygen(tmp_path / "ed25519_key")
    cert = _certify(certified.authority, key, server.user)

    with pytest.raises(AuthenticationError, match="Ed25519"):
        SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=key, cert_file=cert))


def test_certificate_per_host_and_for_every_host(certified):
    server, key, cert = certified.server, certified.key, certified.cert
    per_host = ParallelSSHClient(server.hosts, host_config=[HostConfig(cert_file=cert)],
                                 **_cert_kwargs(server, pkey=key))
    every = ParallelSSHClient(server.hosts, **_cert_kwargs(server, pkey=key, cert_file=cert))

    for client in (per_host, every):
        output = client.run_command("whoami")
        client.join(output, timeout=10)
        assert list(output[0].stdout) == [server.user]
        client.disconnect()


def test_gssapi_failure_falls_back_to_keys_and_is_reported(certified, tmp_path):
    # No Kerberos here: the server refuses GSS-API, so the key (with its certificate)
    # is what logs in; a key that fails too reports both.
    server, key, cert = certified.server, certified.key, certified.cert
    kwargs = _cert_kwargs(server, gssapi_auth=True, gssapi_delegate_credentials=True)

    with SSHClient(server.hosts[0], pkey=key, cert_file=cert, **kwargs) as client:
        assert list(client.run_command("echo in").stdout) == ["in"]
    with pytest.raises(AuthenticationError, match="GSS-API"):
        SSHClient(server.hosts[0], pkey=_keygen(tmp_path / "stranger"), **kwargs)


def test_key_passphrase_is_the_password(certified, tmp_path):
    server = certified.server
    key = _keygen(tmp_path / "locked", "ed25519", "open-sesame")
    _authorize(server, key)
    with open(key, "rb") as key_file:
        key_bytes = key_file.read()

    for pkey in (key, key_bytes):
        with SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=pkey,
                                                       password="open-sesame")) as client:
            assert list(client.run_command("echo unlocked").stdout) == ["unlocked"]
    with pytest.raises(AuthenticationError, match="passphrase"):
        SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=key, password="wrong"))


# --- the agent, passwords and keyboard-interactive ----------------------------------------------


@pytest.fixture
def agent_with(certified, tmp_path, monkeypatch):
    """An ssh-agent of this test's own, holding the given key; SSH_AUTH_SOCK points at it."""
    if not shutil.which("ssh-agent"):
        pytest.skip("ssh-agent is not installed")
    socket_path = str(tmp_path / "agent.sock")
    process = subprocess.Popen(["ssh-agent", "-D", "-a", socket_path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monkeypatch.setenv("SSH_AUTH_SOCK", socket_path)

    def add(key):
        for _ in range(200):
            if subprocess.run(["ssh-add", "-q", key], capture_output=True).returncode == 0:
                return
            gevent.sleep(0.02)  # the agent is still starting
        raise AssertionError("ssh-agent did not take the key")

    yield add
    process.kill()
    process.wait()


def test_agent_authentication(certified, agent_with, tmp_path):
    server = certified.server
    authorized = _keygen(tmp_path / "agent_key")
    _authorize(server, authorized)
    agent_with(authorized)
    kwargs = {**_cert_kwargs(server), "allow_agent": True}

    with SSHClient(server.hosts[0], **kwargs) as client:
        assert list(client.run_command("echo agent").stdout) == ["agent"]


@pytest.fixture(scope="module")
def password_user():
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd to make a user with a password")
    created = subprocess.run(["id", PASSWORD_USER], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", PASSWORD_USER],
                       check=True)
    subprocess.run(["chpasswd"], input=f"{PASSWORD_USER}:{PASSWORD}\n", text=True, check=True)
    yield PASSWORD_USER
    if created:
        subprocess.run(["userdel", PASSWORD_USER], check=False)


@pytest.fixture(scope="module")
def password_servers(password_user):
    """Two sshds: one takes only passwords, the other only keyboard-interactive (PAM)."""
    servers = {
        "password": LocalSSHD(first_address=251, extra_config={
            "PasswordAuthentication": "yes", "PubkeyAuthentication": "no"}),
        "keyboard": LocalSSHD(first_address=252, extra_config={
            "UsePAM": "yes", "KbdInteractiveAuthentication": "yes",
            "PasswordAuthentication": "no", "PubkeyAuthentication": "no"}),
    }
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("method", ["password", "keyboard"])
def test_password_and_keyboard_interactive(password_servers, password_user, method):
    server = password_servers[method]
    kwargs = {"port": server.port, "user": password_user, "password": PASSWORD,
              "num_retries": 0, "timeout": 10, "keyboard_interactive": method == "keyboard",
              **NO_OTHER_METHODS}

    with SSHClient(server.hosts[0], **kwargs) as client:
        assert list(client.run_command("whoami").stdout) == [password_user]
    with pytest.raises(AuthenticationError, match="tried: (password|keyboard)"):
        SSHClient(server.hosts[0], **{**kwargs, "password": "wrong"})
