"""Local port forwarding, as ``ssh -L`` does it: reach a service behind a host through
that host's existing SSH connection.

Theory of operation
-------------------
A :class:`TunnelServer` listens on a local port. For each connection it accepts, it opens
a ``direct-tcpip`` channel on its client's session to the service's address (the remote
host resolves and connects to it), and hands the channel and the accepted socket to a
``ChannelPump`` (in ``pssh.clients.native._proxy``), the same pump that carries the
connections of targets behind a bastion. So every connection to the local port shares the
one SSH connection, each libssh2 call waits in the client's one wait loop, and the pump's
flow control keeps one slow connection from stalling the others.

Everything runs in greenlets of the gevent hub of the thread that starts the server. The
tunnel moves bytes only while that thread's hub runs: a program that connects to the
local port from the same thread must do so with gevent (gevent's sockets, or a
monkey-patched library), or from another thread or process while this thread waits in
gevent (``server.serve_forever()``, ``gevent.wait()``, ``joinall``...).

parallel-ssh ran its :class:`LocalForwarder` (``FORWARDER``) as an OS thread with a hub
of its own. Ours keeps its names (``enqueue``, ``out_q``, ``cleanup_server``,
``shutdown``, ``start``, ``run``, ``started``) but runs as a greenlet in the hub of the
thread that uses it first, because a libssh2 session must only be used by one thread.

:meth:`ParallelSSHClient.forward_ports
<pssh.clients.native.parallel.ParallelSSHClient.forward_ports>` starts one server per
host and returns a :class:`PortForwards`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gevent
from gevent import socket
from gevent.event import Event
from gevent.pool import Pool
from gevent.queue import Queue
from gevent.server import StreamServer

from ..._deadline import deadline_after
from ..._validate import check_count, check_port
from ...constants import DEFAULT_RETRIES
from ...exceptions import SessionError, SSHError
from ..base._seams import where
from ._proxy import ChannelPump
from ._seams import NativeClient

__all__ = ["FORWARDER", "LocalForwarder", "PortForwards", "TunnelServer"]

logger = logging.getLogger("pssh.clients.native")


class TunnelServer(StreamServer):  # type: ignore[misc]  # gevent ships no type hints
    """A local listening port whose connections reach ``host:port`` through ``client``.

    Call ``start()`` (or ``serve_forever()``, both gevent's), then connect to
    ``(bind_address, listen_port)``. :meth:`stop` closes the listening socket and every
    connection made through it; the client stays connected.

    :param client: a connected :class:`~pssh.clients.native.single.SSHClient`.
    :param host: the service's host, as the remote host resolves it (``"127.0.0.1"`` is
        the remote host itself).
    :param port: the service's port.
    :param bind_address: the local address to listen on; the port is chosen by the
        system.
    :param num_retries: how many more times to try to open a connection's channel when
        the server refuses it (the service not listening yet, say); tried again at once.
    :raises ValueError: ``port`` is out of range or ``num_retries`` is negative.

    A connection whose channel cannot be opened is closed at once, and the error, a
    :class:`~pssh.exceptions.SSHError` naming the host, is kept in :attr:`exception`.
    If the SSH connection fails, every connection through the server is closed.
    """

    def __init__(self, client: NativeClient, host: str, port: int,
                 bind_address: str = "127.0.0.1", num_retries: int = DEFAULT_RETRIES) -> None:
        check_target(host, port)
        super().__init__((bind_address, 0), self._serve, spawn=Pool())
        self.client = client
        self.host = host
        self.port = port
        self.bind_address = bind_address
        self.num_retries = check_count(num_retries, "num_retries")
        self.exception: SSHError | None = None
        """The last error a connection met: its channel could not be opened, or the SSH
        connection failed."""
        self._pump = ChannelPump(client, f"{where(client)} to {host}:{port}",
                                 on_failure=self._failed)
        self._stopping = False

    def __repr__(self) -> str:
        state = "listening" if self.listen_port is not None else "not listening"
        return (f"<TunnelServer {self.bind_address}:{self.listen_port} -> {self.host}:"
                f"{self.port} via {where(self.client)}, {state}, {len(self._pump)} "
                f"connections>")

    @property
    def listen_port(self) -> int | None:
        """The local port connections are accepted on, once listening; else ``None``."""
        sock = getattr(self, "socket", None)  # gevent sets it when listening starts
        if sock is None:
            return None
        port: int = sock.getsockname()[1]
        return port

    @property
    def session(self) -> Any:
        """The client's libssh2 session, which carries the connections."""
        return self.client.session

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening, close every connection made through this server, and wait at
        most ``timeout`` seconds (default 1) for channels still being opened."""
        self._stopping = True
        self.close()  # the listener first: no connection may arrive while closing
        self._pump.close()
        super().stop(timeout)

    def _serve(self, local: socket.socket, address: tuple[Any, ...]) -> None:
        """One accepted connection: open its channel, hand both to the pump, and wait
        until the pump has closed them (gevent closes the socket when this returns)."""
        try:
            channel = self._open_channel(address)
        except SSHError as exc:
            logger.info("Forwarded connection from %s closed: %s", address, exc)
            self.exception = exc
            local.close()
            return
        except BaseException:
            local.close()
            raise
        if self._stopping:
            local.close()
            self.client.close_quietly(channel)
            return
        self._pump.add(channel, local, f"{self.host}:{self.port}").wait()

    def _open_channel(self, address: tuple[Any, ...]) -> Any:
        target = f"{self.host}:{self.port}"
        for attempt in range(self.num_retries + 1):
            try:
                return self.client.open_channel(
                    "direct_tcpip_ex", self.host, self.port, address[0], address[1],
                    deadline=deadline_after(self.client.timeout),
                    action=f"opening a forwarded connection to {target}")
            except SessionError as exc:
                if attempt < self.num_retries and self.client.is_connected():
                    continue
                raise SessionError(
                    f"{where(self.client)} could not open a connection to {target}: "
                    f"{exc.reason or exc}; is the service listening there, and does the "
                    f"server allow TCP forwarding?", host=self.client.host,
                    port=self.client.port, reason=exc.reason) from exc
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def _failed(self, exc: SSHError) -> None:
        self.exception = exc


class LocalForwarder:
    """Starts :class:`TunnelServer` instances on request; parallel-ssh's ``FORWARDER``.

    :meth:`enqueue` asks for a server, and the local port it listens on arrives on
    :attr:`out_q`::

        FORWARDER.enqueue(client, "127.0.0.1", 5432)
        local_port = FORWARDER.out_q.get()

    If the server cannot listen, the ``OSError`` arrives on :attr:`out_q` instead of a
    port. Unlike parallel-ssh's, this forwarder is a greenlet in the hub of the thread
    that first uses it, not an OS thread (see the module's introduction); its queues
    belong to that thread.
    """

    def __init__(self) -> None:
        self.started = Event()
        """Set once :meth:`run` is serving requests."""
        self.shutdown_triggered = Event()
        """Set by :meth:`shutdown`."""
        self._in_q: Queue[Any] | None = None
        self._out_q: Queue[Any] | None = None
        self._servers: list[TunnelServer] = []
        self._runner: Any = None

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else "idle"
        return f"<LocalForwarder {state}, {len(self._servers)} servers>"

    @property
    def in_q(self) -> Any:  # a gevent Queue
        """Requests, ``(client, host, port)``, waiting for :meth:`run`."""
        if self._in_q is None:  # made on first use, so it belongs to the user's thread
            self._in_q = Queue()
        return self._in_q

    @property
    def out_q(self) -> Any:  # a gevent Queue
        """Each request's local port (or ``OSError``), in request order."""
        if self._out_q is None:
            self._out_q = Queue()
        return self._out_q

    def start(self) -> None:
        """Start serving requests; does nothing if already serving."""
        if not self.is_alive():
            self.shutdown_triggered.clear()
            self._runner = gevent.spawn(self.run)

    def is_alive(self) -> bool:
        """Whether requests are being served."""
        return self._runner is not None and not self._runner.dead

    def join(self, timeout: float | None = None) -> None:
        """Wait at most ``timeout`` seconds for :meth:`run` to end."""
        if self._runner is not None:
            self._runner.join(timeout)

    def enqueue(self, client: NativeClient, host: str, port: int) -> None:
        """Ask for a server forwarding to ``host:port`` through ``client``; its local port
        arrives on :attr:`out_q`. Starts the forwarder if needed."""
        self.start()
        self.in_q.put((client, host, port))

    def run(self) -> None:
        """Serve requests until :meth:`shutdown`; :meth:`start` runs this in a greenlet."""
        self.started.set()
        try:
            while True:
                request = self.in_q.get()
                if request is None:
                    return
                self.out_q.put(self._start_server(*request))
        finally:
            self.started.clear()

    def _start_server(self, client: NativeClient, host: str, port: int) -> int | OSError:
        server = TunnelServer(client, host, port)
        try:
            server.start()
        except OSError as exc:
            logger.error("Cannot listen for a tunnel to %s:%s: %s", host, port, exc)
            return exc
        self._servers.append(server)
        return _port_of(server)

    def cleanup_server(self, client: NativeClient) -> None:
        """Stop every server forwarding through ``client``."""
        for server in [each for each in self._servers if each.client is client]:
            self._servers.remove(server)
            server.stop()

    def shutdown(self) -> None:
        """Stop every server and stop serving requests."""
        self.shutdown_triggered.set()
        servers, self._servers = self._servers, []
        for server in servers:
            server.stop()
        if self.is_alive():
            self.in_q.put(None)


def check_target(host: str, port: int) -> None:
    """Refuse a service address no server could forward to, before anything connects.

    :raises ValueError: ``host`` is not a non-empty string or ``port`` is out of range.
    """
    if not isinstance(host, str) or not host:
        raise ValueError(f"the host to forward to must be a non-empty string, not {host!r}")
    check_port(port, host)


def _port_of(server: TunnelServer) -> int:
    port = server.listen_port
    if port is None:
        raise ValueError(f"{server!r} is not listening; start it first")
    return port


FORWARDER = LocalForwarder()
"""The process's forwarder, as in parallel-ssh (also importable from
``pssh.clients.native.single``)."""


class PortForwards:
    """The local ports of one forwarding on many hosts, one per host in host order, as
    :meth:`ParallelSSHClient.forward_ports
    <pssh.clients.native.parallel.ParallelSSHClient.forward_ports>` returns them.

    Iterating, indexing and ``len()`` give the ports. :meth:`close` (or leaving a
    ``with`` block) stops every server; the hosts stay connected.

    :param servers: started servers, one per host.
    """

    def __init__(self, servers: list[TunnelServer]) -> None:
        self.servers = list(servers)
        """The :class:`TunnelServer` of each host, in host order."""
        self.ports = [_port_of(server) for server in self.servers]
        """Each host's local port, in host order."""

    def __repr__(self) -> str:
        return f"<PortForwards {list(zip(self.hosts, self.ports))}>"

    @classmethod
    def start(cls, clients: list[NativeClient], host: str, port: int,
              bind_address: str = "127.0.0.1") -> PortForwards:
        """Start one :class:`TunnelServer` per client to ``host:port``.

        :raises OSError: a server could not listen; those already started are stopped.
        """
        servers: list[TunnelServer] = []
        try:
            for client in clients:
                server = TunnelServer(client, host, port, bind_address=bind_address)
                server.start()
                servers.append(server)
        except BaseException:
            for server in servers:
                server.stop()
            raise
        return cls(servers)

    @property
    def hosts(self) -> list[str]:
        """The host of each port, in the same order."""
        return [server.client.host for server in self.servers]

    def __iter__(self) -> Iterator[int]:
        return iter(self.ports)

    def __len__(self) -> int:
        return len(self.servers)

    def __getitem__(self, index: int) -> int:
        return self.ports[index]

    def close(self) -> None:
        """Stop every server and close every connection made through them."""
        for server in self.servers:
            server.stop()

    def __enter__(self) -> PortForwards:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
