"""Room for one descriptor per connection, checked before a parallel client connects.

Theory of operation
-------------------
Every connection holds at least one file descriptor for as long as its host's client is
kept, and a process may hold at most its soft ``RLIMIT_NOFILE`` of them: 1,024 on most
machines. A client given more hosts than that used to find out half way, host by host,
with ``EMFILE``. So before a parallel client connects hosts it adds up what they will
hold (:func:`make_room`): the descriptors open now, each host's own (one socket, more
for some engines and for proxies, as the engine says), and ``MARGIN`` for what cannot be
counted ahead. Then:

- the soft limit suffices: nothing happens;
- the hard limit suffices: the soft limit is raised, logged at INFO with both numbers,
  to twice what is needed (or the hard limit, if lower). The second half is for what the
  count leaves out: output spooled to temporary files (two per host at most), agent
  sockets, the program's own files, the next run on more hosts. It stays below the hard
  limit on purpose: child processes inherit the soft limit, and some programs still
  use ``select()``, which breaks on descriptors past 1,023, or size tables by the limit;
- even the hard limit is short: :class:`~pssh.exceptions.OpenFilesLimitError`, before
  anything is connected, naming the numbers and the ways out.

The limit only counts; descriptor numbers can be reused out of order, so the check is an
estimate, and a run that still runs out (another thread opening files meanwhile) gets
the per-host ``ConnectionError`` that names ``ulimit -n``.
"""

from __future__ import annotations

import errno
import logging
import os
import resource

from ...exceptions import OpenFilesLimitError

__all__ = ["MARGIN", "make_room", "open_descriptors"]

logger = logging.getLogger("pssh.clients")

MARGIN = 32
"""Descriptors left free beyond the count: DNS lookups, an agent socket or a key file
read during authentication, a log file opened late, imports done on first use."""

_PROBE_LIMIT = 65536
"""Descriptor numbers probed one by one where the system cannot list them."""


def open_descriptors() -> int:
    """How many descriptors this process has open now."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            # The listing's own descriptor is in it while it is read.
            return max(len(os.listdir(listing)) - 1, 0)
        except OSError:
            continue
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = _PROBE_LIMIT if soft == resource.RLIM_INFINITY else min(soft, _PROBE_LIMIT)
    return sum(1 for fd in range(highest) if _is_open(fd))


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def make_room(new_descriptors: int, hosts: int) -> None:
    """Make sure this process may open ``new_descriptors`` more (for ``hosts`` hosts),
    raising its soft limit if it must.

    :raises OpenFilesLimitError: even the hard limit is too low.
    """
    if new_descriptors <= 0:
        return
    needed = open_descriptors() + new_descriptors + MARGIN
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if _allows(soft, needed):
        return
    if _allows(hard, needed):
        wanted = 2 * needed if hard == resource.RLIM_INFINITY else min(2 * needed, hard)
        for new_soft in dict.fromkeys((wanted, needed)):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            except (OSError, ValueError) as exc:
                logger.debug("Raising the open files limit to %d failed: %s", new_soft, exc)
                continue
            logger.info("Raised this process's soft limit on open files from %d to %d: "
                        "%d hosts to connect need about %d (hard limit %s)", soft, new_soft,
                        hosts, needed, _shown(hard))
            return
    raise _refusal(hosts, needed, soft, hard)


def _allows(limit: int, needed: int) -> bool:
    return limit == resource.RLIM_INFINITY or limit >= needed


def _shown(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def _refusal(hosts: int, needed: int, soft: int, hard: int) -> OpenFilesLimitError:
    return OpenFilesLimitError(
        f"Connecting {hosts} hosts needs about {needed} open files (descriptors) in this "
        f"process, and its limit is {_shown(soft)} (hard limit {_shown(hard)}, which only "
        f"root can raise); nothing was connected. Raise the limit before starting the "
        f"program (`ulimit -n {needed}` in its shell, LimitNOFILE= for a systemd "
        f"service), give one client fewer hosts, or spread the hosts over several "
        f"processes (the sharded client)", hosts=hosts, needed=needed,
        soft_limit=None if soft == resource.RLIM_INFINITY else soft,
        hard_limit=None if hard == resource.RLIM_INFINITY else hard,
        reason=os.strerror(errno.EMFILE))
