"""What only the libssh engine (pssh.clients.ssh) has, or lacks, against real sshds.

What both engines do (commands, output, stdin, join, timeouts, shells, buffer limits,
errors) is tested once for both, through the ``engine`` fixture of conftest.py, in
test_single_client.py, test_parallel_run.py, test_shells.py and test_buffer_limit.py.
Here: parallel-ssh's signatures, ssh-python's own channel calls, what the engine refuses
(file copies, proxies, agent forwarding), the GSS-API settings, certificates, and
password and keyboard-interactive logins.

A module sshd of its own trusts a user certificate authority made here with ssh-keygen,
so the certificate tests pass only if the client really offered the certificate: the key
it certifies is in no authorized_keys file. Password and keyboard-interactive logins get
a user with a password and an sshd each that accepts only that method.
"""

from __future__ import annotations

import inspect
import subprocess
from types import SimpleNamespace

import gevent
import pytest
from conftest import (
    assert_names_host,
    authorize_key,
    keygen,
    password_account,
    ssh_add,
    wait_until,
)

from pssh.clients.ssh import ParallelSSHClient, SSHClient
from pssh.config import HostConfig
from pssh.exceptions import AuthenticationError, PKeyFileError
from pssh.testing import LocalSSHD

NO_OTHER_METHODS = {"allow_agent": False, "identity_auth": False}
PASSWORD_USER = "pssh-libsshtest"
PASSWORD = "Libssh-Battery-7"


@pytest.fixture
def client(hosts, client_kwargs):
    """A libssh SSHClient on the first host (this module's tests are libssh's only)."""
    client = SSHClient(hosts[0], **client_kwargs)
    yield client
    client.disconnect()


@pytest.fixture
def parallel(hosts, client_kwargs):
    """A libssh ParallelSSHClient on the first three hosts."""
    client = ParallelSSHClient(hosts[:3], **client_kwargs)
    yield client
    client.disconnect()


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


# --- ssh-python's own channel calls ---------------------------------------------------------


def test_eagain_write_and_raw_channels(client, tmp_path):
    target = tmp_path / "written"
    data = bytes(range(256)) * 12288  # 3 MB, more than one window
    channel = client.open_session()
    # The file appears under its name only once cat has read everything and ended.
    client.eagain(channel.request_exec,
                  f"sleep 0.5; cat > {target}.part && mv {target}.part {target}")

    client.eagain_write(channel.write, data)
    client.close_channel(channel)

    wait_until(target.exists, what="the remote cat writing the file")
    assert target.read_bytes() == data
    with pytest.raises(TypeError):
        client.eagain_write(print, b"x")


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
def test_proxies_are_refused_before_connecting(make, client_kwargs, closed_port):
    target = "127.0.0.1" if make is SSHClient else ["127.0.0.1"]
    kwargs = {**client_kwargs, "port": closed_port, "proxy_host": "bastion"}

    with pytest.raises(NotImplementedError) as refused:
        make(target, **kwargs)

    assert "native" in str(refused.value)


def test_host_config_asking_for_a_proxy_names_the_host(client_kwargs, closed_port):
    config = [HostConfig(), HostConfig(proxy_host="bastion")]

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


# --- certificates -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certified(tmp_path_factory):
    """A user key certified by a fresh CA, and an sshd trusting that CA only.

    The key is in no authorized_keys file, so only the certificate can log it in. It is
    an ECDSA key: the libssh bundled with ssh-python cannot attach certificates to
    Ed25519 keys (see the test below).
    """
    directory = tmp_path_factory.mktemp("certs")
    authority = keygen(directory / "user_ca")
    key = keygen(directory / "certified", "ecdsa")
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

    assert_names_host(refused.value, server.hosts[0])


def test_certificate_of_another_key_fails_clearly(certified, tmp_path):
    server, cert = certified.server, certified.cert
    other = keygen(tmp_path / "other", "ecdsa")

    with pytest.raises(AuthenticationError, match="certificate"):
        SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=other, cert_file=cert))


def test_ed25519_certificates_are_refused_with_a_hint(certified, tmp_path):
    server, key = certified.server, keygen(tmp_path / "ed25519_key")
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
        SSHClient(server.hosts[0], pkey=keygen(tmp_path / "stranger"), **kwargs)


def test_key_passphrase_is_the_password(certified, tmp_path):
    server = certified.server
    key = keygen(tmp_path / "locked", "ed25519", "open-sesame")
    authorize_key(server, key)
    with open(key, "rb") as key_file:
        key_bytes = key_file.read()

    for pkey in (key, key_bytes):
        with SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=pkey,
                                                       password="open-sesame")) as client:
            assert list(client.run_command("echo unlocked").stdout) == ["unlocked"]
    with pytest.raises(AuthenticationError, match="passphrase"):
        SSHClient(server.hosts[0], **_cert_kwargs(server, pkey=key, password="wrong"))


# --- the agent, passwords and keyboard-interactive ----------------------------------------------


def test_agent_authentication(certified, ssh_agent, tmp_path):
    server = certified.server
    authorized = keygen(tmp_path / "agent_key")
    authorize_key(server, authorized)
    ssh_add(authorized)
    kwargs = {**_cert_kwargs(server), "allow_agent": True}

    with SSHClient(server.hosts[0], **kwargs) as client:
        assert list(client.run_command("echo agent").stdout) == ["agent"]


@pytest.fixture(scope="module")
def password_user():
    with password_account(PASSWORD_USER, PASSWORD) as name:
        yield name


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
