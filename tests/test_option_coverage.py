"""Options that no other test would notice being ignored, on both engines.

Each test makes an option change something a user can see: a login that only works with
it, a failure that only happens with it, or a line in a debug-level sshd log (compression
negotiated, keepalives received). Three small sshds of this module's own serve them: one
with extra authorized keys (also the bastion for the proxy tests), one logging at
DEBUG3, and one whose sessions find a stand-in ``sudo`` first on their PATH (the test
machines have no sudo), which prints its options to stderr and runs the rest.
"""

from __future__ import annotations

import logging
import os
import re

import pytest
from conftest import authorize_key, keygen

from pssh.clients import native
from pssh.clients import ssh as libssh
from pssh.config import HostConfig
from pssh.exceptions import (
    AuthenticationError,
    HostConfigError,
    NoIPv6AddressFoundError,
    ProxyError,
    Timeout,
)
from pssh.testing import LocalSSHD

ENGINES = [pytest.param(native, id="native"), pytest.param(libssh, id="libssh")]
NO_OTHER_METHODS = {"allow_agent": False, "identity_auth": False}
KEY_TYPES = ("rsa", "ecdsa", "ed25519")
FAKE_SUDO = """#!/bin/sh
# Stand-in for sudo: report the options on stderr, then run the command as given.
options=""
while [ $# -gt 0 ]; do
    case "$1" in
        -u) options="$options -u $2"; shift 2 ;;
        -S) options="$options -S"; shift ;;
        *) break ;;
    esac
done
echo "sudo$options" >&2
exec "$@"
"""


def _start(first_address, **config):
    server = LocalSSHD(num_hosts=1, first_address=first_address, extra_config=config)
    return server.start()


@pytest.fixture(scope="module")
def keyed_sshd():
    """An sshd accepting six extra keys: each type, with and without a passphrase.

    ``server.keys[(key_type, passphrase)]`` is the key's path; passphrases are
    ``"pass-<type>"`` or empty.
    """
    server = _start(221)
    server.keys = {}
    for key_type in KEY_TYPES:
        for passphrase in ("", f"pass-{key_type}"):
            path = keygen(os.path.join(server.workdir, f"id_{key_type}_{len(passphrase)}"),
                          key_type, passphrase)
            authorize_key(server, path)
            server.keys[(key_type, passphrase)] = path
    yield server
    server.stop()


@pytest.fixture(scope="module")
def debug_sshd():
    server = _start(222, LogLevel="DEBUG3")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sudo_sshd():
    server = LocalSSHD(num_hosts=1, first_address=223)
    bin_dir = os.path.join(server.workdir, "bin")
    os.makedirs(bin_dir)
    with open(os.path.join(bin_dir, "sudo"), "w") as script:
        script.write(FAKE_SUDO)
    os.chmod(os.path.join(bin_dir, "sudo"), 0o755)
    server.extra_config["SetEnv"] = f"HOME={server.home} PATH={bin_dir}:/usr/bin:/bin"
    server.start()
    yield server
    server.stop()


def _run(client, command, **kwargs):
    """Run on a single or parallel client; the outputs as a list, finished."""
    if isinstance(client, (native.ParallelSSHClient, libssh.ParallelSSHClient)):
        output = client.run_command(command, stop_on_errors=False, **kwargs)
        client.join(output, timeout=20)
        return output
    output = client.run_command(command, **kwargs)
    client.wait_finished(output, timeout=20)
    return [output]


def _log_after(server, offset):
    return server.read_log()[offset:]


# --- every HostConfig field reaches its host; client values reach every host -----------------


def _client_and_host_values(sshd, engine):
    """(client keyword arguments, HostConfig values): each differs from the other and,
    for the client, from the default; the per-host ones include falsy values."""
    client = {"user": "client-user", "password": "client-pw", "port": 2201,
              "pkey": sshd.pkey, "num_retries": 2, "retry_delay": 0.5, "timeout": 7,
              "allow_agent": False, "identity_auth": False, "ipv6_only": True,
              "compress": True, "keyboard_interactive": True, "keepalive_seconds": 5,
              "known_hosts": "/nonexistent/known_hosts_c", "host_key_policy": "strict"}
    host = {"user": "host-user", "password": "host-pw", "port": 2202,
            "private_key": sshd.pkey_rsa, "num_retries": 0, "retry_delay": 0, "timeout": 0.5,
            "allow_agent": True, "identity_auth": True, "ipv6_only": False,
            "compress": False, "keyboard_interactive": False, "keepalive_seconds": 0,
            "alias": "host-alias", "auth_thread_pool": False,
            "known_hosts": ["/nonexistent/known_hosts_h"], "host_key_policy": "off"}

    if engine is native:
        client.update(proxy_host="bastion-c", proxy_port=2203, proxy_user="pu-c",
                      proxy_password="pp-c", proxy_pkey=sshd.pkey)
        host.update(proxy_host="bastion-h", proxy_port=2204, proxy_user="pu-h",
                    proxy_password="pp-h", proxy_pkey=sshd.pkey_rsa)
    else:
        client.update(cert_file=sshd.pkey + ".pub", gssapi_auth=True,
                      gssapi_server_identity="host@c", gssapi_client_identity="me@C",
                      gssapi_delegate_credentials=True)
        host.update(cert_file=sshd.pkey_rsa + ".pub", gssapi_auth=False,
                    gssapi_server_identity="host@h", gssapi_client_identity="me@H",
                    gssapi_delegate_credentials=False)
    return client, host


@pytest.mark.parametrize("engine", ENGINES)
def test_every_option_reaches_each_host_from_client_and_host_config(engine, sshd):
    client_values, host_values = _client_and_host_values(sshd, engine)
    client = engine.ParallelSSHClient(["127.0.0.1", "127.0.0.1"], **client_values,
                                      host_config=[HostConfig(), HostConfig(**host_values)])
    renamed = {"private_key": "pkey", "auth_thread_pool": "_auth_thread_pool"}

    from_client, from_host = client._host_settings(0), client._host_settings(1)

    assert {name: from_client[name] for name in client_values} == client_values
    assert {name: from_host[renamed.get(name, name)] for name in host_values} == host_values


@pytest.mark.parametrize("host_config", [HostConfig(), [HostConfig(), "user"],
                                         [HostConfig()]])
def test_libssh_host_config_of_wrong_type_or_length_raises_before_connecting(
        host_config, client_kwargs, closed_port):
    with pytest.raises(HostConfigError):
        libssh.ParallelSSHClient(["127.0.0.1", "127.0.0.1"], host_config=host_config,
                                 **{**client_kwargs, "port": closed_port})


@pytest.mark.parametrize("engine", ENGINES)
def test_auth_thread_pool_is_accepted(engine, hosts, client_kwargs):
    with engine.SSHClient(hosts[0], _auth_thread_pool=False, **client_kwargs) as single:
        assert [list(out.stdout) for out in _run(single, "echo one")] == [["one"]]
    parallel = engine.ParallelSSHClient(hosts[:1], **client_kwargs,
                                        host_config=[HostConfig(auth_thread_pool=False)])
    assert [list(out.stdout) for out in _run(parallel, "echo all")] == [["all"]]
    parallel.disconnect()


# --- connecting: retries, their delay, the timeout, IPv6 -------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_num_retries_and_retry_delay_from_client_and_per_host(engine, garbage_server,
                                                              client_kwargs, caplog):
    # A garbage banner fails the handshake, which is retried; each retry is logged with
    # its number and delay.
    host, port = garbage_server
    caplog.set_level(logging.DEBUG, logger="pssh.clients")
    config = [HostConfig(num_retries=0), HostConfig(retry_delay=0.01), HostConfig()]
    client = engine.ParallelSSHClient([host] * 3, host_config=config, **{
        **client_kwargs, "port": port, "num_retries": 2, "retry_delay": 0.05})

    output = client.run_command("true", stop_on_errors=False)

    assert all(out.exception is not None for out in output)
    retries = sorted(re.search(r"retry \d+ of \d+ in [\d.]+s", record.getMessage())[0]
                     for record in caplog.records if "; retry " in record.getMessage())
    assert retries == ["retry 1 of 2 in 0.01s", "retry 1 of 2 in 0.05s",
                       "retry 2 of 2 in 0.01s", "retry 2 of 2 in 0.05s"]


# Without the 0.5 s, the handshake with a peer that never answers would not end.
@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("where", ["single", "per-host"])
def test_timeout_value_bounds_the_handshake(engine, where, black_hole, client_kwargs):
    host, port = black_hole
    # The client sets no limit, so a Timeout can only come from the 0.5 s asked for.
    kwargs = {**client_kwargs, "port": port, "timeout": None}
    if where == "single":
        with pytest.raises(Timeout) as caught:
            engine.SSHClient(host, **{**kwargs, "timeout": 0.5})
        error = caught.value
    else:
        client = engine.ParallelSSHClient([host], **kwargs,
                                          host_config=[HostConfig(timeout=0.5)])
        error = client.run_command("true", stop_on_errors=False)[0].exception

    assert isinstance(error, Timeout)
    assert error.host == host


@pytest.mark.parametrize("engine", ENGINES)
def test_ipv6_only_per_host(engine, hosts, client_kwargs):
    client = engine.ParallelSSHClient(hosts[:2], **client_kwargs,
                                      host_config=[HostConfig(ipv6_only=True), HostConfig()])

    ipv6_only, default = _run(client, "echo v4")

    assert isinstance(ipv6_only.exception, NoIPv6AddressFoundError)
    assert hosts[0] in str(ipv6_only.exception)
    assert list(default.stdout) == ["v4"]


# --- keys, identity files, GSS-API ----------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("key_type", KEY_TYPES)
@pytest.mark.parametrize("locked", [False, True], ids=["plain", "passphrase"])
@pytest.mark.parametrize("form", ["path", "bytes"])
def test_private_key_of_each_type_as_path_or_bytes(engine, key_type, locked, form,
                                                   keyed_sshd):
    passphrase = f"pass-{key_type}" if locked else ""
    path = keyed_sshd.keys[(key_type, passphrase)]
    with open(path, "rb") as key_file:
        pkey = path if form == "path" else key_file.read()

    with engine.SSHClient(keyed_sshd.hosts[0], port=keyed_sshd.port, user=keyed_sshd.user,
                          pkey=pkey, password=passphrase or None, num_retries=0, timeout=10,
                          **NO_OTHER_METHODS) as client:
        assert list(_run(client, "echo in")[0].stdout) == ["in"]


@pytest.mark.parametrize("engine", ENGINES)
def test_per_host_key_bytes_and_passphrase(engine, keyed_sshd):
    locked = keyed_sshd.keys[("ecdsa", "pass-ecdsa")]
    with open(locked, "rb") as key_file:
        key_bytes = key_file.read()
    config = [HostConfig(private_key=key_bytes, password="pass-ecdsa"),
              HostConfig(private_key=keyed_sshd.keys[("rsa", "")])]
    client = engine.ParallelSSHClient(
        keyed_sshd.hosts * 2, port=keyed_sshd.port, user=keyed_sshd.user, num_retries=0,
        timeout=10, host_config=config, **NO_OTHER_METHODS)

    output = _run(client, "echo in")

    assert [(out.exception, list(out.stdout)) for out in output] == [(None, ["in"])] * 2


@pytest.mark.parametrize("engine", ENGINES)
def test_default_identity_files_and_per_host_identity_auth(engine, sshd, hosts,
                                                           monkeypatch):
    monkeypatch.setattr(engine.SSHClient, "IDENTITIES", (sshd.pkey,))
    client = engine.ParallelSSHClient(
        hosts[:2], port=sshd.port, user=sshd.user, num_retries=0, timeout=10,
        allow_agent=False, host_config=[HostConfig(), HostConfig(identity_auth=False)])

    default, no_identities = _run(client, "echo identity")

    assert list(default.stdout) == ["identity"]
    assert isinstance(no_identities.exception, AuthenticationError)
    assert "no agent, identity file or password" in str(no_identities.exception)


@pytest.mark.parametrize("identity", ["gssapi_server_identity", "gssapi_client_identity"])
@pytest.mark.parametrize("where", ["single", "per-host"])
def test_libssh_gssapi_identities_turn_gssapi_on(identity, where, hosts, client_kwargs,
                                                 tmp_path):
    # No Kerberos here: the only visible effect is that GSS-API is tried first and its
    # refusal is reported along with the key's.
    stranger = keygen(tmp_path / "stranger")
    kwargs = {**client_kwargs, "pkey": stranger, **NO_OTHER_METHODS}
    if where == "single":
        with pytest.raises(AuthenticationError) as refused:
            libssh.SSHClient(hosts[0], **kwargs, **{identity: "someone@EXAMPLE"})
        error = refused.value
    else:
        client = libssh.ParallelSSHClient(hosts[:1], **kwargs, host_config=[
            HostConfig(**{identity: "someone@EXAMPLE"})])
        error = _run(client, "true")[0].exception

    assert isinstance(error, AuthenticationError)
    assert "GSS-API was tried first" in str(error)


# --- proxies: user and password, for the client and per host ---------------------------------


@pytest.fixture
def proxy_kwargs(keyed_sshd):
    """A bastion login that needs proxy_password: the passphrase of proxy_pkey."""
    return {"proxy_host": keyed_sshd.hosts[0], "proxy_port": keyed_sshd.port,
            "proxy_pkey": keyed_sshd.keys[("ed25519", "pass-ed25519")]}


@pytest.mark.parametrize("make", [native.SSHClient, native.ParallelSSHClient])
def test_proxy_user_and_proxy_password(make, hosts, client_kwargs, proxy_kwargs, keyed_sshd):
    target = hosts[0] if make is native.SSHClient else hosts[:1]
    kwargs = {**client_kwargs, **proxy_kwargs, "proxy_password": "pass-ed25519"}

    with make(target, **kwargs) as client:
        assert list(_run(client, "echo via")[0].stdout) == ["via"]
    if make is native.SSHClient:
        with pytest.raises(ProxyError) as refused:
            make(target, **kwargs, proxy_user="nosuchuser")
        error = refused.value
    else:
        with make(target, **kwargs, proxy_user="nosuchuser") as client:
            error = _run(client, "true")[0].exception
    assert isinstance(error, ProxyError)
    assert "'nosuchuser'" in str(error) and keyed_sshd.hosts[0] in str(error)


def test_per_host_proxy_user_and_proxy_password(hosts, client_kwargs, proxy_kwargs):
    config = [HostConfig(proxy_password="pass-ed25519"),
              HostConfig(proxy_password="pass-ed25519", proxy_user="nosuchuser"),
              HostConfig()]
    client = native.ParallelSSHClient(hosts[:3], **client_kwargs, **proxy_kwargs,
                                      host_config=config)

    right, wrong_user, no_password = _run(client, "echo via")

    assert list(right.stdout) == ["via"]
    assert isinstance(wrong_user.exception, ProxyError)
    assert "'nosuchuser'" in str(wrong_user.exception)
    assert isinstance(no_password.exception, ProxyError)
    assert "passphrase" in str(no_password.exception)
    client.disconnect()


# --- compression and keepalives, as the server saw them ----------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_compress_from_client_and_falsy_per_host_override(engine, debug_sshd):
    offset = len(debug_sshd.read_log())
    client = engine.ParallelSSHClient(debug_sshd.hosts * 2, **debug_sshd.client_kwargs(),
                                      compress=True,
                                      host_config=[HostConfig(), HostConfig(compress=False)])
    _run(client, "true")
    client.disconnect()

    negotiated = re.findall(r"kex: client->server cipher: .* compression: (\S+)",
                            _log_after(debug_sshd, offset))
    assert sorted(negotiated) == ["none", "zlib@openssh.com"]


@pytest.mark.parametrize("engine", ENGINES)
def test_per_host_keepalive_seconds_sends_keepalives(engine, debug_sshd):
    # libssh2 sends a keepalive@libssh2.org request (every 2 s when asked for 1: its
    # least), pssh's libssh client an SSH ignore message; the first one interval after
    # connecting. Two or more in 4.5 s take the 1 s interval: the client's own 0 would
    # send none, the default 60 none either.
    marker = "keepalive@libssh2.org" if engine is native else "Received SSH2_MSG_IGNORE"
    offset = len(debug_sshd.read_log())
    client = engine.ParallelSSHClient(debug_sshd.hosts, **debug_sshd.client_kwargs(),
                                      keepalive_seconds=0,
                                      host_config=[HostConfig(keepalive_seconds=1)])

    assert _run(client, "sleep 4.5")[0].exit_code == 0
    client.disconnect()
    assert _log_after(debug_sshd, offset).count(marker) >= 2


# --- commands: sudo, its target user, the shell; alias on every output -------------------------


SUDO_CASES = [
    ({"sudo": True}, "echo \"it's\" 'a \"b\"'", ["it's a \"b\""], "sudo -S"),
    ({"user": "nobody"}, "echo 'as '\"'\"'nobody'\"'\"", ["as 'nobody'"], "sudo -u nobody -S"),
    ({"sudo": True, "shell": "sh -c"}, 'echo "$0"', ["sh"], "sudo -S"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("make", ["SSHClient", "ParallelSSHClient"])
@pytest.mark.parametrize("options, command, expected, sudo_line", SUDO_CASES,
                         ids=["sudo", "user", "sudo-shell"])
def test_sudo_user_and_shell_wrap_the_command(engine, make, options, command, expected,
                                              sudo_line, sudo_sshd):
    target = sudo_sshd.hosts[0] if make == "SSHClient" else sudo_sshd.hosts
    with getattr(engine, make)(target, **sudo_sshd.client_kwargs()) as client:
        (output,) = _run(client, command, **options)

        assert list(output.stdout) == expected
        assert list(output.stderr) == [sudo_line]
        assert output.exit_code == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_alias_on_failed_host_output_and_on_shells(engine, hosts, client_kwargs,
                                                   closed_port):
    config = [HostConfig(alias="up"), HostConfig(port=closed_port, alias="down")]
    client = engine.ParallelSSHClient(hosts[:2], **client_kwargs, host_config=config)

    output = _run(client, "true")

    assert [out.alias for out in output] == ["up", "down"]
    assert output[1].exception is not None
    with engine.SSHClient(hosts[0], alias="shell-host", **client_kwargs) as single:
        with single.open_shell() as shell:
            shell.run("true")
        assert shell.output.alias == "shell-host"
    client.disconnect()


@pytest.mark.parametrize("setting", [{"cert_file": "/etc/hostname"}, {"gssapi_auth": True},
                                     {"gssapi_server_identity": "host@REALM"},
                                     {"gssapi_client_identity": "me@REALM"},
                                     {"gssapi_delegate_credentials": True}])
def test_native_client_refuses_libssh_only_host_config(setting, hosts, client_kwargs):
    config = [HostConfig(), HostConfig(**setting)]

    with pytest.raises(NotImplementedError, match="pssh.clients.ssh") as caught:
        native.ParallelSSHClient(hosts[:2], host_config=config, **client_kwargs)

    assert hosts[1] in str(caught.value)
    assert next(iter(setting)) in str(caught.value)


def test_native_client_accepts_libssh_only_settings_left_off(hosts, client_kwargs):
    config = [HostConfig(gssapi_auth=False, gssapi_delegate_credentials=False)]
    client = native.ParallelSSHClient(hosts[:1], host_config=config, **client_kwargs)
    try:
        output = client.run_command("echo ok")
        assert list(output[0].stdout) == ["ok"]
    finally:
        client.disconnect()
