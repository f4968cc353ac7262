"""Keepalives from the event loop's timers, with no greenlet per connection.

A greenlet that sleeps between keepalives keeps a copy of its slice of the C stack,
about 11 KB; with a thousand hosts that is 11 MB spent on waiting. A timer costs a few
hundred bytes. The engine supplies ``send(client)``: it must not wait (it runs inside the
event loop), and returns the seconds until the next keepalive, or ``None`` to stop.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Callable

from gevent.hub import get_hub

__all__ = ["Keepalive"]

logger = logging.getLogger("pssh.clients")


class Keepalive:
    """Calls ``send(client)`` after ``first_delay`` seconds and then as often as it asks,
    while the client lives; holds only a weak reference to it."""

    def __init__(self, client: Any, send: Callable[[Any], float | None],
                 first_delay: float) -> None:
        self._client_ref = weakref.ref(client)
        self._send = send
        self._timer: Any = None
        self._schedule(first_delay)

    @property
    def active(self) -> bool:
        """Whether another keepalive is scheduled."""
        return self._timer is not None

    def stop(self) -> None:
        """Send no more keepalives; safe to call more than once."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.stop()
            timer.close()

    def _schedule(self, delay: float) -> None:
        self._timer = get_hub().loop.timer(delay)
        self._timer.start(self._fire)

    def _fire(self) -> None:
        self.stop()
        client = self._client_ref()
        if client is None:
            return
        try:
            delay = self._send(client)
        except Exception:  # never let a keepalive put a traceback on the event loop
            logger.debug("Keepalive failed", exc_info=True)
            return
        if delay is not None:
            self._schedule(delay)
