"""A running command's output reader on libssh2.

A command is finished when the remote side has closed the channel, not merely sent EOF:
the exit status travels between the two, so ``exit_code`` is only trusted after close.
The engine-independent half, and the command's stdin, are in
``pssh.clients.base._channel``.
"""

from __future__ import annotations

from ..base._channel import FILL_LIMIT, READ_SIZE, Stdin
from ..base._channel import ChannelReader as BaseChannelReader
from ._wait import EAGAIN

__all__ = ["ChannelReader", "Stdin"]


class ChannelReader(BaseChannelReader):
    """Fills one command's stdout/stderr buffers from its libssh2 channel."""

    _eof = False

    def _is_at_eof(self) -> bool:
        return self._eof

    def _step(self) -> bool:
        progressed = False if self._eof else self._read_available()
        if not self._eof or self._channel.wait_closed() == EAGAIN:
            return progressed
        # The remote side closed the channel; the exit status came before its close.
        self._finish(self._channel.get_exit_status())
        return True

    def _read_available(self) -> bool:
        """Read both streams until neither has data or ``FILL_LIMIT`` bytes came;
        True if anything arrived or the channel reached EOF.

        Every libssh2 read first drains the socket into libssh2's queue, then takes its
        own stream's bytes from the queue. So the stderr read, made after the stdout
        read found nothing, may file stdout bytes (and the command's end) that arrived
        in between, and nothing more may come on the socket for them: if the stderr
        read took bytes from the socket (the kernel's count says), stdout is read again.

        A stream whose buffer is full is left unread: libssh2 keeps what has arrived of
        it and stops opening the channel window, so the remote command waits.
        """
        channel = self._channel
        taken = 0
        while taken < FILL_LIMIT:
            if not self.stdout.is_full():
                size, data = channel.read(READ_SIZE)
                if size > 0:
                    self.stdout.feed(data)
                    taken += size
                    continue
            if not self.stderr.is_full():
                before = None if self.stdout.is_full() else self._client.taken_bytes()
                size, data = channel.read_stderr(READ_SIZE)
                if size > 0:
                    self.stderr.feed(data)
                    taken += size
                    continue
                if before is not None and self._client.taken_bytes() != before:
                    continue
            break
        if channel.eof():
            self._eof = True
        return taken > 0 or self._eof

    def _release_channel(self) -> None:
        # Sending our close frees the channel slot on the server.
        self._client.close_quietly(self._channel)
