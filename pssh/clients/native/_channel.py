"""A running command's channel: its output reader and its stdin.

The reader moves bytes from the libssh2 channel into the two line buffers only when
:class:`~pssh.output.HostOutput` asks (see the theory of operation in ``pssh.output``).
A command is finished when the remote side has closed the channel, not merely sent EOF:
the exit status travels between the two, so ``exit_code`` is only trusted after close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...exceptions import Timeout
from ...output import LineBuffer
from ._wait import EAGAIN

if TYPE_CHECKING:
    from .single import SSHClient

__all__ = ["ChannelReader", "Stdin"]

READ_SIZE = 64 * 1024
FILL_LIMIT = 1024 * 1024
"""Bytes one fill takes at most, so a reader yields lines before it takes more and a
fast stream read as it arrives stays within a few buffers' worth of memory."""


class ChannelReader:
    """Fills one command's stdout/stderr buffers from its channel."""

    def __init__(self, client: SSHClient, channel: Any) -> None:
        self.stdout = LineBuffer()
        self.stderr = LineBuffer()
        self._client = client
        self._channel = channel
        self._eof = False
        self._exit_code: int | None = None
        self._closed = False
        self._failed = False

    def __repr__(self) -> str:
        state = "failed" if self._failed else "closed" if self._closed else (
            "eof" if self._eof else "running")
        return f"<ChannelReader {self._client.host} {state}>"

    def is_done(self) -> bool:
        return self._closed or self._failed

    def fill(self, deadline: float | None) -> None:
        """Read what is available, waiting for more until ``deadline`` if nothing is.

        :raises Timeout: ``deadline`` passed.
        :raises SSHError: the channel or connection failed (the reader is then done).
        """
        if self.is_done():
            return
        try:
            if not self._eof:
                self._client._wait_for(self._read_available, deadline, "reading output")
            if self._eof:
                self._finish(deadline)
        except Timeout:
            raise
        except Exception:
            self._failed = True
            raise

    def poll_exit_code(self) -> int | None:
        """The exit code once the channel has closed; moves available output, never waits."""
        if not self.is_done():
            try:
                self._client._without_waiting(self._poll)
            except Exception:
                self._failed = True
        return self._exit_code

    def _poll(self) -> bool:
        if not self._eof:
            self._read_available()
        if self._eof and self._channel.wait_closed() != EAGAIN:
            self._close()
        return True

    def _read_available(self) -> bool:
        """Read both streams until neither has data or ``FILL_LIMIT`` bytes came;
        True if anything arrived or the channel reached EOF.

        A stream whose buffer is full is left unread: libssh2 keeps what has arrived of
        it and stops opening the channel window, so the remote command waits.
        """
        channel = self._channel
        taken = 0
        while taken < FILL_LIMIT:
            if not self.stdout.full():
                size, data = channel.read(READ_SIZE)
                if size > 0:
                    self.stdout.feed(data)
                    taken += size
                    continue
            if not self.stderr.full():
                size_err, data_err = channel.read_stderr(READ_SIZE)
                if size_err > 0:
                    self.stderr.feed(data_err)
                    taken += size_err
                    continue
            break
        if channel.eof():
            self._eof = True
        return taken > 0 or self._eof

    def _finish(self, deadline: float | None) -> None:
        self._client._call(self._channel.wait_closed, deadline=deadline,
                           action="waiting for the command to end")
        self._close()

    def _close(self) -> None:
        # The remote side closed the channel; the exit status came before its close
        # message. Sending our close frees the channel slot on the server.
        self._exit_code = self._channel.get_exit_status()
        self._closed = True
        self._client._close_quietly(self._channel)


class Stdin:
    """A command's standard input.

    ``write`` returns once libssh2 has taken all the bytes (partial writes are resumed),
    so ``flush`` has nothing left to do; it never discards unread output.
    """

    def __init__(self, client: SSHClient, channel: Any) -> None:
        self._client = client
        self._channel = channel

    def write(self, data: bytes | str) -> None:
        """Send ``data`` (str is encoded as UTF-8) to the command's stdin.

        :raises Timeout: the client's ``timeout`` passed before all bytes were taken.
        :raises SessionError: the channel failed.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._client.eagain_write(self._channel.write, payload)

    def flush(self) -> None:
        """Nothing to do: ``write`` sends everything before returning."""

    def close(self) -> None:
        """Send EOF, so commands reading stdin to its end (``cat``) can finish."""
        self._client.eagain(self._channel.send_eof)
