"""How a host list splits into shards: one per worker process or distributed task.

Pure and dependency-free, so that the sharded client and ``pssh.distributed`` split
hosts the same way and keep their order.
"""

from __future__ import annotations


def split(count: int, parts: int) -> list[range]:
    """Positions ``0 .. count-1`` in at most ``parts`` contiguous ranges.

    Sizes differ by at most one, the larger ones first, and no range is empty, so
    joining the ranges in order gives back every position in order.

    >>> split(5, 2)
    [range(0, 3), range(3, 5)]
    >>> split(2, 4)
    [range(0, 1), range(1, 2)]
    """
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts!r}")
    parts = min(parts, count)
    if parts == 0:
        return []
    size, larger = divmod(count, parts)
    ranges = []
    start = 0
    for index in range(parts):
        stop = start + size + (1 if index < larger else 0)
        ranges.append(range(start, stop))
        start = stop
    return ranges


def share(limit: int | None, parts: int) -> int | None:
    """One part's share of a limit on the whole (``None``: no limit), at least one.

    With more parts than ``limit``, each still gets one, so together they may exceed it.

    >>> share(8, 3)
    2
    >>> share(8, 16)
    1
    """
    return None if limit is None else max(1, limit // parts)
