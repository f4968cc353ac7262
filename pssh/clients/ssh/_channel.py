"""A running command's channel on libssh: its output reader and its stdin.

Theory of operation
-------------------
The reader moves bytes from libssh's per-channel buffers into the two line buffers only
when :class:`~pssh.output.HostOutput` asks (see ``pssh.output``). Reading a stream
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

from functools import partial
from typing import TYPE_CHECKING, Any

from ssh.exceptions import EOF

from ...exceptions import Timeout
from ...output import LineBuffer

if TYPE_CHECKING:
    from .single import SSHClient

__all__ = ["ChannelReader", "Stdin", "CommandEnded", "write_all", "exit_status"]

READ_SIZE = 64 * 1024
FILL_LIMIT = 1024 * 1024
"""Bytes one fill takes at most, so a reader yields lines before it takes more and a
fast stream read as it arrives stays within a few buffers' worth of memory."""

_NO_STATUS = -1  # what libssh's get_exit_status returns while it has none


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


class ChannelReader:
    """Fills one command's stdout/stderr buffers from its libssh channel."""

    def __init__(self, client: SSHClient, channel: Any) -> None:
        self.stdout = LineBuffer()
        self.stderr = LineBuffer()
        self._client = client
        self._channel = channel
        self._ended = {False: False, True: False}  # stream (is_stderr) -> reached its end
        self._exit_code: int | None = None
        self._done = False
        self._failed = False

    def __repr__(self) -> str:
        state = "failed" if self._failed else "done" if self._done else (
            "eof" if all(self._ended.values()) else "running")
        return f"<ChannelReader {self._client.host} {state}>"

    def is_done(self) -> bool:
        return self._done or self._failed

    def fill(self, deadline: float | None) -> None:
        """Read what is available, waiting for more until ``deadline`` if nothing is.

        :raises Timeout: ``deadline`` passed.
        :raises SSHError: the channel or connection failed (the reader is then done).
        """
        if self.is_done():
            return
        try:
            self._client._wait_for(self._step, deadline, "reading output")
        except Timeout:
            raise
        except Exception:
            self._failed = True
            raise

    def poll_exit_code(self) -> int | None:
        """The exit code once the command has finished; moves available output, never
        waits."""
        if not self.is_done():
            try:
                self._client._without_waiting(self._step)
            except Exception:
                self._failed = True
        return self._exit_code

    def _step(self) -> bool:
        """Move what has arrived; True if anything came or the command finished."""
        taken = self._read_available()
        if all(self._ended.values()):
            status = exit_status(self._channel)
            if status is not None or self._channel.is_closed():
                if status is None:
                    self._client._check_alive()  # closed because the connection died?
                self._finish(status)
                return True
        return taken > 0

    def _read_available(self) -> int:
        """Read both streams until neither has data or ``FILL_LIMIT`` bytes came.

        Reading an empty stream makes libssh read the socket, and what it reads may
        belong to the other stream: the stderr read can file stdout bytes (or the end of
        stdout) after stdout was found empty. Parking then would wait for bytes libssh
        already holds, so a round that finds nothing counts only if libssh took nothing
        from the socket meanwhile; otherwise another round reads what it filed.
        """
        taken = 0
        while taken < FILL_LIMIT:
            before = self._client._taken_bytes()
            size = self._read(False, self.stdout) + self._read(True, self.stderr)
            if size:
                taken += size
            elif all(self._ended.values()) or before is None or (
                    self._client._taken_bytes() == before):
                break
        return taken

    def _read(self, is_stderr: bool, buffer: LineBuffer) -> int:
        if self._ended[is_stderr] or buffer.full():
            return 0  # a full buffer: libssh keeps the rest and holds the window shut
        try:
            size, data = self._channel.read_nonblocking(READ_SIZE, is_stderr)
        except EOF:
            self._ended[is_stderr] = True
            return 0
        if size > 0:
            buffer.feed(data)
            return int(size)
        return 0

    def _finish(self, status: int | None) -> None:
        self._exit_code = status
        self._done = True
        # Free the channel on the server. One attempt, no waiting: libssh queues the
        # close message and sends whatever is left with the connection's next packets.
        try:
            self._channel.close()
        except Exception as exc:
            self._client._log_cleanup_failure("closing a channel", exc)


def _window_open(channel: Any) -> bool:
    """True once the server's window for ``channel`` can take bytes."""
    if channel.window_size() > 0:
        return True
    if exit_status(channel) is not None or channel.is_closed():
        raise CommandEnded()
    return bool(channel.window_size() > 0)


def write_all(client: SSHClient, channel: Any, data: bytes, deadline: float | None) -> None:
    """Send all of ``data`` to the command's stdin, never more than the open window at a
    time, then wait until libssh has handed every byte to the socket."""
    view = memoryview(data)
    sent = 0
    while sent < len(view):
        client._wait_for(partial(_window_open, channel), deadline, "writing to stdin")
        chunk = view[sent:sent + channel.window_size()].tobytes()
        _, written = client._without_waiting(partial(channel.write, chunk),
                                             action="writing to stdin")
        sent += written
    client._flush(deadline)


class Stdin:
    """A command's standard input.

    ``write`` returns once every byte is on its way to the server, so ``flush`` has
    nothing left to do; it never discards unread output.
    """

    def __init__(self, client: SSHClient, channel: Any) -> None:
        self._client = client
        self._channel = channel

    def __repr__(self) -> str:
        return f"<Stdin {self._client.host}>"

    def write(self, data: bytes | str) -> None:
        """Send ``data`` (str is encoded as UTF-8) to the command's stdin.

        :raises Timeout: the client's ``timeout`` passed before all bytes were taken.
        :raises SessionError: the command has ended or the channel failed.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._client._write_stdin(self._channel, payload)

    def flush(self) -> None:
        """Nothing to do: ``write`` sends everything before returning."""

    def close(self) -> None:
        """Send EOF, so commands reading stdin to its end (``cat``) can finish.

        Nothing is sent if the channel has already closed.
        """
        self._client._send_eof(self._channel)
