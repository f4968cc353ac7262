"""Authentication methods against real sshds: key types, passphrases, the agent, default
identity files, passwords and keyboard-interactive.

Password and keyboard-interactive need a user with a password: a module fixture makes
one with useradd and chpasswd (the tests run as root) and removes it afterwards. Each
method gets an sshd that accepts only that method, so a test passes only if the client
really used it.
"""

from __future__ import annotations

import os

import pytest
from conftest import authorize_key, keygen, password_account, ssh_add

from pssh.clients import ParallelSSHClient, SSHClient
from pssh.config import HostConfig
from pssh.exceptions import AuthenticationError
from pssh.testing import LocalSSHD

PASSWORD_USER = "pssh-authtest"
PASSWORD = "Correct-Horse-42"
NO_OTHER_METHODS = {"pkey": None, "allow_agent": False, "identity_auth": False}


@pytest.fixture(scope="module")
def password_user():
    with password_account(PASSWORD_USER, PASSWORD) as name:
        yield name


def _sshd(first_address, **config):
    server = LocalSSHD(num_hosts=1, first_address=first_address, extra_config=config)
    server.start()
    return server


@pytest.fixture(scope="module")
def password_sshd(password_user):
    """Accepts passwords (checked against /etc/shadow, no PAM) and keys only."""
    server = _sshd(210, PasswordAuthentication="yes")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyboard_sshd(password_user):
    """Accepts keyboard-interactive through PAM, and keys; not the password method."""
    server = _sshd(211, UsePAM="yes", KbdInteractiveAuthentication="yes",
                   PasswordAuthentication="no")
    yield server
    server.stop()


def _whoami(client):
    output = client.run_command("whoami")
    client.wait_finished(output)
    return list(output.stdout)


# --- passwords and keyboard-interactive -------------------------------------------------------


def test_password(password_sshd, password_user):
    client = SSHClient(password_sshd.hosts[0], port=password_sshd.port, user=password_user,
                       password=PASSWORD, num_retries=0, timeout=10, **NO_OTHER_METHODS)

    assert _whoami(client) == [password_user]


def test_wrong_password_names_host_and_method(password_sshd, password_user):
    host = password_sshd.hosts[0]
    with pytest.raises(AuthenticationError) as failure:
        SSHClient(host, port=password_sshd.port, user=password_user, password="wrong",
                  num_retries=0, timeout=10, **NO_OTHER_METHODS)

    assert failure.value.host == host
    assert "tried: password" in str(failure.value) and host in str(failure.value)


def test_keyboard_interactive(keyboard_sshd, password_user):
    client = SSHClient(keyboard_sshd.hosts[0], port=keyboard_sshd.port, user=password_user,
                       password=PASSWORD, keyboard_interactive=True, num_retries=0,
                       timeout=10, **NO_OTHER_METHODS)

    assert _whoami(client) == [password_user]


def test_without_keyboard_interactive_the_password_method_is_refused(keyboard_sshd,
                                                                     password_user):
    with pytest.raises(AuthenticationError, match="tried: password"):
        SSHClient(keyboard_sshd.hosts[0], port=keyboard_sshd.port, user=password_user,
                  password=PASSWORD, num_retries=0, timeout=10, **NO_OTHER_METHODS)


def test_keyboard_interactive_per_host(keyboard_sshd, password_user):
    config = [HostConfig(keyboard_interactive=True, password=PASSWORD)]
    client = ParallelSSHClient(keyboard_sshd.hosts, port=keyboard_sshd.port,
                               user=password_user, host_config=config, num_retries=0,
                               timeout=10, **NO_OTHER_METHODS)

    output = client.run_command("whoami")
    client.join(output)

    assert list(output[0].stdout) == [password_user]


# --- keys ----------------------------------------------------------------------------------


@pytest.fixture
def authorize(sshd):
    """Make a key with ssh-keygen and let it log in to the shared sshd; returns its path."""
    authorized = os.path.join(sshd.workdir, "authorized_keys")
    with open(authorized) as keys:
        original = keys.read()

    def make(directory, key_type, passphrase=""):
        path = keygen(os.path.join(directory, f"id_{key_type}"), key_type, passphrase)
        authorize_key(sshd, path)
        return path

    yield make
    with open(authorized, "w") as keys:
        keys.write(original)


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa", "ed25519"])
@pytest.mark.parametrize("passphrase", ["", "key-pass-phrase"])
def test_key_types_with_and_without_passphrase(sshd, authorize, tmp_path, key_type,
                                               passphrase):
    path = authorize(str(tmp_path), key_type, passphrase)
    client = SSHClient(sshd.hosts[0], port=sshd.port, user=sshd.user, pkey=path,
                       password=passphrase or None, num_retries=0, timeout=10)

    assert _whoami(client) == [sshd.user]


def test_key_bytes_with_passphrase(sshd, authorize, tmp_path):
    path = authorize(str(tmp_path), "ed25519", "bytes-pass")
    with open(path, "rb") as key_file:
        key = key_file.read()
    client = SSHClient(sshd.hosts[0], port=sshd.port, user=sshd.user, pkey=key,
                       password="bytes-pass", num_retries=0, timeout=10)

    assert _whoami(client) == [sshd.user]


def test_wrong_passphrase_fails_clearly(sshd, authorize, tmp_path):
    path = authorize(str(tmp_path), "ed25519", "right-pass")
    with pytest.raises(AuthenticationError, match="private key"):
        SSHClient(sshd.hosts[0], port=sshd.port, user=sshd.user, pkey=path,
                  password="wrong-pass", num_retries=0, timeout=10)


def test_default_identity_files(sshd, authorize, tmp_path, monkeypatch):
    path = authorize(str(tmp_path), "ecdsa")
    monkeypatch.setattr(SSHClient, "IDENTITIES", (str(tmp_path / "id_missing"), path))
    kwargs = {"port": sshd.port, "user": sshd.user, "num_retries": 0, "timeout": 10,
              "allow_agent": False}

    assert _whoami(SSHClient(sshd.hosts[0], **kwargs)) == [sshd.user]
    with pytest.raises(AuthenticationError, match="no agent, identity file or password"):
        SSHClient(sshd.hosts[0], identity_auth=False, **kwargs)


# --- the SSH agent -------------------------------------------------------------------------


def test_agent(sshd, authorize, tmp_path, ssh_agent):
    path = authorize(str(tmp_path), "ed25519", "agent-pass")
    ssh_add(path, "agent-pass")
    kwargs = {"port": sshd.port, "user": sshd.user, "num_retries": 0, "timeout": 10,
              "identity_auth": False}

    assert _whoami(SSHClient(sshd.hosts[0], **kwargs)) == [sshd.user]
    with pytest.raises(AuthenticationError, match="no agent, identity file or password"):
        SSHClient(sshd.hosts[0], allow_agent=False, **kwargs)


def test_agent_without_a_usable_key_says_so(sshd, ssh_agent):
    with pytest.raises(AuthenticationError, match="SSH agent"):
        SSHClient(sshd.hosts[0], port=sshd.port, user=sshd.user, num_retries=0, timeout=10,
                  identity_auth=False)


# --- agent forwarding: refused up front --------------------------------------------------------


def test_forward_ssh_agent_is_accepted_with_a_warning_that_it_does_nothing(hosts,
                                                                           client_kwargs):
    with pytest.warns(RuntimeWarning, match=f"forward_ssh_agent.*{hosts[0]}.*does nothing"):
        single = SSHClient(hosts[0], forward_ssh_agent=True, **client_kwargs)
    with single:
        assert [list(out.stdout) for out in [single.run_command("echo ok")]] == [["ok"]]
    with pytest.warns(RuntimeWarning, match="forward_ssh_agent.*every host"):
        ParallelSSHClient(hosts[:1], forward_ssh_agent=True, **client_kwargs)
    with pytest.warns(RuntimeWarning, match=f"forward_ssh_agent.*{hosts[1]}"):
        ParallelSSHClient(hosts[:2], **client_kwargs,
                          host_config=[HostConfig(), HostConfig(forward_ssh_agent=True)])
