"""pssh.testing.LocalSSHD itself, checked with raw sockets and OpenSSH's own client.

These tests start their own small servers rather than the session's 100-host one, so
stopping and breaking them harms no other test.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest

from pssh.testing import LocalSSHD, SSHDError


@pytest.fixture(scope="module")
def server() -> Iterator[LocalSSHD]:
    with LocalSSHD(num_hosts=3) as server:
        yield server


def read_banner(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=10) as sock:
        with sock.makefile("rb") as stream:
            return stream.readline()


def ssh(server: LocalSSHD, host: str, key: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with OpenSSH's client, ignoring any local ssh configuration."""
    options = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "KexAlgorithms=curve25519-sha256"]
    return subprocess.run(
        ["ssh", *options, "-i", key, "-p", str(server.port), "-l", server.user, host, command],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_every_host_answers_with_an_ssh_banner(server: LocalSSHD) -> None:
    banners = [read_banner(host, server.port) for host in server.hosts]

    assert server.hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert [banner[:8] for banner in banners] == [b"SSH-2.0-"] * 3


@pytest.mark.parametrize("key_name", ["pkey", "pkey_rsa"])
def test_client_keys_log_in(server: LocalSSHD, key_name: str) -> None:
    host = server.hosts[-1]
    result = ssh(server, host, getattr(server, key_name), "echo $SSH_CONNECTION")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[2:] == [host, str(server.port)]


def test_sessions_get_an_empty_home(server: LocalSSHD) -> None:
    result = ssh(server, server.hosts[0], server.pkey, 'echo "$HOME"; ls -A "$HOME"')

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [server.home]


def test_client_kwargs(server: LocalSSHD) -> None:
    assert server.client_kwargs() == {"port": server.port, "user": server.user,
                                      "pkey": server.pkey, "num_retries": 0, "timeout": 10}


def test_repr_shows_addresses_port_and_state(server: LocalSSHD) -> None:
    text = repr(server)

    assert "127.0.0.2..127.0.0.4" in text
    assert f"port={server.port}" in text
    assert "running" in text


def test_stop_is_idempotent() -> None:
    server = LocalSSHD(num_hosts=3).start()
    workdir = server.workdir

    server.stop()
    server.stop()

    assert server.pid is None
    assert not server.is_running()
    assert not os.path.exists(workdir)


def test_stop_frees_the_port() -> None:
    server = LocalSSHD(num_hosts=3).start()
    server.stop()

    for host in server.hosts:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, server.port), timeout=10).close()
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, server.port))
            sock.listen()


def test_stop_ends_open_connections() -> None:
    server = LocalSSHD(num_hosts=1).start()
    with socket.create_connection((server.hosts[0], server.port), timeout=10) as sock:
        assert sock.recv(8) == b"SSH-2.0-"
        server.stop()
        sock.settimeout(10)

        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk

    assert b"\n" in rest  # the banner's end arrived, then the server hung up


def test_start_again_after_stop_keeps_the_port() -> None:
    server = LocalSSHD(num_hosts=2).start()
    port = server.port
    try:
        server.stop()
        server.start()

        assert server.port == port
        assert read_banner(server.hosts[1], port).startswith(b"SSH-2.0-")
    finally:
        server.stop()


def test_many_hosts_spill_into_the_next_block() -> None:
    with LocalSSHD(num_hosts=20, first_address=245) as server:
        last_banner = read_banner(server.hosts[-1], server.port)

        assert server.hosts[5:7] == ["127.0.0.250", "127.0.1.1"]
        assert server.hosts[-1] == "127.0.1.14"
        assert last_banner.startswith(b"SSH-2.0-")
        assert server.pid_of(server.hosts[0]) == server.pid
        assert len(server.pids) == 2  # sshd listens on at most 16 addresses


def test_missing_sshd_names_the_fix() -> None:
    server = LocalSSHD(num_hosts=3, sshd_path="/nonexistent/sbin/sshd")

    with pytest.raises(SSHDError, match="apt-get install -y openssh-server"):
        server.start()
    assert not os.path.exists(server.workdir)


def test_rejected_config_is_reported_with_the_sshd_log() -> None:
    server = LocalSSHD(num_hosts=3, extra_config={"NoSuchKeyword": "yes"})

    with pytest.raises(SSHDError, match="NoSuchKeyword"):
        server.start()
    assert server.pid is None


def test_busy_port_is_reported() -> None:
    with socket.create_server(("127.0.0.2", 0)) as squatter:
        port = squatter.getsockname()[1]
        server = LocalSSHD(num_hosts=1, port=port)

        with pytest.raises(SSHDError, match="Address already in use"):
            server.start()


def test_extra_config_replaces_a_default() -> None:
    with LocalSSHD(num_hosts=1, extra_config={"pubkeyauthentication": "no"}) as server:
        result = ssh(server, server.hosts[0], server.pkey, "true")

    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_verbose_log_is_readable() -> None:
    with LocalSSHD(num_hosts=2, extra_config={"LogLevel": "DEBUG1"}) as server:
        log = server.read_log()

    assert f"Server listening on 127.0.0.3 port {server.port}." in log


@pytest.mark.parametrize("kwargs", [
    {"num_hosts": 0}, {"num_hosts": True}, {"port": 0}, {"port": 70000},
    {"first_address": 0}, {"start_timeout": -1}, {"start_timeout": float("nan")},
    {"start_timeout": True}, {"num_hosts": 70000},
    {"extra_config": {"listenaddress": "0.0.0.0"}},
])
def test_invalid_arguments_raise_value_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LocalSSHD(**kwargs)  # type: ignore[arg-type]
