"""What the native engine's helpers (SFTP, SCP, proxies, tunnels) ask of their client beyond
:class:`~pssh.clients.base._seams.ChannelClient`.

The helpers are typed against :class:`NativeClient`, so none of them imports the client
module and none reaches into the client's private methods.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from ..base._seams import ChannelClient

__all__ = ["NativeClient"]


class NativeClient(ChannelClient, Protocol):
    """One host's libssh2 connection, as the native helpers see it."""

    session: Any
    """The libssh2 session, or ``None`` while disconnected (a tunnel server shows it)."""

    def open_channel(self, kind: str, *args: Any, deadline: float | None,
                     action: str) -> Any:
        """Open a channel of any kind (``kind`` is the libssh2 session's method)."""

    def write_all(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes,
                  deadline: float | None, action: str) -> None:
        """Write all of ``data`` with a libssh2 write function."""

    def wake_waiters(self) -> None:
        """Make every greenlet waiting on this connection retry now."""

    def is_connected(self) -> bool:
        """Whether the connection is up."""

    def disconnect(self) -> None:
        """End the connection."""
