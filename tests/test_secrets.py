"""Secrets stay out of every text pssh makes: reprs, error messages and log records.

Each test runs a real fan-out with every kind of secret pssh is given (a login password,
key bytes with a passphrase, a proxy's key bytes with its passphrase), successes and
failures mixed (a wrong password, a wrong passphrase, a key the server does not know, a
closed port, a host that never answers), with every logger at DEBUG. Everything a user
could print is collected: the log records (formatted, with their arguments and
tracebacks), what went to stdout and stderr, and the repr and str of every object
involved, exceptions with their args and causes. None of the secrets may appear in it,
nor any base64 line of the private keys.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from conftest import NATIVE_ONLY, authorize_key, keygen, password_account

from pssh.clients import native
from pssh.config import HostConfig
from pssh.exceptions import AuthenticationError, PKeyFileError, ProxyError
from pssh.testing import LocalSSHD

PASSWORD_USER = "pssh-secrettest"
PASSWORD = "Pw-s3cret-7731"
WRONG_PASSWORD = "Wrong-s3cret-5521"
KEY_PASSPHRASE = "Kp-s3cret-4412"
WRONG_PASSPHRASE = "Wp-s3cret-0619"
STRANGER_PASSPHRASE = "Sp-s3cret-2207"
PROXY_PASSPHRASE = "Pp-s3cret-9183"
NO_OTHER_METHODS = {"allow_agent": False, "identity_auth": False}
LOGGERS = ("", "pssh", "pssh.clients", "pssh.clients.native", "pssh.clients.ssh",
           "pssh.host_logger", "pssh.output")


@pytest.fixture(scope="module")
def password_user() -> Iterator[str]:
    with password_account(PASSWORD_USER, PASSWORD) as name:
        yield name


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Passphrase-protected key pairs: 'target' and 'proxy' are authorized on the
    servers below, 'stranger' nowhere. Their paths."""
    directory = tmp_path_factory.mktemp("secret-keys")
    return {"target": keygen(directory / "target", "ed25519", KEY_PASSPHRASE),
            "proxy": keygen(directory / "proxy", "ecdsa", PROXY_PASSPHRASE),
            "stranger": keygen(directory / "stranger", "rsa", STRANGER_PASSPHRASE)}


@pytest.fixture(scope="module")
def target(password_user: str, keys: dict[str, str]) -> Iterator[LocalSSHD]:
    """Accepts passwords (for the password account) and the 'target' key."""
    server = LocalSSHD(num_hosts=2, first_address=226,
                       extra_config={"PasswordAuthentication": "yes"})
    server.start()
    authorize_key(server, keys["target"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bastion(keys: dict[str, str]) -> Iterator[LocalSSHD]:
    """A jump host accepting only the 'proxy' key."""
    server = LocalSSHD(num_hosts=1, first_address=228)
    server.start()
    with open(os.path.join(server.workdir, "authorized_keys"), "w"):
        pass
    authorize_key(server, keys["proxy"])
    yield server
    server.stop()


def _read(path: str) -> bytes:
    with open(path, "rb") as key_file:
        return key_file.read()


def _secrets(keys: dict[str, str]) -> list[str]:
    """Every secret of this module: the passwords and passphrases, and each base64 line
    of the private keys."""
    lines = [line.strip() for path in keys.values()
             for line in _read(path).decode().splitlines()
             if line.strip() and not line.startswith("-")]
    return [PASSWORD, WRONG_PASSWORD, KEY_PASSPHRASE, WRONG_PASSPHRASE, STRANGER_PASSPHRASE,
            PROXY_PASSPHRASE, *(line for line in lines if len(line) >= 16)]


class Collected:
    """Text a user could see: the repr and str of objects, exceptions with their causes."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *objects: Any) -> None:
        for obj in objects:
            if isinstance(obj, BaseException):
                self.add_error(obj)
            elif isinstance(obj, (list, tuple)):
                self.texts.append(repr(obj))
                self.add(*obj)
            else:
                self.texts += [repr(obj), str(obj)]
                exception = getattr(obj, "exception", None)
                if isinstance(exception, BaseException):
                    self.add_error(exception)

    def add_error(self, error: BaseException) -> None:
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.texts += [repr(current), str(current), repr(current.args),
                           *traceback.format_exception(current)]
            current = current.__cause__ or current.__context__

    def text(self) -> str:
        return "\n".join(self.texts)


@pytest.fixture
def collected(caplog: pytest.LogCaptureFixture) -> Iterator[Collected]:
    """Everything logged at DEBUG and up, by pssh's loggers and the root logger, lands
    in caplog (the host logger too, even if a test before turned its propagation off)."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    host_logger = logging.getLogger("pssh.host_logger")
    propagate = host_logger.propagate
    host_logger.propagate = True
    try:
        yield Collected()
    finally:
        host_logger.propagate = propagate


def _assert_no_secret(collected: Collected, caplog: pytest.LogCaptureFixture,
                      capsys: pytest.CaptureFixture[str], keys: dict[str, str]) -> str:
    """Fail naming the secret and the first text it was found in; else the whole text."""
    captured = capsys.readouterr()
    records = [f"{record.getMessage()} {record.args!r}" for record in caplog.records]
    texts = [*collected.texts, caplog.text, *records, captured.out, captured.err]
    for secret in _secrets(keys):
        for text in texts:
            assert secret not in text, f"a secret ({secret[:4]}...) leaked in: {text[:2000]}"
    return "\n".join(texts)


def _fan_out(client: Any, collected: Collected) -> tuple[list[Any], list[list[str]]]:
    """Run a command on every host and read its output, collecting everything on the
    way; the outputs and their stdout lines."""
    output = client.run_command("whoami", stop_on_errors=False)
    client.join(output, timeout=30)
    lines = []
    for host_out in output:
        lines.append(list(host_out.stdout))
        collected.add(host_out, host_out.exception, lines[-1], list(host_out.stderr),
                      host_out.exit_code, host_out.buffers)
    collected.add(client, client.cmds, output)
    results = client.connect_auth()
    gevent.joinall(results, raise_error=False)
    collected.add(results, [result.exception for result in results])
    return output, lines


# --- a fan-out over passwords and key bytes, on both engines ---------------------------------


def test_fan_out_with_passwords_and_key_bytes_shows_no_secret(
        engine, target, password_user, keys, closed_port, black_hole, collected, caplog,
        capsys):
    key = _read(keys["target"])
    host, other = target.hosts
    config = [
        HostConfig(user=password_user, password=PASSWORD, alias="by-password"),
        HostConfig(user=target.user, private_key=key, password=KEY_PASSPHRASE),
        HostConfig(user=password_user, password=WRONG_PASSWORD),
        HostConfig(user=target.user, private_key=key, password=WRONG_PASSPHRASE),
        HostConfig(user=target.user, private_key=_read(keys["stranger"]),
                   password=STRANGER_PASSPHRASE),
        HostConfig(port=closed_port, num_retries=1, retry_delay=0),
        HostConfig(port=black_hole[1], timeout=0.5),
    ]
    hosts = [host, other, host, other, host, "127.0.0.1", black_hole[0]]
    client = engine.ParallelSSHClient(hosts, port=target.port, password=PASSWORD,
                                      host_config=config, num_retries=0, timeout=10,
                                      **NO_OTHER_METHODS)
    collected.add(config)

    output, lines = _fan_out(client, collected)

    assert lines[:2] == [[password_user], [target.user]]
    assert [type(out.exception).__name__ for out in output[2:]] == [
        "AuthenticationError", "AuthenticationError", "AuthenticationError",
        "RefusedConnectionError", "Timeout"]
    with pytest.raises(AuthenticationError) as stopped:
        client.run_command("true")
    collected.add(stopped.value)
    client.disconnect()

    for kwargs in ({"user": password_user, "password": PASSWORD},
                   {"user": target.user, "pkey": key, "password": KEY_PASSPHRASE}):
        single = engine.SSHClient(host, port=target.port, num_retries=0, timeout=10,
                                  **NO_OTHER_METHODS, **kwargs)
        single_out = single.run_command("echo done")
        single.wait_finished(single_out)
        collected.add(single, single_out, list(single_out.stdout))
        single.disconnect()
        collected.add(single)
    for kwargs in ({"user": password_user, "password": WRONG_PASSWORD},
                   {"user": target.user, "pkey": key, "password": WRONG_PASSPHRASE},
                   {"user": target.user, "pkey": key}):
        with pytest.raises(AuthenticationError) as refused:
            engine.SSHClient(host, port=target.port, num_retries=0, timeout=10,
                             **NO_OTHER_METHODS, **kwargs)
        collected.add(refused.value)

    text = _assert_no_secret(collected, caplog, capsys, keys)
    # The text is the real thing: the hosts, the failures, DEBUG records, masked values.
    assert host in text and "127.0.0.1" in text and "tried: password" in text
    assert "Executing" in text and "password='***'" in text
    assert "<private key bytes: ssh-ed25519 SHA256:" in text
    assert any(record.levelno == logging.DEBUG for record in caplog.records)


def test_secrets_given_in_the_wrong_form_are_not_echoed(engine, target, keys, collected,
                                                        caplog, capsys):
    key = _read(keys["target"])
    attempts = [
        lambda: HostConfig(password=KEY_PASSPHRASE.encode()),
        lambda: HostConfig(proxy_password=[PROXY_PASSPHRASE]),
        lambda: HostConfig(private_key=bytearray(key)),
        lambda: HostConfig(proxy_pkey=[key.decode()]),
        lambda: engine.SSHClient(target.hosts[0], port=target.port,
                                 password=KEY_PASSPHRASE.encode()),
        lambda: engine.SSHClient(target.hosts[0], port=target.port, pkey=bytearray(key)),
        lambda: engine.ParallelSSHClient(target.hosts, password=PASSWORD.encode()),
        # The key's text where its path goes (pkey=open(path).read()).
        lambda: engine.SSHClient(target.hosts[0], port=target.port, pkey=key.decode()),
        lambda: engine.ParallelSSHClient(target.hosts, pkey=key.decode()),
        lambda: engine.ParallelSSHClient(target.hosts, host_config=[
            HostConfig(private_key=key.decode()), HostConfig()]),
    ]
    for attempt in attempts:
        with pytest.raises((TypeError, ValueError, PKeyFileError)) as refused:
            attempt()
        collected.add(refused.value)
    collected.add(HostConfig(private_key=key.decode(), proxy_pkey=key.decode()))

    text = _assert_no_secret(collected, caplog, capsys, keys)
    assert "HostConfig password must be a string" in text and "bytearray" in text
    assert "was given as text" in text
    assert "private_key=<private key bytes: ssh-ed25519 SHA256:" in text


def test_host_config_repr_masks_secrets_and_equality_still_compares_them(keys):
    key = _read(keys["target"])
    config = HostConfig(user="me", password=PASSWORD, private_key=key,
                        proxy_password=PROXY_PASSPHRASE, proxy_pkey=keys["proxy"])

    text = repr(config)

    assert text.startswith("HostConfig(user='me', password='***', private_key=<private key "
                           "bytes: ssh-ed25519 SHA256:")
    assert "proxy_password='***'" in text and f"proxy_pkey={keys['proxy']!r}" in text
    assert PASSWORD not in text and key.decode().splitlines()[1] not in text
    assert config == HostConfig(user="me", password=PASSWORD, private_key=key,
                                proxy_password=PROXY_PASSPHRASE, proxy_pkey=keys["proxy"])
    assert config != HostConfig(user="me", password=WRONG_PASSWORD, private_key=key,
                                proxy_password=PROXY_PASSPHRASE, proxy_pkey=keys["proxy"])


# --- through a proxy, with the proxy's key bytes and passphrase (libssh2 only) --------------


@NATIVE_ONLY
def test_proxy_with_key_bytes_and_passphrase_shows_no_secret(
        engine, target, bastion, keys, closed_port, collected, caplog, capsys):
    proxy = {"proxy_host": bastion.hosts[0], "proxy_port": bastion.port,
             "proxy_user": bastion.user, "proxy_pkey": _read(keys["proxy"]),
             "proxy_password": PROXY_PASSPHRASE}
    target_login = {"port": target.port, "user": target.user, "pkey": _read(keys["target"]),
                    "password": KEY_PASSPHRASE, "num_retries": 0, "timeout": 10,
                    **NO_OTHER_METHODS}
    config = [HostConfig(proxy_pkey=_read(keys["proxy"]), proxy_password=PROXY_PASSPHRASE),
              HostConfig(proxy_password=WRONG_PASSPHRASE),
              HostConfig(proxy_port=closed_port), HostConfig(password=WRONG_PASSWORD)]
    client = native.ParallelSSHClient([target.hosts[0]] * 4, host_config=config,
                                      **target_login, **proxy)
    collected.add(config)

    output, lines = _fan_out(client, collected)

    assert lines[0] == [target.user]
    assert [type(out.exception) for out in output[1:]] == [
        ProxyError, ProxyError, AuthenticationError]
    client.disconnect()
    with native.SSHClient(target.hosts[0], **target_login, **proxy) as single:
        single_out = single.run_command("echo via")
        single.wait_finished(single_out)
        collected.add(single, single._bastion, single_out, list(single_out.stdout))
    with pytest.raises(ProxyError) as refused:
        native.SSHClient(target.hosts[0], **target_login,
                         **{**proxy, "proxy_password": WRONG_PASSPHRASE})
    collected.add(refused.value)

    text = _assert_no_secret(collected, caplog, capsys, keys)
    assert bastion.hosts[0] in text and "via" in text
    assert "proxy_pkey=<private key bytes: ecdsa-sha2-nistp256 SHA256:" in text
