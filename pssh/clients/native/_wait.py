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

One subtlety: several greenlets may wait on one session at once (two channels, or a
keepalive beside a reader). A libssh2 call made for one channel drains the socket and
queues packets for the others inside libssh2, where their socket watchers cannot see
them. So whenever a call may have read from the socket, which is any first attempt, any
attempt after the socket was ready, and any attempt that made progress, the other
greenlets parked on the same session are woken to retry. A greenlet woken that way that
still gets EAGAIN wakes nobody, so two waiters cannot bounce each other forever.
The price of that rule is a narrow window: if such a retry happens to read packets that
arrived for another waiter in the microseconds since it was woken, that waiter sleeps
until the socket next becomes readable (or its deadline). It needs two greenlets waiting
on one session at the same moment, which ``run_command``/``join`` never arrange by
themselves.
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
        view = memoryview(data)
        sent = 0

        def attempt() -> bool:
            nonlocal sent
            rc, written = write(view[sent:].tobytes() if sent else data)
            sent += max(written, 0)
            return written > 0 or rc != EAGAIN
        while sent < len(view):
            self.until(attempt, deadline)
        return sent

    def _library_directions(self) -> tuple[bool, bool]:
        directions = self.session.block_directions()
        return (bool(directions & LIBSSH2_SESSION_BLOCK_INBOUND),
                bool(directions & LIBSSH2_SESSION_BLOCK_OUTBOUND))
