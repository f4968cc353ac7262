"""The one place in pssh where a greenlet waits on the network.

Theory of operation
-------------------
Every libssh2 session runs non-blocking. A libssh2 call either completes or returns
``LIBSSH2_ERROR_EAGAIN``; after EAGAIN, ``session.block_directions()`` says whether
libssh2 waits to read, to write, or both. :meth:`SessionWaiter.call` then parks the
calling greenlet on the session's socket in exactly those directions, with the time left
until the caller's deadline, and retries when the socket is ready. Nothing here polls on
an interval or sleeps. The parking itself is shared with the libssh
engine (``pssh.clients.base._wait``); what is libssh2's is below.

Several greenlets may wait on one session at once (two channels, a tunnel's reader
beside a command, a keepalive). A libssh2 call made for one channel drains the socket
and queues packets for the others inside libssh2, where their socket watchers cannot see
them. The rule that wakes the others after such a call, and stops two waiters from
bouncing each other, is shared with the libssh engine (``pssh.clients.base._wait``).
One greenlet's own attempt can fall into the same gap: its stderr read (or a second
tunnel's read) files bytes for the stream it read just before. The output reader and the
tunnel pump read again when such a read took bytes from the socket, by the kernel's
count (``taken_bytes``), instead of parking on a socket that may stay quiet.
"""

from __future__ import annotations

from typing import Callable

from ssh2.error_codes import LIBSSH2_ERROR_EAGAIN
from ssh2.session import LIBSSH2_SESSION_BLOCK_INBOUND, LIBSSH2_SESSION_BLOCK_OUTBOUND

from ..base._wait import BaseSessionWaiter

__all__ = ["EAGAIN", "SessionWaiter"]

EAGAIN = LIBSSH2_ERROR_EAGAIN


class SessionWaiter(BaseSessionWaiter):
    """Runs libssh2 calls on one non-blocking session, parking greenlets on EAGAIN."""

    AGAIN = EAGAIN

    def write(self, write: Callable[[bytes], tuple[int, int]], data: bytes,
              deadline: float | None = None) -> int:
        """Write all of ``data`` with a libssh2 write function, resuming partial writes.

        ssh2-python's non-blocking writes return ``(rc, bytes_written)``, and may send
        part of the data before returning EAGAIN: the count is honoured either way.
        """
        # Its own loop rather than ``until``: a partial write counts as progress (other
        # greenlets are woken) and yet, after EAGAIN, must park before the next write.
        view = memoryview(data)
        sent = 0
        reason = None
        while sent < len(view):
            mark = self._bytes_mark(reason)
            rc, written = write(view[sent:].tobytes() if sent else data)
            sent += max(written, 0)
            self.after_call(reason, written > 0, mark)
            reason = self.park(deadline) if rc == EAGAIN and sent < len(view) else None
        return sent

    def _library_directions(self) -> tuple[bool, bool]:
        directions = self.session.block_directions()
        return (bool(directions & LIBSSH2_SESSION_BLOCK_INBOUND),
                bool(directions & LIBSSH2_SESSION_BLOCK_OUTBOUND))
