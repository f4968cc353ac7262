"""A client's TCP socket: the descriptor the SSH library and the wait loop use
(:class:`SocketHandle`), and prompt acknowledgements on it (:class:`QuickAck`).

OpenSSH's server sends with Nagle's algorithm on (it turns it off only for sessions with
a pty), so a small message that follows another one waits until the client acknowledges
the first. Linux delays that acknowledgement by up to 40 ms when the client has nothing
to send. Right after authentication the server sends its host keys in two writes and
then the channel-open confirmation, and every channel open used to take 42 ms for that
reason alone. Asking the kernel for an immediate acknowledgement before each wait for
incoming data removes the stall. ``TCP_QUICKACK`` is not sticky (the kernel falls back to
delayed acknowledgements as soon as we send), which is why it is set at every wait.
"""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = ["QuickAck", "SocketHandle"]

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
