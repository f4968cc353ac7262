"""What the helpers of a client (channel readers, stdin, shells, SFTP, SCP, proxies) may
ask of it.

A helper is typed against :class:`ChannelClient`, never against a client class, so the
helper modules import no client module (not even for type checking) and use nothing but
the operations declared here. Both engines' ``SSHClient`` provide them; an engine that
needs more of its own client declares a protocol extending this one beside its helpers.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

__all__ = ["ChannelClient", "where"]


class ChannelClient(Protocol):
    """One host's connection, as its helpers see it."""

    host: str
    port: int
    alias: str | None
    timeout: float | None

    def call(self, func: Callable[..., Any], *args: Any, deadline: float | None,
             action: str) -> Any:
        """Run one library call, waiting while it says "again", at most until
        ``deadline``; the library's errors come out as pssh's, naming ``action``."""

    def wait_for(self, attempt: Callable[[], bool], deadline: float | None,
                 action: str) -> None:
        """Repeat ``attempt`` (non-blocking library work) until it returns True."""

    def call_once(self, attempt: Callable[[], Any], action: str) -> Any:
        """Run non-blocking library work once, never waiting, translating errors."""

    def taken_bytes(self) -> int | None:
        """How many bytes the library has read from the socket so far; two equal counts
        mean it read none in between. ``None`` without a connection or where the kernel
        does not count (a socket pair behind a bastion, whose bytes come from a greenlet
        of this hub and so cannot arrive in the middle of one attempt)."""

    def close_quietly(self, channel: Any) -> None:
        """Close ``channel`` on a best-effort basis, within a short deadline of its own."""

    def write_stdin(self, channel: Any, data: bytes) -> None:
        """Send all of ``data`` to the command's stdin on ``channel``."""

    def send_eof(self, channel: Any) -> None:
        """Tell the command on ``channel`` that its stdin has ended."""

    def start_shell(self, channel: Any, deadline: float | None) -> tuple[Any, Any]:
        """Start a login shell on ``channel``; return its output reader and stdin."""

    def wait_finished(self, host_output: Any, timeout: float | None = None) -> None:
        """Wait until the command of ``host_output`` has ended."""


def where(client: ChannelClient) -> str:
    """``host:port`` of ``client``, as messages name it."""
    return f"{client.host}:{client.port}"
