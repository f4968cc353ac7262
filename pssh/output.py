"""What a user holds after ``run_command``: :class:`HostOutput`.

Theory of operation
-------------------
Output is pulled, not pushed. Nothing reads a channel in the background: bytes move
from the SSH channel into a host's :class:`LineBuffer` only when somebody asks for them,
by iterating ``stdout``/``stderr``, reading ``exit_code`` or calling ``join``. Output that
nobody reads waits in the kernel's socket buffer and the SSH channel window, so a host
whose output is not being read makes its remote command wait instead of filling the
client's memory (the remote side sees back-pressure; nothing is dropped).

Each read from the channel takes everything available on both streams, so reading
stdout never stalls a command that writes a lot to stderr: the stderr bytes go to their
own buffer and wait there, up to the buffer limit (``buffer_limit`` of ``run_command``,
32 MiB by default). A stream whose buffer holds that many bytes of complete, unread
lines is not read from the channel any more until some are taken, so the remote command
waits on SSH flow control; nothing is dropped. Waiting for the command's end (``join``
without ``consume_output``, ``wait_finished``) cannot finish then, and raises
:class:`~pssh.exceptions.BufferFullError` instead of waiting forever.

Splitting into lines is linear in the bytes received: each chunk is split once, and only
a trailing partial line is kept back.

This module knows nothing of ssh2 or gevent: an engine (``pssh.clients.native``,
``pssh.clients.ssh``) hands ``HostOutput`` a reader object that fills the buffers.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

from ._deadline import deadline_after
from .constants import DEFAULT_BUFFER_LIMIT
from .exceptions import BufferFullError, SSHError, Timeout

__all__ = ["HostOutput", "LineBuffer", "OutputReader", "CommandClient"]

host_logger = logging.getLogger("pssh.host_logger")


class LineBuffer:
    """Bytes received on one stream, split into complete lines plus a trailing partial.

    :param limit: bytes of complete lines (newlines included) at which :meth:`is_full`
        turns true; ``None`` for no limit. A partial line never counts, so a line longer
        than the limit can still be completed.
    """

    def __init__(self, limit: int | None = DEFAULT_BUFFER_LIMIT) -> None:
        self._lines: deque[bytes] = deque()
        self._partial = bytearray()
        self._size = 0
        self.limit = limit

    def is_full(self) -> bool:
        """Whether the complete lines held have reached the limit: read no more now."""
        return self.limit is not None and self._size >= self.limit

    def feed(self, data: bytes) -> None:
        """Add a chunk of received bytes."""
        last_newline = data.rfind(b"\n")
        if last_newline < 0:
            self._partial += data
            return
        if self._partial:
            self._partial += data[:last_newline]
            complete = bytes(self._partial)
            self._partial = bytearray()
        else:
            complete = data[:last_newline]
        if b"\r" in complete:  # \r\n endings lose their \r here, once per chunk
            complete = complete.replace(b"\r\n", b"\n")
            if complete.endswith(b"\r"):
                complete = complete[:-1]
        self._lines.extend(complete.split(b"\n"))
        self._size += len(complete) + 1
        self._partial += data[last_newline + 1:]

    def has_lines(self) -> bool:
        """Whether a complete line is waiting."""
        return bool(self._lines)

    def pop_line(self) -> bytes:
        """The oldest complete line, without its line ending."""
        line = self._lines.popleft()
        self._size -= len(line) + 1
        return line

    def drain(self) -> Iterator[bytes]:
        """Take the complete lines, oldest first, until none is left. A caller that stops
        early leaves the lines it has not taken in the buffer."""
        lines = self._lines
        while lines:
            line = lines.popleft()
            self._size -= len(line) + 1
            yield line

    def take_partial(self) -> bytes | None:
        """The bytes after the last newline, once the stream has ended; ``None`` if none."""
        if not self._partial:
            return None
        rest = bytes(self._partial)
        self._partial = bytearray()
        return rest[:-1] if rest.endswith(b"\r") else rest

    def discard_lines(self) -> None:
        """Forget the complete lines, keeping a trailing partial one."""
        self._lines.clear()
        self._size = 0

    def discard(self) -> None:
        """Forget everything buffered."""
        self.discard_lines()
        self._partial = bytearray()


class OutputReader(Protocol):
    """What an engine provides to move a channel's output into the buffers."""

    stdout: LineBuffer
    stderr: LineBuffer

    def is_done(self) -> bool:
        """The command ended and its channel closed, or the channel failed."""

    def fill(self, deadline: float | None) -> None:
        """Move more output into the buffers, waiting until ``deadline`` if none is there.

        :raises Timeout: ``deadline`` passed.
        :raises SSHError: the channel or connection failed.
        """

    def poll_exit_code(self) -> int | None:
        """The exit code if the command has ended, else ``None``; never waits.

        :raises SSHError: the channel or connection failed.
        """


class CommandClient(Protocol):
    """What an output needs of the client that ran its command."""

    host: str
    port: int


class HostOutput:
    """One host's result of ``run_command``.

    :ivar host: the host name as given.
    :ivar alias: the host's alias, if one was configured.
    :ivar channel: the SSH channel the command runs on (``None`` if it never started).
    :ivar stdin: the command's standard input (``write``, ``flush``, ``close``), or ``None``.
    :ivar client: the single-host client that ran the command, or ``None``.
    :ivar exception: the error that stopped this host, or ``None``.
    :ivar encoding: how output lines are decoded (undecodable bytes become U+FFFD).
    :ivar read_timeout: seconds one iteration of ``stdout``/``stderr`` may take in all,
        or ``None`` for no limit.
    """

    def __init__(self, host: str, channel: Any, stdin: Any, client: CommandClient | None,
                 alias: str | None = None, exception: BaseException | None = None,
                 encoding: str = "utf-8", read_timeout: float | None = None,
                 buffers: OutputReader | None = None) -> None:
        self.host = host
        self.alias = alias
        self.channel = channel
        self.stdin = stdin
        self.client = client
        self.exception = exception
        self.encoding = encoding
        self.read_timeout = read_timeout
        self.buffers = buffers
        self.fully_qualified_command: str | None = None

    def __repr__(self) -> str:
        # No exit_code here: reading it may touch the network, a repr must not.
        return (f"HostOutput(host={self.host!r}, alias={self.alias!r}, "
                f"buffers={self.buffers!r}, exception={self.exception!r})")

    @property
    def stdout(self) -> Iterator[str]:
        """A generator over the stdout lines not read yet, without line endings.

        It ends when the command has ended and its channel closed, so ``exit_code`` is set
        afterwards. A final line without a newline is included.

        :raises Timeout: ``read_timeout`` passed; lines not yet read stay buffered and a
            later iteration yields them.
        :raises SSHError: the connection failed while reading; lines received before that
            were yielded first, and the error is also stored on ``exception``.
        """
        return self._lines(stderr=False)

    @property
    def stderr(self) -> Iterator[str]:
        """Like :attr:`stdout`, for the command's standard error."""
        return self._lines(stderr=True)

    @property
    def exit_code(self) -> int | None:
        """The command's exit code, or ``None`` while it runs or if the host failed.

        Reading it moves output that has arrived into the buffers. If the connection
        fails meanwhile, the error is stored on ``exception`` and ``None`` returned.
        """
        if self.buffers is None:
            return None
        try:
            return self.buffers.poll_exit_code()
        except SSHError as exc:
            if self.exception is None:
                self.exception = exc
            return None

    def _lines(self, stderr: bool) -> Iterator[str]:
        reader = self.buffers
        if reader is None:
            return
        buffer = reader.stderr if stderr else reader.stdout
        deadline = deadline_after(self.read_timeout)
        encoding = self.encoding
        while True:
            if host_logger.isEnabledFor(logging.INFO):
                for raw in buffer.drain():
                    yield self._emit(raw)
            else:  # the common case, kept lean: this loop runs once per output line
                for raw in buffer.drain():
                    yield raw.decode(encoding, "replace")
            if reader.is_done():
                break
            try:
                reader.fill(deadline)
            except Timeout:
                raise
            except SSHError as exc:
                self.exception = exc
                yield from self._rest(buffer)
                raise
        yield from self._rest(buffer)

    def _rest(self, buffer: LineBuffer) -> Iterator[str]:
        while buffer.has_lines():
            yield self._emit(buffer.pop_line())
        partial = buffer.take_partial()
        if partial is not None:
            yield self._emit(partial)

    def _emit(self, raw: bytes) -> str:
        line = raw.decode(self.encoding, "replace")
        if host_logger.isEnabledFor(logging.INFO):
            host_logger.info("[%s]\t%s", self.alias or self.host, line)
        return line

    def wait_done(self, deadline: float | None, consume: bool = False) -> None:
        """Read output until the command has ended and its channel closed.

        What ``join`` and ``wait_finished`` do for one host. The output read is kept
        (or, with ``consume``, dropped as it comes).

        :raises Timeout: ``deadline`` passed first.
        :raises BufferFullError: without ``consume``, a stream's unread output reached its
            buffer limit, so the command cannot end before somebody reads it.
        :raises SSHError: the connection failed.
        """
        reader = self.buffers
        if reader is None:
            return
        while not reader.is_done():
            if not consume:
                self._check_room(reader)
            reader.fill(deadline)
            if consume:
                self.consume(final=False)

    def _check_room(self, reader: OutputReader) -> None:
        for name, buffer in (("stdout", reader.stdout), ("stderr", reader.stderr)):
            if buffer.is_full():
                port = self.client.port if self.client is not None else None
                raise BufferFullError(
                    f"{name} of {self.alias or self.host} holds {buffer.limit} bytes of "
                    f"unread output, its buffer limit, so the command waits until they are "
                    f"read: iterate host_out.{name}, join with consume_output=True, or pass "
                    f"run_command a larger buffer_limit (None for no limit)",
                    host=self.host, port=port)

    def consume(self, final: bool = True) -> None:
        """Drop buffered output, logging each line to the host logger if it is enabled.

        :param final: the command has ended, so a trailing partial line goes too.
        """
        if self.buffers is None:
            return
        logging_enabled = host_logger.isEnabledFor(logging.INFO)
        for buffer in (self.buffers.stdout, self.buffers.stderr):
            if logging_enabled:
                while buffer.has_lines():
                    self._emit(buffer.pop_line())
                partial = buffer.take_partial() if final else None
                if partial is not None:
                    self._emit(partial)
            elif final:
                buffer.discard()
            else:
                buffer.discard_lines()
