"""A running command's channel on libssh: its output reader and its stdin's writes.

Theory of operation
-------------------
The reader moves bytes from libssh's per-channel buffers into the two line buffers only
when :class:`~pssh.output.HostOutput` asks (see ``pssh.output``; the engine-independent
half is ``pssh.clients.base._channel``). Reading a stream
whose libssh buffer is empty makes libssh read the socket; bytes left unread stay in
libssh's buffer and hold its channel window shut, so a command whose output nobody reads
waits instead of filling the client's memory.

When a command is finished differs from the native engine. OpenSSH sends a command's
exit status as soon as the process exits, which may be before or after the end of its
output, then closes the channel once both are sent. Here a command is finished once both
streams have reached their end *and* the exit status has arrived (or the channel closed
without one, as for a command killed by a signal); our side then closes the channel.

Writing has one libssh trap to step around: ssh-python's ``Channel.write`` loops inside C
until every byte is taken, and libssh takes none while the server's window for the
channel is shut, so a write larger than the window would spin the CPU and stall every
greenlet until the server read the data. :func:`write_all` therefore never hands libssh
more than the open window, and parks while the window is shut.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Protocol

from ssh.exceptions import EOF

from ...output import LineBuffer
from ..base._channel import READ_SIZE, Stdin
from ..base._channel import ChannelReader as BaseChannelReader
from ..base._seams import ChannelClient

__all__ = ["ChannelReader", "Stdin", "CommandEnded", "LibsshClient", "write_all",
           "exit_status"]

logger = logging.getLogger("pssh.clients.ssh")

_NO_STATUS = -1  # what libssh's get_exit_status returns while it has none


class LibsshClient(ChannelClient, Protocol):
    """What this module needs of a libssh client beyond :class:`ChannelClient`."""

    def check_alive(self) -> None:
        """Raise if the connection has closed."""

    def flush(self, deadline: float | None) -> None:
        """Wait until libssh has handed every queued byte to the socket."""


class CommandEnded(Exception):
    """The remote command has exited or its channel closed, so its stdin takes no more."""


def exit_status(channel: Any) -> int | None:
    """The exit status libssh has received on ``channel``, or ``None`` (yet).

    libssh's ``get_exit_status`` handles whatever packets have arrived before it answers,
    without waiting; it is also how this module makes libssh read the socket when no
    channel buffer may be read.
    """
    status = channel.get_exit_status()
    return None if status == _NO_STATUS else int(status)


class ChannelReader(BaseChannelReader):
    """Fills one command's stdout/stderr buffers from its libssh channel."""

    _client: LibsshClient

    def __init__(self, client: LibsshClient, channel: Any) -> None:
        super().__init__(client, channel)
        self._ended = {False: False, True: False}  # stream (is_stderr) -> reached its end

    def _is_at_eof(self) -> bool:
        return all(self._ended.values())

    def _step(self) -> bool:
        taken = self._read_available()
        if self._is_at_eof():
            status = exit_status(self._channel)
            if status is not None or self._channel.is_closed():
                if status is None:
                    self._client.check_alive()  # closed because the connection died?
                self._finish(status)
                return True
        return taken > 0

    def _read(self, is_stderr: bool, buffer: LineBuffer) -> int | None:
        if self._ended[is_stderr] or buffer.is_full():
            return None
        try:
            size, data = self._channel.read_nonblocking(READ_SIZE, is_stderr)
        except EOF:
            self._ended[is_stderr] = True
            return 0
        if size > 0:
            buffer.feed(data)
            return int(size)
        return 0

    def _release_channel(self) -> None:
        # Free the channel on the server. One attempt, no waiting: libssh queues the
        # close message and sends whatever is left with the connection's next packets.
        try:
            self._channel.close()
        except Exception as exc:
            logger.debug("closing a channel on %s:%s failed: %s", self._client.host,
                         self._client.port, exc)


def _window_open(channel: Any) -> bool:
    """True once the server's window for ``channel`` can take bytes."""
    if channel.window_size() > 0:
        return True
    if exit_status(channel) is not None or channel.is_closed():
        raise CommandEnded()
    return bool(channel.window_size() > 0)


def write_all(client: LibsshClient, channel: Any, data: bytes, deadline: float | None,
              ) -> None:
    """Send all of ``data`` to the command's stdin, never more than the open window at a
    time, then wait until libssh has handed every byte to the socket."""
    view = memoryview(data)
    sent = 0
    while sent < len(view):
        client.wait_for(partial(_window_open, channel), deadline, "writing to stdin")
        chunk = view[sent:sent + channel.window_size()].tobytes()
        _, written = client.call_once(partial(channel.write, chunk), "writing to stdin")
        sent += written
    client.flush(deadline)
