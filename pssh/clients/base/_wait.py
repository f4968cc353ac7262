"""What both engines' wait loops share: parking a greenlet on a session's socket.

An engine's ``SessionWaiter`` (``pssh.clients.native._wait``, ``pssh.clients.ssh._wait``)
runs its library's non-blocking calls and, when one would block, calls :meth:`park`
with the caller's deadline. :meth:`_wanted_events` is the one thing each engine
supplies: which socket directions its library is waiting for. The rules for waking
other greenlets parked on the same session are in the engines' modules.
"""

from __future__ import annotations

import time
from typing import Any

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
    """Parks greenlets on one session's socket until it is ready, a sibling wakes them,
    or their deadline passes."""

    def __init__(self, session: Any, fileno: int) -> None:
        self.session = session
        self.fileno = fileno
        self._parked: set[_Parking] = set()
        self._quick_ack = QuickAck(fileno)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fileno} parked={len(self._parked)}>"

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
        raise NotImplementedError
