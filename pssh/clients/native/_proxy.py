"""Connecting through a bastion (``proxy_host``): one SSH connection to it, many tunnels.

Theory of operation
-------------------
A :class:`Bastion` is one authenticated :class:`NativeClient` to the proxy host. Each target
host behind it gets a *tunnel*: a ``direct-tcpip`` channel on the bastion's session to
the target's address, and a local socket pair. The target's own SSH session runs over one
end of the pair as if it were a TCP connection; the bastion pumps bytes between the other
end and the channel. So every target behind one bastion shares one connection to it.

Pumping, per bastion:

- one *reader* greenlet reads every tunnel's channel in turn and queues what arrives for
  that tunnel's local socket; it parks on the bastion's socket in the wait loop when no
  channel has anything;
- per tunnel, a *deliverer* greenlet writes the queue into the local socket, and an
  *uplink* greenlet reads the local socket and writes to the channel.

A tunnel whose target is not being read (its output is pulled lazily) fills its local
socket; its deliverer then waits alone and the reader stops reading that channel until
the queue drains, so the channel's window holds the remote side back. The other tunnels
keep flowing: one slow target never stalls the bastion.

If the bastion's connection fails, every tunnel's local socket is shut down, so each
target's session fails at once; the target clients then raise ``ProxyError`` naming
host and bastion.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from gevent import socket
from gevent.event import Event
from gevent.lock import Semaphore

from ...exceptions import ProxyError, SessionError, SSHError
from ..base._tcp import SocketHandle
from ._seams import NativeClient
from ._wait import EAGAIN

__all__ = ["Bastion"]

logger = logging.getLogger("pssh.clients.native")

READ_SIZE = 64 * 1024
QUEUE_LIMIT = 256 * 1024
"""Bytes queued for one tunnel's local socket before the reader stops reading its
channel, so the channel's window holds the sender back."""


class _Tunnel:
    """One target's channel on the bastion and the local socket its session runs over."""

    def __init__(self, channel: Any, local: socket.socket, target: str) -> None:
        self.channel = channel
        self.local = local
        self.target = target
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self.has_data = Event()
        self.eof = False  # the channel has ended: deliver what is queued, then close
        self.closed = False

    def put(self, data: bytes) -> None:
        self.queue.append(data)
        self.queued += len(data)
        self.has_data.set()

    def is_full(self) -> bool:
        return self.queued >= QUEUE_LIMIT


class Bastion:
    """One connection to a proxy host, shared by every target that goes through it.

    :param connect: makes and returns the authenticated client to the proxy host.
    :param where: ``host:port`` of the proxy, for messages.
    """

    def __init__(self, connect: Callable[[], NativeClient], where: str) -> None:
        self._connect = connect
        self.where = where
        self.client: NativeClient | None = None
        self.failure: str | None = None
        self._tunnels: list[_Tunnel] = []
        self._reader: gevent.Greenlet | None = None
        self._connecting = Semaphore()

    def __repr__(self) -> str:
        return f"<Bastion {self.where} {len(self._tunnels)} tunnels>"

    def _connected_client(self, target: str) -> NativeClient:
        with self._connecting:  # targets sharing the bastion wait for one connection
            if self.client is None or not self.client.is_connected():
                try:
                    self.client = self._connect()
                except SSHError as exc:
                    raise ProxyError(f"Cannot connect to {target} through proxy "
                                     f"{self.where}: {exc}", host=exc.host,
                                     port=exc.port) from exc
                self.failure = None
            return self.client

    def open_tunnel(self, host: str, port: int, deadline: float | None) -> SocketHandle:
        """Open a tunnel to ``host:port``; return the socket the target session uses."""
        target = f"{host}:{port}"
        client = self._connected_client(target)
        try:
            channel = client.open_channel("direct_tcpip_ex", host, port, "127.0.0.1", 0,
                                          deadline=deadline,
                                          action=f"opening a tunnel to {target}")
        except SessionError as exc:
            raise ProxyError(f"Proxy {self.where} could not open a connection to {target}: "
                             f"{exc.reason or exc}; is the host up, and does the proxy allow "
                             f"TCP forwarding?", host=host, port=port,
                             reason=exc.reason) from exc
        target_end, pump_end = socket.socketpair()
        tunnel = _Tunnel(channel, pump_end, target)
        self._tunnels.append(tunnel)
        gevent.spawn(self._deliver, tunnel)
        gevent.spawn(self._uplink, client, tunnel)
        if self._reader is None or self._reader.dead:
            self._reader = gevent.spawn(self._read_all, client)
        return SocketHandle(target_end)

    def close(self) -> None:
        """Close every tunnel and the connection to the proxy."""
        for tunnel in list(self._tunnels):
            self._close_tunnel(tunnel)
        client, self.client = self.client, None
        if client is not None:
            client.disconnect()

    # -- the pumps -------------------------------------------------------------------------

    def _read_all(self, client: NativeClient) -> None:
        """Read every tunnel's channel until no tunnel is left or the connection fails."""
        try:
            while self._tunnels:
                client.wait_for(self._read_once, deadline=None,
                                 action=f"relaying through proxy {self.where}")
        except SSHError as exc:
            self.failure = str(exc)
            logger.debug("Proxy %s failed: %s", self.where, exc)
            for tunnel in list(self._tunnels):
                self._close_tunnel(tunnel)

    def _read_once(self) -> bool:
        """One pass over the tunnels; whether anything moved (or nothing is left)."""
        progressed = not self._tunnels
        for tunnel in list(self._tunnels):
            if tunnel.eof or tunnel.is_full():
                continue
            size, data = tunnel.channel.read(READ_SIZE)
            if size == EAGAIN:
                continue
            progressed = True
            if size > 0:
                tunnel.put(data)
            elif tunnel.channel.eof():
                tunnel.eof = True
                tunnel.has_data.set()
        return progressed

    def _deliver(self, tunnel: _Tunnel) -> None:
        """Write what the reader queued into the tunnel's local socket."""
        try:
            while not tunnel.closed:
                tunnel.has_data.wait()
                tunnel.has_data.clear()
                while tunnel.queue:
                    chunk = tunnel.queue.popleft()
                    tunnel.local.sendall(chunk)
                    was_full = tunnel.is_full()
                    tunnel.queued -= len(chunk)
                    if was_full and not tunnel.is_full() and self.client is not None:
                        self.client.wake_waiters()  # the reader may read this channel again
                if tunnel.eof:
                    tunnel.local.shutdown(socket.SHUT_WR)
                    return
        except OSError as exc:  # the target closed its end
            logger.debug("Tunnel to %s: %s", tunnel.target, exc)
            self._close_tunnel(tunnel)

    def _uplink(self, client: NativeClient, tunnel: _Tunnel) -> None:
        """Send what the target session writes to the tunnel's channel."""
        try:
            while True:
                data = tunnel.local.recv(READ_SIZE)
                if not data:
                    break
                client.write_all(tunnel.channel.write, data, deadline=None,
                                  action=f"relaying to {tunnel.target}")
        except (OSError, SSHError) as exc:
            logger.debug("Tunnel to %s: %s", tunnel.target, exc)
        self._close_tunnel(tunnel)

    def _close_tunnel(self, tunnel: _Tunnel) -> None:
        if tunnel.closed:
            return
        tunnel.closed = True
        tunnel.has_data.set()
        if tunnel in self._tunnels:
            self._tunnels.remove(tunnel)
        try:
            tunnel.local.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        tunnel.local.close()
        client = self.client
        if client is not None and client.is_connected():
            client.close_quietly(tunnel.channel)
