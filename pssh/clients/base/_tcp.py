"""Prompt acknowledgements on a client's TCP socket.

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

import socket

__all__ = ["QuickAck"]

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
