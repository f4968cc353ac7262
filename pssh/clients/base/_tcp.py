"""A client's TCP connection: making it (:class:`TCPTarget`: resolve, connect within the
deadline, and turn the socket's errors into pssh's, naming the host), the descriptor the
SSH library and the wait loop use (:class:`SocketHandle`), and prompt acknowledgements on
it (:class:`QuickAck`).

Why the acknowledgements: OpenSSH's server sends with Nagle's algorithm on (it turns it
off only for sessions with a pty), so a small message that follows another one waits
until the client acknowledges the first. Linux delays that acknowledgement by up to 40
ms when the client has nothing to send. Right after authentication the server sends its
host keys in two writes and then the channel-open confirmation, and every channel open
used to take 42 ms for that reason alone. Asking the kernel for an immediate
acknowledgement before each wait for incoming data removes the stall. ``TCP_QUICKACK``
is not sticky (the kernel falls back to delayed acknowledgements as soon as we send),
which is why it is set at every wait.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
from dataclasses import dataclass
from typing import Any, NoReturn

from gevent import socket as gevent_socket

from ..._deadline import time_left
from ...exceptions import (
    ConnectionError,
    NoIPv6AddressFoundError,
    RefusedConnectionError,
    SSHError,
    Timeout,
    UnknownHostError,
)

__all__ = ["QuickAck", "Retryable", "SocketHandle", "TCPTarget"]

_TCP_QUICKACK: int = getattr(socket, "TCP_QUICKACK", -1)  # Linux only


class QuickAck:
    """Sets ``TCP_QUICKACK`` on one descriptor it does not own; gives up for good where
    the socket or the system does not have it (a proxy tunnel's socket pair, macOS)."""

    __slots__ = ("_fileno",)

    def __init__(self, fileno: int) -> None:
        self._fileno = fileno if _TCP_QUICKACK >= 0 else -1

    def request(self) -> None:
        """Acknowledge the next incoming segment at once."""
        if self._fileno < 0:
            return
        # A throwaway socket object over the descriptor, detached so it never closes it;
        # with the family given, making it costs no system call.
        view = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, self._fileno)
        try:
            view.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        except OSError:
            self._fileno = -1  # not TCP: nothing to acknowledge
        finally:
            view.detach()


class SocketHandle:
    """The connected TCP socket's file descriptor.

    Once connected, libssh2 and the wait loop use only the descriptor, so the client takes
    it out of Python's socket object and hands this handle to the SSH session, which keeps
    a reference to it. Disconnecting shuts the connection down at once but leaves the
    descriptor allocated; it is closed when the handle is collected, that is after the
    session and every channel that could still write to it (libssh2 sends a channel close
    when a channel is freed). Closing earlier would let a new connection reuse the number
    and receive those stray bytes.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.family = sock.family
        self._fd = sock.detach()

    def __repr__(self) -> str:
        return f"<SocketHandle fd={self._fd}>"

    def __del__(self) -> None:
        self.close()

    def fileno(self) -> int:
        """The descriptor, or -1 once closed."""
        return self._fd

    def shutdown(self) -> None:
        """End the TCP connection both ways, keeping the descriptor; safe to repeat."""
        if self._fd >= 0:
            try:
                self._address("shutdown", socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Close the descriptor; safe to call more than once."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def getsockname(self) -> Any:
        """The local address, as ``socket.getsockname`` gives it."""
        return self._address("getsockname")

    def getpeername(self) -> Any:
        """The remote address, as ``socket.getpeername`` gives it."""
        return self._address("getpeername")

    def _address(self, method: str, *args: Any) -> Any:
        # A throwaway socket object over our descriptor, detached before it can close it.
        view = socket.socket(self.family, socket.SOCK_STREAM, fileno=self._fd)
        try:
            return getattr(view, method)(*args)
        finally:
            view.detach()


class Retryable(Exception):
    """A connection attempt failed in a way that another attempt may not."""

    def __init__(self, error: SSHError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class TCPTarget:
    """Where one client connects: ``address`` (the host, or its ssh_config HostName) on
    ``port``; ``host`` is the name errors give."""

    host: str
    address: str
    port: int
    ipv6_only: bool
    timeout: float | None

    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self, deadline: float | None) -> SocketHandle:
        """A connected socket, within ``deadline``.

        :raises Retryable: a timeout or a transient error, worth another attempt.
        :raises ConnectionError: refused, unresolvable, or no socket could be made.
        """
        family = socket.AF_INET6 if self.ipv6_only else socket.AF_UNSPEC
        for family_, type_, proto, _, address in self._resolve(family):
            try:
                sock = gevent_socket.socket(family_, type_, proto)
            except OSError as exc:
                raise self.no_socket_error(exc) from exc
            left = time_left(deadline)
            # A zero timeout would make the socket non-blocking: connect() would fail at
            # once with EINPROGRESS instead of timing out.
            sock.settimeout(left if left is None or left > 0 else 1e-9)
            try:
                sock.connect(address)
            except BaseException as exc:
                sock.close()
                self._raise_connect_error(exc)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SocketHandle(sock)
        raise AssertionError("unreachable: _resolve returns at least one address")

    def _resolve(self, family: int) -> list[tuple[Any, ...]]:
        try:
            # An IP address needs no lookup: parse it here rather than hand it to gevent's
            # resolver thread, which costs a thread switch each way per host.
            return socket.getaddrinfo(self.address, self.port, family, socket.SOCK_STREAM,
                                      socket.IPPROTO_TCP, socket.AI_NUMERICHOST)
        except socket.gaierror:
            pass  # a name, or an address of the wrong family
        try:
            found: list[tuple[Any, ...]] = gevent_socket.getaddrinfo(
                self.address, self.port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            if self.ipv6_only:
                raise NoIPv6AddressFoundError(
                    f"Host {self.host!r} has no IPv6 address ({exc.strerror}) and ipv6_only "
                    f"is set; give an IPv6 address or unset ipv6_only",
                    host=self.host, port=self.port) from exc
            raise UnknownHostError(
                f"Cannot resolve host {self._name()} (port {self.port}): {exc.strerror}; "
                f"check the host name", host=self.host, port=self.port) from exc
        return found

    def _name(self) -> str:
        """``host`` as messages name it, with its ssh_config HostName if it has one."""
        if self.address == self.host:
            return repr(self.host)
        return f"{self.host!r} (HostName {self.address!r})"

    def no_socket_error(self, exc: OSError) -> ConnectionError:
        """The error for a socket (or its duplicate) that could not be made."""
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return ConnectionError(
                f"Cannot connect to {self.where()}: this process is out of file "
                f"descriptors ({exc.strerror}); raise the limit (ulimit -n, now "
                f"{_open_files_limit()}) or give one client fewer hosts or a smaller "
                f"pool_size", host=self.host, port=self.port, reason=exc.strerror)
        return ConnectionError(f"Cannot make a socket to connect to {self.where()}: "
                               f"{exc.strerror or exc}", host=self.host, port=self.port,
                               reason=exc.strerror)

    def _raise_connect_error(self, exc: BaseException) -> NoReturn:
        if isinstance(exc, socket.timeout):
            raise Retryable(Timeout(
                f"Connecting to {self.where()} timed out after {self.timeout}s",
                host=self.host, port=self.port)) from exc
        if isinstance(exc, ConnectionRefusedError):  # the builtin, from connect()
            raise RefusedConnectionError(
                f"Connection to {self.where()} refused: nothing listens on port {self.port} "
                f"there; check the host and port", host=self.host, port=self.port,
                reason=exc.strerror) from exc
        if isinstance(exc, OSError):
            raise Retryable(ConnectionError(
                f"Cannot connect to {self.where()}: {exc.strerror or exc}",
                host=self.host, port=self.port, reason=exc.strerror or str(exc))) from exc
        raise exc


def _open_files_limit() -> str:
    """This process's soft limit on open files, as text."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
