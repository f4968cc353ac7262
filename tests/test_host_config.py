"""Per-host configuration: HostConfig's checks, and every override reaching its host.

Each override test sets a value on one host that would make a visible difference, and
checks that host against one left at the client's value.
"""

from __future__ import annotations

import pytest

from pssh.clients import ParallelSSHClient
from pssh.config import HostConfig
from pssh.exceptions import HostConfigError, PKeyFileError
from pssh.utils import enable_host_logger

# --- HostConfig's own checks ---------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("port", "22"), ("port", 0), ("port", 70000), ("proxy_port", True),
    ("user", 5), ("alias", b"name"), ("allow_agent", 0), ("compress", "yes"),
    ("keyboard_interactive", None.__class__), ("num_retries", -1), ("num_retries", 1.5),
    ("keepalive_seconds", True), ("timeout", -1), ("timeout", float("nan")),
    ("retry_delay", "5"), ("private_key", 3), ("proxy_pkey", ["key"]),
])
def test_wrong_types_and_ranges_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"HostConfig {field} must be"):
        HostConfig(**{field: value})


def test_falsy_values_are_valid_settings():
    config = HostConfig(allow_agent=False, num_retries=0, keepalive_seconds=0, timeout=0,
                        identity_auth=False, compress=False, keyboard_interactive=False)

    assert config.overrides() == {
        "allow_agent": False, "num_retries": 0, "keepalive_seconds": 0, "timeout": 0,
        "identity_auth": False, "compress": False, "keyboard_interactive": False}


@pytest.mark.parametrize("host_config", [HostConfig(), [HostConfig(), "user"], "config"])
def test_host_config_of_the_wrong_type_raises_before_connecting(host_config, client_kwargs,
                                                                closed_port):
    kwargs = {**client_kwargs, "port": closed_port}
    with pytest.raises(HostConfigError, match="list of HostConfig"):
        ParallelSSHClient(["127.0.0.1", "127.0.0.1"], host_config=host_config, **kwargs)


def test_host_config_of_the_wrong_length_raises_value_error(client_kwargs, closed_port):
    kwargs = {**client_kwargs, "port": closed_port}
    with pytest.raises(ValueError, match="1 entries for 2 hosts"):
        ParallelSSHClient(["127.0.0.1", "127.0.0.1"], host_config=[HostConfig()], **kwargs)


def test_missing_per_host_key_names_the_host(client_kwargs, closed_port, tmp_path):
    config = [HostConfig(), HostConfig(private_key=str(tmp_path / "nope"))]
    with pytest.raises(PKeyFileError, match="'127.0.0.9'"):
        ParallelSSHClient(["127.0.0.8", "127.0.0.9"], host_config=config,
                          **{**client_kwargs, "port": closed_port})


# --- overrides reach the per-host clients ----------------------------------------------------


def _client(hosts, client_kwargs, config):
    return ParallelSSHClient(hosts[:len(config)], host_config=config, **client_kwargs)


def _host_client(client, position):
    return client._client_for(position, client.hosts[position])


def test_per_host_port_user_and_key(sshd, hosts, closed_port):
    config = [HostConfig(port=sshd.port, user=sshd.user, private_key=sshd.pkey),
              HostConfig(port=sshd.port, user=sshd.user, private_key=sshd.pkey_rsa)]
    client = ParallelSSHClient(hosts[:2], host_config=config, port=closed_port,
                               user="nobody-here", num_retries=0, timeout=10)

    output = client.run_command("whoami")
    client.join(output)

    assert [list(out.stdout) for out in output] == [[sshd.user]] * 2


def test_falsy_num_retries_and_timeout_override_the_client(sshd, hosts, client_kwargs):
    config = [HostConfig(num_retries=0, timeout=0.5, keepalive_seconds=0,
                         allow_agent=False, identity_auth=False), HostConfig()]
    client = _client(hosts, {**client_kwargs, "num_retries": 2, "timeout": 10}, config)

    overridden, default = _host_client(client, 0), _host_client(client, 1)

    assert (overridden.num_retries, overridden.timeout) == (0, 0.5)
    assert (default.num_retries, default.timeout) == (2, 10)
    assert overridden._keepalive is None and default._keepalive is not None
    assert (overridden.allow_agent, overridden.identity_auth) == (False, False)
    assert (default.allow_agent, default.identity_auth) == (True, True)


def test_per_host_password_is_used_as_the_key_passphrase(sshd, hosts, client_kwargs):
    # A wrong passphrase on an unencrypted key is ignored by libssh2, so the check is
    # that the value arrives, not that it changes the outcome.
    client = _client(hosts, client_kwargs, [HostConfig(password="per-host"), HostConfig()])

    assert _host_client(client, 0).password == "per-host"
    assert _host_client(client, 1).password is None


def test_keyboard_interactive_and_compress_reach_the_host(sshd, hosts, client_kwargs):
    # keyboard_interactive needs a password to answer with (the key is tried first and
    # is unencrypted, so the password is never used).
    config = [HostConfig(keyboard_interactive=True, compress=True, password="unused"),
              HostConfig()]
    client = _client(hosts, client_kwargs, config)

    assert _host_client(client, 0).keyboard_interactive is True
    assert _host_client(client, 0).compress is True
    assert _host_client(client, 1).keyboard_interactive is False


def test_alias_is_on_output_and_in_host_log_lines(sshd, hosts, client_kwargs, capsys,
                                                  restore_loggers):
    config = [HostConfig(alias="web-a"), HostConfig()]
    client = _client(hosts, client_kwargs, config)
    enable_host_logger()
    output = client.run_command("echo hi")
    client.join(output, consume_output=True)

    printed = capsys.readouterr().out.splitlines()
    assert [out.alias for out in output] == ["web-a", None]
    assert sorted(printed) == sorted(["[web-a]\thi", f"[{hosts[1]}]\thi"])
