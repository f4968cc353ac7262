"""What both engines' wait loops share: parking a greenlet on a session's socket.

Every non-blocking library call runs in :meth:`BaseSessionWaiter.until`: attempt, and if
the attempt made no progress, park on the session's socket in the directions the library
waits for, with the time left until the caller's deadline, then attempt again. Nothing
polls on an interval or sleeps.

An engine's ``SessionWaiter`` (``pssh.clients.native._wait``, ``pssh.clients.ssh._wait``)
supplies what is its library's: the code a call returns for "again" (``AGAIN``), which
socket directions the library waits for (``_library_directions``), and, where the library
needs it, a finer rule for waking the other greenlets parked on the same session (the
theory of operation of each engine's module says why those wake-ups are needed).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from gevent.hub import Waiter, get_hub

from ._tcp import QuickAck

__all__ = ["READ", "WRITE", "SIBLING", "DeadlineExceeded", "BaseSessionWaiter"]

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
        """Before an attempt: what :meth:`_took_bytes_since` compares against, or
        ``None``. Engines whose library can read the socket without progress say so here."""
        return None

    def _took_bytes_since(self, mark: int | None) -> bool:
        return False

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
