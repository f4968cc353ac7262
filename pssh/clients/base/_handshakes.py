"""How many connections a parallel client sets up at once against one server.

Theory of operation
-------------------
OpenSSH's sshd counts the connections it has accepted that have not yet authenticated.
Past the first number of its ``MaxStartups`` setting (``10:30:100`` by default: 10) it
drops new ones at random, 30% of them at first and every one at 100; the client sees the
connection closed or reset before or during the banner and key exchange. A parallel
client reaching one server many times (the same host listed again and again, for many
sessions on one machine) can trip that on its own, whatever its ``pool_size``.

:class:`HandshakeSlots` lets at most ``limit`` of one parallel client's hosts be between
TCP connect and the end of the login, per destination (the address connected to, as
given, and the port); the others wait for a slot. The login ends, for this count, with
the server's first message after authentication (see
``BaseSSHClient._wait_for_login_to_end``). The wait is outside the connection
attempt's ``timeout``, as the wait for a ``pool_size`` slot is: a queue of healthy
handshakes never times out for being long. A destination's counter is dropped once no
host uses or awaits it, so 100,000 distinct hosts leave nothing behind.

The parallel client makes one :class:`HandshakeSlots` and hands it to each host's
client, which sees it only as a :class:`HandshakeGate`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

from gevent.lock import Semaphore

__all__ = ["HandshakeGate", "HandshakeSlots", "check_handshake_limit"]


class HandshakeGate(Protocol):
    """What a host's client asks of its parallel client before it connects."""

    def slot(self, address: str, port: int) -> AbstractContextManager[None]:
        """Hold one of the connection set-up slots of ``address:port`` (waiting for one
        first if they are all taken) while the ``with`` block runs."""

    def is_shared(self, address: str, port: int) -> bool:
        """Whether other hosts of the same client hold or await a slot of
        ``address:port`` now (so letting go of one early may let the next in too soon)."""


class _Destination:
    """The slots of one destination and how many hosts hold or await them."""

    __slots__ = ("semaphore", "users")

    def __init__(self, limit: int) -> None:
        self.semaphore = Semaphore(limit)
        self.users = 0


class HandshakeSlots:
    """At most ``limit`` connection set-ups at once per destination; ``None`` for no
    limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._destinations: dict[tuple[str, int], _Destination] = {}

    def __repr__(self) -> str:
        return f"<HandshakeSlots limit={self.limit} {len(self._destinations)} destinations busy>"

    def slot(self, address: str, port: int) -> AbstractContextManager[None]:
        """See :meth:`HandshakeGate.slot`."""
        if self.limit is None:
            return nullcontext()
        return self._held(address, port, self.limit)

    def is_shared(self, address: str, port: int) -> bool:
        """See :meth:`HandshakeGate.is_shared`."""
        destination = self._destinations.get((address, port))
        return destination is not None and destination.users > 1

    @contextmanager
    def _held(self, address: str, port: int, limit: int) -> Iterator[None]:
        key = (address, port)
        destination = self._destinations.get(key)
        if destination is None:
            destination = self._destinations[key] = _Destination(limit)
        destination.users += 1
        try:
            with destination.semaphore:
                yield
        finally:
            destination.users -= 1
            if not destination.users:
                del self._destinations[key]


def check_handshake_limit(limit: object) -> int | None:
    """``limit`` as a slot count, ``None`` for no limit (given as ``None`` or ``0``).

    :raises ValueError: ``limit`` is not ``None`` or an integer ``>= 0``.
    """
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"handshake_limit must be an integer >= 0, or None for no limit, "
                         f"not {limit!r}")
    return limit or None
