"""A running command's output reader on libssh2.

A command is finished when the remote side has closed the channel, not merely sent EOF:
the exit status travels between the two, so ``exit_code`` is only trusted after close.
The engine-independent half, and the command's stdin, are in
``pssh.clients.base._channel``.
"""

from __future__ import annotations

from ...output import LineBuffer
from ..base._channel import READ_SIZE, Stdin
from ..base._channel import ChannelReader as BaseChannelReader
from ._wait import EAGAIN

__all__ = ["ChannelReader", "Stdin"]


class ChannelReader(BaseChannelReader):
    """Fills one command's stdout/stderr buffers from its libssh2 channel."""

    _eof = False

    def _is_at_eof(self) -> bool:
        return self._eof

    def _step(self) -> bool:
        progressed = False
        if not self._eof:
            progressed = self._read_available() > 0
            self._eof = bool(self._channel.eof())
            progressed = progressed or self._eof
        if not self._eof or self._channel.wait_closed() == EAGAIN:
            return progressed
        # The remote side closed the channel; the exit status came before its close.
        self._finish(self._channel.get_exit_status())
        return True

    def _read(self, is_stderr: bool, buffer: LineBuffer) -> int | None:
        if buffer.is_full():
            return None
        read = self._channel.read_stderr if is_stderr else self._channel.read
        size, data = read(READ_SIZE)
        if size > 0:
            buffer.feed(data)
            return int(size)
        return 0

    def _release_channel(self) -> None:
        # Sending our close frees the channel slot on the server.
        self._client.close_quietly(self._channel)
