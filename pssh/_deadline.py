"""Deadlines and the checks on user-given timeouts.

Every public call that can block turns its timeout into one ``time.monotonic()`` deadline
on entry and hands the deadline down, so nested waits share the caller's budget instead
of each starting a fresh one. ``None`` means no limit all the way down.
"""

from __future__ import annotations

import math
import time

__all__ = ["check_timeout", "deadline_after", "time_left", "earliest"]


def check_timeout(value: float | None, name: str = "timeout") -> float | None:
    """Return ``value`` if it is a usable timeout in seconds, else raise ``ValueError``.

    ``None`` means no limit. Booleans, negative numbers, NaN and infinity are rejected:
    each is almost certainly a mistake that would otherwise hang or fail obscurely.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}; "
                         f"use None for no limit")
    return value


def deadline_after(timeout: float | None) -> float | None:
    """The monotonic deadline ``timeout`` seconds from now, or ``None`` for no limit."""
    return None if timeout is None else time.monotonic() + timeout


def time_left(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (never negative), or ``None`` for no limit."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def earliest(*deadlines: float | None) -> float | None:
    """The earliest of the given deadlines; ``None`` only when all are ``None``."""
    given = [d for d in deadlines if d is not None]
    return min(given) if given else None
