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
- ``taken_bytes`` (in ``pssh.clients.base._wait``, shared with the native engine) says
  whether libssh took bytes from the socket between two moments (or may have, while
  bytes stream in too fast to count), from the kernel's own counters (Linux reports, for
  a TCP socket, how many bytes it has received and how many are still queued). Callers
  that read several streams use it before parking (see ``_channel.py``).

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

from ssh.error_codes import SSH_AGAIN
from ssh.session import SSH_AUTH_AGAIN, SSH_READ_PENDING, SSH_WRITE_PENDING

from ..base._wait import BaseSessionWaiter

__all__ = ["SSH_AGAIN", "SSH_AUTH_AGAIN", "SessionWaiter"]



class SessionWaiter(BaseSessionWaiter):
    """Runs libssh calls on one non-blocking session, parking greenlets on "again"."""

    AGAIN = SSH_AGAIN

    def _library_directions(self) -> tuple[bool, bool]:
        flags = self.session.get_poll_flags()
        return bool(flags & SSH_READ_PENDING), bool(flags & SSH_WRITE_PENDING)
