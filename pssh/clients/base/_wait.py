"""What both engines' wait loops share: parking a greenlet on a session's socket.

Every non-blocking library call runs in :meth:`BaseSessionWaiter.until`: attempt, and if
the attempt made no progress, park on the session's socket in the directions the library
waits for, with the time left until the caller's deadline, then attempt again. Nothing
polls on an interval or sleeps.

An engine's ``SessionWaiter`` (``pssh.clients.native._wait``, ``pssh.clients.ssh._wait``)
supplies what is its library's: the code a call returns for "again" (``AGAIN``) and which
socket directions the library waits for (``_library_directions``).

Waking the others. Several greenlets may wait on one session (two channels, a tunnel
reader beside a command). A library call made for one of them may read the socket and
file packets for the others inside the library, where no socket watcher sees them: a
greenlet parked now would sleep through bytes already received. So after any call that
may have read the socket (a first attempt, one after the socket was ready, one that made
progress) the other parked greenlets are woken to retry. A greenlet woken by a sibling
whose retry gets nothing wakes the others only if its call took bytes from the socket,
as the kernel's counters tell (:meth:`BaseSessionWaiter.taken_bytes`); so two waiters
never bounce each other forever, and none sleeps through bytes a sibling's retry took.
The engines' modules say how their library reads the socket.
"""

from __future__ import annotations

import array
import errno
import fcntl
import itertools
import socket
import sys
import termios
import time
from typing import Any, Callable

from gevent.hub import Waiter, get_hub

from ._tcp import QuickAck

__all__ = ["READ", "WRITE", "SIBLING", "DeadlineExceeded", "BaseSessionWaiter"]

_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None)  # Linux only
_TCP_INFO_LENGTH = 256
_BYTES_RECEIVED = slice(128, 136)  # struct tcp_info.tcpi_bytes_received, Linux >= 4.1
_BUSY_COUNTS = itertools.count(-1, -1)  # see BaseSessionWaiter.taken_bytes

READ = 1  # libev/libuv event bits, as gevent's io watchers take them
WRITE = 2

# Why a parked greenlet was woken.
SOCKET_READY = "socket"
SIBLING = "sibling"
DEADLINE = "deadline"


class DeadlineExceeded(Exception):
    """The caller's deadline passed while waiting; clients turn it into ``Timeout``."""


class _Parking:
    """One parked greenlet; wakes it at most once, whoever asks first."""

    __slots__ = ("waiter", "woken", "watcher")

    def __init__(self, waiter: Waiter) -> None:
        self.waiter = waiter
        self.woken = False
        self.watcher: Any = None

    def wake(self, reason: str) -> None:
        if not self.woken:
            self.woken = True
            self.waiter.switch(reason)


class BaseSessionWaiter:
    """Runs one session's non-blocking calls, parking greenlets on its socket until it is
    ready, a sibling wakes them, or their deadline passes."""

    AGAIN: int = -37
    """What the engine's library returns for "not yet, try again"."""

    def __init__(self, session: Any, fileno: int) -> None:
        self.session = session
        self.fileno = fileno
        self._parked: set[_Parking] = set()
        self._quick_ack = QuickAck(fileno)
        self._countable = True  # until the kernel says the socket has no TCP counts

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fileno} parked={len(self._parked)}>"

    def until(self, attempt: Callable[[], bool], deadline: float | None = None) -> None:
        """Repeat ``attempt`` (non-blocking library work) until it returns True, parking
        between attempts.

        :raises DeadlineExceeded: ``deadline`` (a ``time.monotonic()`` value) passed.
        """
        reason = None
        while True:
            mark = self._bytes_mark(reason)
            progressed = attempt()
            self.after_call(reason, progressed, mark)
            if progressed:
                return
            reason = self.park(deadline)

    def call(self, func: Callable[..., Any], *args: Any, deadline: float | None = None,
             again: int | None = None) -> Any:
        """Call ``func(*args)`` until it returns something other than ``again`` (the
        library's ``AGAIN`` by default), and return that.

        :raises DeadlineExceeded: ``deadline`` passed.
        """
        again = self.AGAIN if again is None else again
        result: Any = None

        def attempt() -> bool:
            nonlocal result
            result = func(*args)
            return not (isinstance(result, int) and result == again)
        self.until(attempt, deadline)
        return result

    def after_call(self, reason: str | None, progressed: bool,
                   mark: int | None = None) -> None:
        """Wake the other parked greenlets if the call just made may have read the socket:
        any first attempt (``reason`` is ``None``), any attempt after the socket was
        ready, any that made progress, and any the engine saw take bytes (``mark``)."""
        if self._parked and (progressed or reason != SIBLING
                             or self._took_bytes_since(mark)):
            self._wake_parked(stop_watching=False)

    def _bytes_mark(self, reason: str | None) -> int | None:
        """:meth:`taken_bytes` when the next call's reading decides whether to wake the
        other parked greenlets (a retry woken by a sibling), else ``None``."""
        return self.taken_bytes() if reason == SIBLING and self._parked else None

    def _took_bytes_since(self, mark: int | None) -> bool:
        return mark is not None and self.taken_bytes() != mark

    def taken_bytes(self) -> int | None:
        """How many bytes the library has taken from the socket so far, or ``None`` where
        the kernel does not count them (a socket that is not TCP, not Linux, or closed).

        Linux counts the bytes a TCP socket has received; minus those still queued, that
        is what the library has read. Bytes arriving between the two queries would skew
        the difference, so the count is only taken between two equal queue lengths.
        While bytes keep arriving faster than that, the result is a negative number never
        returned before: compared with any other count it shows a change, as it should,
        since the library may be taking those bytes.
        """
        option = _TCP_INFO
        if option is None or not self._countable:
            return None
        try:
            view = socket.socket(fileno=self.fileno)
        except OSError:
            return None
        try:
            for _ in range(3):
                queued = self._unread_bytes()
                info = view.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_LENGTH)
                if len(info) < _BYTES_RECEIVED.stop:
                    self._countable = False
                    return None
                if self._unread_bytes() == queued:
                    return int.from_bytes(info[_BYTES_RECEIVED], sys.byteorder) - queued
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOPROTOOPT):
                self._countable = False  # not TCP: a socket pair behind a bastion
            return None
        finally:
            view.detach()
        return next(_BUSY_COUNTS)

    def _unread_bytes(self) -> int:
        count = array.array("i", [0])
        fcntl.ioctl(self.fileno, termios.FIONREAD, count, True)
        return count[0]

    def wake_parked(self) -> None:
        """Wake every parked greenlet to retry: something outside the SSH library
        changed what they wait for (a tunnel's queue drained)."""
        if self._parked:
            self._wake_parked(stop_watching=False)

    def release_all(self) -> None:
        """Stop watching the socket and wake every parked greenlet to retry.

        Called when the client drops the session; the woken greenlets' retries then fail
        on the ended connection and report it instead of waiting for their deadlines.
        """
        self._wake_parked(stop_watching=True)

    def _wake_parked(self, stop_watching: bool) -> None:
        hub = get_hub()
        for parking in list(self._parked):
            if stop_watching and parking.watcher is not None:
                parking.watcher.stop()
            hub.loop.run_callback(parking.wake, SIBLING)

    def park(self, deadline: float | None) -> str:
        """Park until the socket is ready in the library's direction, a sibling wakes us,
        or ``deadline`` passes (then raise :class:`DeadlineExceeded`). Returns the reason.
        """
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise DeadlineExceeded()
        hub = get_hub()
        parking = _Parking(Waiter(hub))
        events = self._wanted_events()
        if events & READ:
            self._quick_ack.request()  # see pssh.clients.base._tcp
        watcher = parking.watcher = hub.loop.io(self.fileno, events)
        watcher.start(parking.wake, SOCKET_READY)
        timer = None
        if left is not None:
            timer = hub.loop.timer(left)
            timer.start(parking.wake, DEADLINE)
        self._parked.add(parking)
        try:
            reason: str = parking.waiter.get()
        finally:
            self._parked.discard(parking)
            parking.woken = True
            watcher.stop()
            watcher.close()
            if timer is not None:
                timer.stop()
                timer.close()
        if reason == DEADLINE:
            raise DeadlineExceeded()
        return reason

    def _wanted_events(self) -> int:
        """``READ`` and/or ``WRITE``: what the library waits for on the socket."""
        wants_read, wants_write = self._library_directions()
        events = (READ if wants_read else 0) | (WRITE if wants_write else 0)
        # No direction happens when the library has queued nothing for this call yet
        # (libssh2) or has not polled its socket yet (libssh); the next thing that can
        # change that is incoming data.
        return events or READ

    def _library_directions(self) -> tuple[bool, bool]:
        """Whether the library waits to read, and whether it waits to write."""
        raise NotImplementedError
