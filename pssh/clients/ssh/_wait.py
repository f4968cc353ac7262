"""Where a greenlet waits on the network for libssh (ssh-python).

Theory of operation
-------------------
The design is the native engine's wait loop (``pssh.clients.native._wait``), adapted to
how libssh reports "not yet":

- Most non-blocking calls *return* ``SSH_AGAIN`` (-2); the authentication calls return
  ``SSH_AUTH_AGAIN`` (4) instead. ssh-python raises no exception for either, so
  :meth:`SessionWaiter.call` takes the code that means "again" for the call it makes.
- ``session.get_poll_flags()`` says what libssh's own poll would wait for:
  ``SSH_READ_PENDING`` is set whenever libssh is ready to read (in practice always once
  connected), ``SSH_WRITE_PENDING`` while libssh holds outgoing bytes the socket did not
  take. The greenlet is parked on exactly those directions, with the time left until its
  deadline, and retries when the socket is ready. Nothing polls on an interval.

libssh reads the socket inside almost every call ("handling packets") and files what it
reads under the channel and stream it belongs to. So a call made for one channel may take
the bytes another parked greenlet waits for, and a read of one stream may take the bytes
of the other stream of the same channel. Either way the bytes then sit in libssh's
buffers, where no socket watcher can see them: a greenlet parked now would sleep through
them. Two rules prevent that:

- Whenever a call may have read the socket (a first attempt, an attempt after the socket
  was ready, or one that made progress), the other greenlets parked on the same session
  are woken to retry, as in the native loop. A greenlet woken that way that gets nothing
  wakes the others only if its call did take bytes from the socket, so two waiters cannot
  bounce each other forever.
- :meth:`SessionWaiter.taken_bytes` says exactly whether libssh took bytes from the
  socket between two moments, from the kernel's own counters (Linux reports, for a TCP
  socket, how many bytes it has received and how many are still queued). Callers that
  read several streams use it before parking (see ``_channel.py``).

Where the kernel does not report the counts (not Linux), the second rule is off: output
that arrives between two of libssh's reads of the socket in one attempt, for a stream
read earlier in that attempt, then waits for the connection's next activity. Measured on
loopback with commands read the moment they start, that hit about one command in 600;
with the counts, none in 12,000. pssh supports Linux only.

The descriptor watched here is the client's own; libssh works on a duplicate of it that
it closes when the session is freed (see ``single.py``), so the watched descriptor stays
valid for as long as any greenlet can wait on the session.
"""

from __future__ import annotations

import array
import fcntl
import socket
import sys
import termios

from ssh.error_codes import SSH_AGAIN
from ssh.session import SSH_AUTH_AGAIN, SSH_READ_PENDING, SSH_WRITE_PENDING

from ..base._wait import SIBLING, BaseSessionWaiter

__all__ = ["SSH_AGAIN", "SSH_AUTH_AGAIN", "SessionWaiter"]

_TCP_INFO_LENGTH = 256
_BYTES_RECEIVED = slice(128, 136)  # struct tcp_info.tcpi_bytes_received, Linux >= 4.1


class SessionWaiter(BaseSessionWaiter):
    """Runs libssh calls on one non-blocking session, parking greenlets on "again"."""

    AGAIN = SSH_AGAIN

    def _bytes_mark(self, reason: str | None) -> int | None:
        """:meth:`taken_bytes` when the next call's reading decides whether to wake the
        other parked greenlets (a retry woken by a sibling), else ``None``."""
        return self.taken_bytes() if reason == SIBLING and self._parked else None

    def _took_bytes_since(self, mark: int | None) -> bool:
        return mark is not None and self.taken_bytes() != mark

    def taken_bytes(self) -> int | None:
        """How many bytes libssh has taken from the socket so far, or ``None`` where the
        kernel does not tell (not Linux, or not TCP).

        Linux counts the bytes a TCP socket has received; minus those still queued, that
        is what libssh has read. Bytes arriving between the two queries would skew the
        difference, so the count is only taken between two equal queue lengths.
        """
        try:
            view = socket.socket(fileno=self.fileno)
        except OSError:
            return None
        try:
            for _ in range(3):
                queued = self._unread_bytes()
                info = view.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LENGTH)
                if len(info) < _BYTES_RECEIVED.stop:
                    return None
                if self._unread_bytes() == queued:
                    return int.from_bytes(info[_BYTES_RECEIVED], sys.byteorder) - queued
        except OSError:
            return None
        finally:
            view.detach()
        return None

    def _unread_bytes(self) -> int:
        count = array.array("i", [0])
        fcntl.ioctl(self.fileno, termios.FIONREAD, count, True)
        return count[0]

    def _library_directions(self) -> tuple[bool, bool]:
        flags = self.session.get_poll_flags()
        return bool(flags & SSH_READ_PENDING), bool(flags & SSH_WRITE_PENDING)
