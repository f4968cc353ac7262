"""Carrying TCP connections over ``direct-tcpip`` channels: the pump, and the bastion
(``proxy_host``) built on it.

Theory of operation
-------------------
A *tunnel* is one ``direct-tcpip`` channel on some client's session paired with one local
socket. A :class:`ChannelPump` moves the bytes of every tunnel on one client's session:

- one *reader* greenlet reads every tunnel's channel in turn and queues what arrives for
  that tunnel's local socket; it parks on the session's socket in the client's wait loop
  when no channel has anything;
- per tunnel, a *deliverer* greenlet writes the queue into the local socket, and an
  *uplink* greenlet reads the local socket and writes to the channel.

A tunnel whose local peer does not read fills its local socket; its deliverer then waits
alone and the reader stops reading that channel until the queue drains, so the channel's
window holds the remote side back. The other tunnels keep flowing: one slow peer never
stalls the session.

Each direction ends on its own, as TCP's half-close does: end of data from the local
socket becomes the channel's EOF, and the channel's EOF becomes a write shutdown of the
local socket. The tunnel is closed when both directions have ended, when either side
fails, or when its owner closes it. If the session fails, every tunnel's local socket is
shut down at once, so nothing on the local side waits for data that cannot come.

Two owners use the pump. A :class:`Bastion` is one authenticated client to a proxy host;
each target host behind it gets a tunnel whose local socket is one end of a socket pair,
and the target's own SSH session runs over the other end as if it were a TCP connection.
So every target behind one bastion shares one connection to it; if that connection
fails, the targets' clients raise ``ProxyError`` naming host and bastion. The other owner
is :class:`pssh.clients.native.tunnel.TunnelServer`, whose tunnels' local sockets are the
connections it accepts (local port forwarding).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import gevent
from gevent import socket
from gevent.event import Event
from gevent.lock import Semaphore

from ...exceptions import ProxyError, SessionError, SSHError
from ..base._tcp import SocketHandle
from ._seams import NativeClient
from ._wait import EAGAIN

__all__ = ["Bastion", "Hop", "parse_jump_chain", "bastion_chain", "ChannelPump"]

logger = logging.getLogger("pssh.clients.native")

READ_SIZE = 64 * 1024
QUEUE_LIMIT = 256 * 1024
"""Bytes queued for one tunnel's local socket before the reader stops reading its
channel, so the channel's window holds the sender back."""


class _Tunnel:
    """One channel and the local socket whose bytes it carries."""

    def __init__(self, channel: Any, local: socket.socket, target: str) -> None:
        self.channel = channel
        self.local = local
        self.target = target
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self.has_data = Event()
        self.eof = False  # the channel has ended: deliver what is queued, then shut down
        self.delivered_eof = False  # the local socket was told: no more data comes
        self.sent_eof = False  # the channel was told: no more data comes
        self.closed = False
        self.done = Event()  # set once closed

    def put(self, data: bytes) -> None:
        self.queue.append(data)
        self.queued += len(data)
        self.has_data.set()

    def is_full(self) -> bool:
        return self.queued >= QUEUE_LIMIT


class ChannelPump:
    """Moves the bytes of every tunnel on one client's session.

    :param client: the client whose session carries the channels.
    :param where: what the pump serves, for messages (``host:port``).
    :param on_failure: called with the error when the session fails, just before every
        tunnel is closed.
    """

    def __init__(self, client: NativeClient, where: str,
                 on_failure: Callable[[SSHError], None] | None = None) -> None:
        self.client = client
        self.where = where
        self._on_failure = on_failure
        self._tunnels: list[_Tunnel] = []
        self._reader: gevent.Greenlet | None = None
        self._room = Event()  # set when a tunnel may have become readable again

    def __repr__(self) -> str:
        return f"<ChannelPump {self.where} {len(self._tunnels)} tunnels>"

    def __len__(self) -> int:
        return len(self._tunnels)

    def add(self, channel: Any, local: socket.socket, target: str) -> Event:
        """Start carrying bytes between ``channel`` and ``local`` (to ``target``, for
        messages). The pump owns both from now on, and closes both; the returned event is
        set once it has."""
        tunnel = _Tunnel(channel, local, target)
        self._tunnels.append(tunnel)
        self._room.set()
        gevent.spawn(self._deliver, tunnel)
        gevent.spawn(self._uplink, tunnel)
        if self._reader is None or self._reader.dead:
            self._reader = gevent.spawn(self._read_all)
        return tunnel.done

    def close(self) -> None:
        """Close every tunnel; the reader then ends."""
        for tunnel in list(self._tunnels):
            self._close_tunnel(tunnel)

    def _read_all(self) -> None:
        """Read every tunnel's channel until no tunnel is left or the session fails.

        While every tunnel is full or has ended, the reader waits for a deliverer to make
        room (or a tunnel to come or go) rather than on the session's socket, which stays
        readable with bytes for the full tunnels: parking there would wake at once, over
        and over, for as long as a local peer does not read.
        """
        try:
            while self._tunnels:
                if not self._readable():
                    self._room.clear()
                    self._room.wait()
                    continue
                self.client.wait_for(self._read_once, deadline=None,
                                     action=f"relaying through {self.where}")
        except SSHError as exc:
            logger.debug("Tunnels through %s failed: %s", self.where, exc)
            if self._on_failure is not None:
                self._on_failure(exc)  # first: closing wakes whoever asks what failed
            self.close()

    def _read_once(self) -> bool:
        """Read every tunnel until something moves or a pass takes nothing from the
        socket; whether anything moved (or nothing is left).

        Each libssh2 read first drains the session's socket, so a later tunnel's read
        may file bytes (or the end) for a tunnel read earlier in the same pass, and
        nothing more may come on the socket for them. A pass that moved nothing is
        therefore repeated while it took bytes from the socket (the kernel's count says).
        """
        while True:
            readable = self._readable()
            if not readable:
                return True  # nothing to read now: _read_all waits for room
            before = self.client.taken_bytes()
            progressed = self._read_pass(readable)
            if progressed or before is None or self.client.taken_bytes() == before:
                return progressed

    def _readable(self) -> list[_Tunnel]:
        return [tunnel for tunnel in self._tunnels if not (tunnel.eof or tunnel.is_full())]

    def _read_pass(self, tunnels: list[_Tunnel]) -> bool:
        progressed = False
        for tunnel in tunnels:
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
                while tunnel.queue and not tunnel.closed:
                    chunk = tunnel.queue.popleft()
                    tunnel.local.sendall(chunk)
                    was_full = tunnel.is_full()
                    tunnel.queued -= len(chunk)
                    if was_full and not tunnel.is_full():
                        self._room.set()  # the reader may read this channel again
                        self.client.wake_waiters()
                if tunnel.eof and not tunnel.closed:
                    tunnel.local.shutdown(socket.SHUT_WR)
                    tunnel.delivered_eof = True
                    break
        except OSError as exc:  # the local peer closed its end
            logger.debug("Tunnel to %s: %s", tunnel.target, exc)
            self._close_tunnel(tunnel)
        self._close_if_done(tunnel)

    def _uplink(self, tunnel: _Tunnel) -> None:
        """Send what the local peer writes to the tunnel's channel, then its EOF."""
        action = f"relaying to {tunnel.target}"
        try:
            while True:
                data = tunnel.local.recv(READ_SIZE)
                if not data:
                    break
                self.client.write_all(tunnel.channel.write, data, deadline=None,
                                      action=action)
            if not tunnel.closed:
                self.client.call(tunnel.channel.send_eof, deadline=None, action=action)
                tunnel.sent_eof = True
        except (OSError, SSHError) as exc:
            logger.debug("Tunnel to %s: %s", tunnel.target, exc)
            self._close_tunnel(tunnel)
        self._close_if_done(tunnel)

    def _close_if_done(self, tunnel: _Tunnel) -> None:
        if tunnel.sent_eof and tunnel.delivered_eof:
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
        tunnel.done.set()
        self._room.set()
        if self.client.is_connected():
            self.client.close_quietly(tunnel.channel)
            self.client.wake_waiters()  # the reader may have no tunnel left to read


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
        self._pump: ChannelPump | None = None
        self._connecting = Semaphore()

    def __repr__(self) -> str:
        tunnels = len(self._pump) if self._pump is not None else 0
        return f"<Bastion {self.where} {tunnels} tunnels>"

    def _connected_pump(self, target: str) -> ChannelPump:
        with self._connecting:  # targets sharing the bastion wait for one connection
            if self._pump is None or not self._pump.client.is_connected():
                try:
                    self.client = self._connect()
                except SSHError as exc:
                    raise ProxyError(f"Cannot connect to {target} through proxy "
                                     f"{self.where}: {exc}", host=exc.host,
                                     port=exc.port) from exc
                self.failure = None
                self._pump = ChannelPump(self.client, f"proxy {self.where}",
                                         on_failure=self._failed)
            return self._pump

    def _failed(self, exc: SSHError) -> None:
        self.failure = str(exc)

    def open_tunnel(self, host: str, port: int, deadline: float | None) -> SocketHandle:
        """Open a tunnel to ``host:port``; return the socket the target session uses."""
        target = f"{host}:{port}"
        pump = self._connected_pump(target)
        try:
            channel = pump.client.open_channel("direct_tcpip_ex", host, port, "127.0.0.1",
                                               0, deadline=deadline,
                                               action=f"opening a tunnel to {target}")
        except SessionError as exc:
            raise ProxyError(f"Proxy {self.where} could not open a connection to {target}: "
                             f"{exc.reason or exc}; is the host up, and does the proxy allow "
                             f"TCP forwarding?", host=host, port=port,
                             reason=exc.reason) from exc
        target_end, pump_end = socket.socketpair()
        pump.add(channel, pump_end, target)
        return SocketHandle(target_end)

    def close(self) -> None:
        """Close every tunnel and the connection to the proxy."""
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.close()
        client, self.client = self.client, None
        if client is not None:
            client.disconnect()


@dataclass(frozen=True)
class Hop:
    """One jump host of a chain: where to connect and as whom (``None``: the
    ``proxy_user`` setting)."""

    host: str
    port: int
    user: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}"


def parse_jump_chain(proxy_host: str, proxy_port: int) -> tuple[Hop, ...]:
    """The hops of ``proxy_host``: one host, or a chain as in OpenSSH's ``ProxyJump``
    (``-J``), ``[user@]host[:port]`` entries separated by commas, the first hop first
    (an IPv6 address in brackets when it has a port). A hop without a port uses
    ``proxy_port``.

    :raises ValueError: an entry is empty or its port is not a port number.
    """
    hops = []
    for entry in proxy_host.split(","):
        entry = entry.strip()
        user, _, address = entry.rpartition("@")
        host, port = address, proxy_port
        if address.startswith("["):
            host, _, rest = address[1:].partition("]")
            if rest:
                port = _hop_port(rest.removeprefix(":"), proxy_host)
        elif address.count(":") == 1:
            host, _, port_text = address.partition(":")
            port = _hop_port(port_text, proxy_host)
        if not host:
            raise ValueError(f"proxy_host {proxy_host!r} has an empty hop: give host names "
                             f"separated by commas, each as [user@]host[:port]")
        hops.append(Hop(host, port, user or None))
    return tuple(hops)


def _hop_port(text: str, proxy_host: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"proxy_host {proxy_host!r} has a hop with port {text!r}: give a "
                         f"number from 1 to 65535")
    return int(text)


def bastion_chain(hops: tuple[Hop, ...], connect_hop: Callable[[Hop, Bastion | None],
                                                                NativeClient],
                  shared: dict[Any, Bastion], auth_key: Any = None) -> Bastion:
    """The bastion of the last of ``hops``, reached through the ones before it.

    Each hop is one shared connection (one :class:`Bastion`, kept in ``shared`` by the
    chain up to it and ``auth_key``), made on first use by ``connect_hop(hop, via)``,
    where ``via`` is the previous hop's bastion (``None`` for the first). A hop that fails
    fails only the targets behind it, with a ``ProxyError`` naming that hop.
    """
    bastion: Bastion | None = None
    for depth, hop in enumerate(hops):
        key = (hops[:depth + 1], auth_key)
        found = shared.get(key)
        if found is None:
            found = shared[key] = Bastion(partial(connect_hop, hop, bastion), str(hop))
        bastion = found
    assert bastion is not None, "a chain has at least one hop"
    return bastion
