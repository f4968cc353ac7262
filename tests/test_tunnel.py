"""Local port forwarding (``pssh.clients.native.tunnel``) against the real sshd.

The services reached through the tunnels are small gevent TCP servers on 127.0.0.1,
started by each test: an echo, a sink that answers with the checksum of what it got once
the client has sent EOF, a source that sends a given payload and hangs up. Each sshd host
(127.0.0.x) reaches them at 127.0.0.1, the address the tunnels are opened to.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket as stdlib_socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from conftest import LateRead
from gevent import socket
from gevent.server import StreamServer

from pssh.clients.native import ParallelSSHClient, SSHClient
from pssh.clients.native._proxy import ChannelPump
from pssh.clients.native.tunnel import FORWARDER, LocalForwarder, PortForwards, TunnelServer
from pssh.exceptions import ConnectionError, SessionError, SSHError

LOOPBACK = "127.0.0.1"
BIG = 32 * 1024 * 1024


# --- the services behind the hosts ----------------------------------------------------

def _echo(conn: socket.socket, _address: object) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _sink(conn: socket.socket, _address: object) -> None:
    """Read to EOF, then answer with the SHA-256 of what arrived."""
    digest = hashlib.sha256()
    with conn:
        while data := conn.recv(65536):
            digest.update(data)
        conn.sendall(digest.hexdigest().encode())


def _source(payload: bytes) -> Callable[[socket.socket, object], None]:
    def send(conn: socket.socket, _address: object) -> None:
        with conn:
            conn.sendall(payload)
    return send


def _bye(conn: socket.socket, _address: object) -> None:
    with conn:
        conn.sendall(b"bye")


@pytest.fixture
def service() -> Iterator[Callable[[Callable[..., None]], int]]:
    """Start a TCP service on 127.0.0.1 with a handler; its port. Stopped at teardown."""
    servers: list[StreamServer] = []

    def start(handler: Callable[..., None]) -> int:
        server = StreamServer((LOOPBACK, 0), handler)
        server.start()
        servers.append(server)
        port: int = server.server_port
        return port
    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def ssh(hosts, client_kwargs) -> Iterator[SSHClient]:
    client = SSHClient(hosts[0], **client_kwargs)
    yield client
    client.disconnect()


@pytest.fixture
def tunnel_to(ssh) -> Iterator[Callable[[int], TunnelServer]]:
    """Start a TunnelServer through ``ssh`` to a port on 127.0.0.1; stopped at teardown."""
    servers: list[TunnelServer] = []

    def start(port: int) -> TunnelServer:
        server = TunnelServer(ssh, LOOPBACK, port)
        server.start()
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection((LOOPBACK, port), timeout=30)


def _read_to_eof(conn: socket.socket) -> bytes:
    chunks = []
    while data := conn.recv(1 << 20):
        chunks.append(data)
    return b"".join(chunks)


def _exchange(port: int, payload: bytes) -> bytes:
    """Send ``payload``, half-close, and return everything the other side sends back."""
    with _connect(port) as conn:
        sender = gevent.spawn(_send_and_half_close, conn, payload)
        received = _read_to_eof(conn)
        sender.get()
    return received


def _send_and_half_close(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(payload)
    conn.shutdown(socket.SHUT_WR)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _refuses(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# --- one server ------------------------------------------------------------------------

def test_echo_through_a_tunnel(service, tunnel_to, hosts):
    server = tunnel_to(service(_echo))

    with _connect(server.listen_port) as conn:
        conn.sendall(b"hello through ssh")
        assert conn.recv(100) == b"hello through ssh"

    assert server.listen_port > 0
    assert hosts[0] in repr(server)
    assert server.exception is None
    assert server.session is server.client.session


def test_many_concurrent_connections_share_one_session(service, tunnel_to):
    server = tunnel_to(service(_echo))
    payloads = [os.urandom(200_000) + str(index).encode() for index in range(40)]

    exchanges = [gevent.spawn(_exchange, server.listen_port, payload) for payload in payloads]
    gevent.joinall(exchanges, raise_error=True)

    assert [each.value for each in exchanges] == payloads


def test_large_upload_arrives_intact(service, tunnel_to):
    payload = os.urandom(BIG)
    server = tunnel_to(service(_sink))

    answer = _exchange(server.listen_port, payload)

    assert answer.decode() == hashlib.sha256(payload).hexdigest()


def test_large_download_arrives_intact(service, tunnel_to):
    payload = os.urandom(BIG)
    server = tunnel_to(service(_source(payload)))

    with _connect(server.listen_port) as conn:
        received = _read_to_eof(conn)

    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_a_peer_that_does_not_read_leaves_the_pump_idle(service, tunnel_to, monkeypatch):
    # Its tunnel fills, and the session's socket stays readable with bytes for it: the
    # pump's reader waits for room instead of waking on that socket over and over (it
    # used to, at 100% CPU). Once the peer reads, everything arrives.
    attempts = []
    read_once = ChannelPump._read_once

    def counted(pump: ChannelPump) -> bool:
        attempts.append(1)
        return read_once(pump)
    monkeypatch.setattr(ChannelPump, "_read_once", counted)
    payload = os.urandom(BIG)
    server = tunnel_to(service(_source(payload)))

    with _connect(server.listen_port) as conn:
        gevent.sleep(1)  # the tunnel fills
        before = len(attempts)
        gevent.sleep(1)
        idle_attempts = len(attempts) - before
        received = _read_to_eof(conn)

    assert idle_attempts <= 3
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_both_directions_at_once_through_one_connection(service, tunnel_to):
    payload = os.urandom(BIG // 2)
    server = tunnel_to(service(_echo))

    assert hashlib.sha256(_exchange(server.listen_port, payload)).digest() == \
        hashlib.sha256(payload).digest()


def test_service_closing_its_side_closes_the_local_connection(service, tunnel_to):
    server = tunnel_to(service(_bye))

    with _connect(server.listen_port) as conn:
        assert _read_to_eof(conn) == b"bye"

    with _connect(server.listen_port) as conn:  # and the server goes on serving
        assert _read_to_eof(conn) == b"bye"


def test_service_not_listening_closes_the_connection_with_an_error(tunnel_to, closed_port,
                                                                    hosts):
    server = tunnel_to(closed_port)

    with _connect(server.listen_port) as conn:
        assert _read_to_eof(conn) == b""

    assert isinstance(server.exception, SessionError)
    assert server.exception.host == hosts[0]
    assert f"127.0.0.1:{closed_port}" in str(server.exception)


def test_stop_closes_the_listener_and_open_connections_without_leaking(service, ssh):
    echo_port = service(_echo)
    before = _open_fds()
    server = TunnelServer(ssh, LOOPBACK, echo_port, num_retries=0)
    server.start()
    port = server.listen_port
    conn = _connect(port)
    conn.sendall(b"ping")
    assert conn.recv(10) == b"ping"

    server.stop()

    assert _read_to_eof(conn) == b""
    conn.close()
    assert server.listen_port is None
    assert _refuses(port)
    assert _open_fds() == before
    assert ssh.is_connected()  # the client stays usable
    output = ssh.run_command("echo still here")
    assert list(output.stdout) == ["still here"]


def test_bad_arguments_are_refused_before_listening(ssh):
    with pytest.raises(ValueError, match="port"):
        TunnelServer(ssh, LOOPBACK, 0)
    with pytest.raises(ValueError, match="num_retries"):
        TunnelServer(ssh, LOOPBACK, 22, num_retries=-1)
    with pytest.raises(ValueError, match="host"):
        TunnelServer(ssh, "", 22)


# --- the SSH session dying: its sshd processes killed --------------------------------

def _server_side_inodes(client_port: int) -> set[str]:
    """Socket inodes of TCP connections whose peer is ``client_port`` on this machine."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(f"socket:[{fields[9]}]")
    return inodes


def _processes_holding(parent: int, sockets: set[str]) -> list[int]:
    """Children of ``parent`` (and their children) with one of ``sockets`` open."""
    holders, todo = [], [parent]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                todo.extend(int(child) for child in children.read().split())
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # gone meanwhile
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                    holders.append(pid)
                    break
            except OSError:
                pass
    return holders


def _kill_connection_of(sshd, client: SSHClient) -> None:
    """SIGKILL the sshd processes serving ``client``'s connection, found by its port."""
    with socket.socket(fileno=os.dup(client.sock.fileno())) as view:
        client_port = view.getsockname()[1]
    holders = [pid for pid in _processes_holding(sshd.pid, _server_side_inodes(client_port))
               if pid != sshd.pid]
    assert holders, f"no sshd process serves the connection from port {client_port}"
    for pid in holders:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_ssh_session_dying_closes_every_forwarded_connection(sshd, service, hosts,
                                                             client_kwargs):
    client = SSHClient(hosts[0], **client_kwargs)
    server = TunnelServer(client, LOOPBACK, service(_echo))
    server.start()
    try:
        conns = [_connect(server.listen_port) for _ in range(3)]
        for conn in conns:
            conn.sendall(b"up")
            assert conn.recv(10) == b"up"
        _kill_connection_of(sshd, client)

        for conn in conns:
            try:
                assert _read_to_eof(conn) == b""
            except ConnectionResetError:
                pass  # closed either way; what matters is that nothing hangs
            conn.close()
        assert isinstance(server.exception, SSHError)
        assert server.exception.host == hosts[0]
        with _connect(server.listen_port) as late:  # no session: closed at once
            assert _read_to_eof(late) == b""
    finally:
        server.stop()
        client.disconnect()


# --- parallel-ssh's forwarder ------------------------------------------------------------

def test_forwarder_enqueue_gives_a_port_and_cleanup_stops_it(service, ssh):
    forwarder = LocalForwarder()
    forwarder.enqueue(ssh, LOOPBACK, service(_echo))
    port = forwarder.out_q.get(timeout=30)
    assert forwarder.started.is_set()

    with _connect(port) as conn:
        conn.sendall(b"via forwarder")
        assert conn.recv(100) == b"via forwarder"

    forwarder.cleanup_server(ssh)
    assert _refuses(port)
    forwarder.shutdown()
    forwarder.join(10)
    assert not forwarder.is_alive()
    assert forwarder.shutdown_triggered.is_set()


def test_module_forwarder_is_parallel_ssh_s():
    from pssh.clients.native import single

    assert single.FORWARDER is FORWARDER
    assert isinstance(FORWARDER, LocalForwarder)


# --- many hosts ------------------------------------------------------------------------

def test_forward_ports_gives_one_working_port_per_host(service, hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:3], **client_kwargs)
    echo_port = service(_echo)
    try:
        with client.forward_ports(LOOPBACK, echo_port) as forwards:
            assert isinstance(forwards, PortForwards)
            assert len(forwards) == 3 and len(set(forwards)) == 3
            assert forwards.hosts == hosts[:3]
            replies = [_exchange(port, f"to {host}".encode())
                       for host, port in zip(forwards.hosts, forwards)]
            ports = list(forwards)
        assert replies == [f"to {host}".encode() for host in hosts[:3]]
        assert all(_refuses(port) for port in ports)
        output = client.run_command("echo ok")  # the hosts stay connected
        client.join(output)
        assert [list(out.stdout) for out in output] == [["ok"]] * 3
    finally:
        client.disconnect()


def test_forward_ports_with_an_unreachable_host_raises_naming_it(hosts, client_kwargs,
                                                                   closed_port):
    kwargs = dict(client_kwargs, port=closed_port)
    client = ParallelSSHClient(["127.0.0.1"], **kwargs)
    try:
        with pytest.raises(ConnectionError) as caught:
            client.forward_ports(LOOPBACK, 22)
        assert caught.value.host == "127.0.0.1"
    finally:
        client.disconnect()


def test_forward_ports_refuses_a_bad_port_before_connecting(hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:2], **client_kwargs)
    with pytest.raises(ValueError, match="port"):
        client.forward_ports(LOOPBACK, 70000)


class _HeldRead:
    """A channel whose first read is held back (see ``conftest.LateRead``)."""

    def __init__(self, channel: Any, late: LateRead) -> None:
        self._channel = channel
        self.late = late

    def __getattr__(self, name: str) -> object:
        return getattr(self._channel, name)

    def read(self, *args: object) -> object:
        return self.late.run(lambda: self._channel.read(*args))


def _thread_listener(greet: threading.Event | None) -> tuple[int, threading.Event]:
    """A listener in a real thread (the held read blocks gevent's hub): it accepts one
    connection and, given ``greet``, sends b"hello" once that is set; it holds the
    connection until the returned event is set."""
    server = stdlib_socket.create_server((LOOPBACK, 0))
    server.settimeout(30)
    done = threading.Event()

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                if greet is not None and greet.wait(30):
                    conn.sendall(b"hello")
                done.wait(30)
    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], done


def test_bytes_filed_by_another_tunnels_read_are_delivered(ssh):
    # A pass reads the speaking tunnel before it speaks; its bytes then reach the socket
    # before the silent tunnel's read, which drains the socket and files them in
    # libssh2's queue. Nothing more comes on the socket, so a pump that then parked on
    # it would never deliver them.
    greet = threading.Event()
    speaker, speaker_done = _thread_listener(greet)
    silent, silent_done = _thread_listener(None)
    late = LateRead(ssh, greet.set)
    pump = ChannelPump(ssh, "test")
    ends = []
    try:
        for port, wrap in ((speaker, lambda channel: channel),
                           (silent, lambda channel: _HeldRead(channel, late))):
            channel = ssh.open_channel("direct_tcpip_ex", LOOPBACK, port, LOOPBACK, 0,
                                       deadline=None, action="opening a test tunnel")
            local, peer = socket.socketpair()
            ends.append(peer)
            pump.add(wrap(channel), local, f"port {port}")
        ends[0].settimeout(5)
        assert ends[0].recv(100) == b"hello"
        assert late.took_bytes  # the race was really run
    finally:
        greet.set()
        speaker_done.set()
        silent_done.set()
        pump.close()
        for end in ends:
            end.close()
