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
own buffer and wait there. Each stream keeps at most ``buffer_limit`` bytes of complete,
unread lines in memory (32 MiB by default). Past that, by default, its further complete
lines go on into a temporary file (the stream's *spool*), oldest first, and come back
from it in order, a chunk at a time, when read; the file is closed, so its disk space
freed, once it has been read to its end or the output is released. So ``join`` followed
by reading works for any output size in bounded memory. With ``spool_to_disk=False`` a
stream that reaches the limit is instead not read from the channel any more until some
of its lines are taken, so the remote command waits on SSH flow control; waiting for the
command's end without reading (``join``, ``wait_finished``) then raises
:class:`~pssh.exceptions.BufferFullError` instead of waiting forever.

Splitting into lines is linear in the bytes received: a chunk is kept whole as received
and split once, when its first line is wanted; only a trailing partial line is kept
back. The line loop of :class:`HostOutput` pops from the buffer's deque of split lines
directly, so a line costs a pop and a decode.

parallel-ssh's names for the same things are kept: ``HostOutput.buffers`` is a
:class:`HostOutputBuffers` whose ``stdout`` and ``stderr`` are :class:`BufferData` of
``(reader, rw_buffer)``: the engine's reader that fills the stream, and the stream's
:class:`LineBuffer`, which also offers ``write``, ``read`` and ``eof`` as parallel-ssh's
``ConcurrentRWBuffer`` does.

This module knows nothing of ssh2 or gevent: an engine (``pssh.clients.native``,
``pssh.clients.ssh``) hands each buffer the function that runs the spool's file calls
(in gevent's thread pool, so a slow disk does not stall the event loop).
"""

from __future__ import annotations

# A little over 600 lines: the spool, the line buffer and HostOutput's line loop share
# one theory of operation and a private seam (LineBuffer._next_lines), kept in one file.
import logging
import os
import tempfile
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from ._deadline import deadline_after
from .constants import DEFAULT_BUFFER_LIMIT, SPOOL_CHUNK
from .exceptions import BufferFullError, SSHError, Timeout

__all__ = ["HostOutput", "HostOutputBuffers", "BufferData", "LineBuffer", "StreamEnd",
           "OutputReader", "CommandClient", "logger"]

logger = logging.getLogger(__name__)
host_logger = logging.getLogger("pssh.host_logger")

T = TypeVar("T")


def _run_inline(func: Callable[..., T], *args: Any) -> T:
    return func(*args)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _read_lines(fd: int, offset: int, end: int) -> bytes:
    """Whole lines from ``offset``: about ``SPOOL_CHUNK`` bytes, more for a longer line."""
    size = SPOOL_CHUNK
    while True:
        data = os.pread(fd, min(size, end - offset), offset)
        cut = data.rfind(b"\n") + 1
        if cut or offset + len(data) >= end or not data:
            return data[:cut] if cut else data
        size *= 2


class _Spool:
    """One stream's complete lines past the memory limit, in a temporary file.

    Lines are appended to ``pending`` (memory) and written out when
    :meth:`flush` finds a chunk's worth; :meth:`take` gives them back oldest first (the
    file, then the write in progress, then ``pending``). A write runs through
    ``run_io``, which may let other greenlets run meanwhile, so the bytes being written
    stay readable from memory until the write has ended. One greenlet reads at a time.
    """

    def __init__(self, run_io: Callable[..., Any]) -> None:
        self.run_io = run_io
        self.pending = bytearray()
        self._file: Any = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._read_pos = 0
        self._written = 0
        self._writing = b""

    def __len__(self) -> int:
        """Bytes not taken yet."""
        return self._written + len(self._writing) - self._read_pos + len(self.pending)

    def flush(self) -> None:
        """Write ``pending`` to the file once it holds a chunk.

        :raises OSError: the write failed; the bytes are back in ``pending``.
        """
        if self._writing or len(self.pending) < SPOOL_CHUNK:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="pssh-output-", buffering=0)
            self._closer = weakref.finalize(self, self._file.close)
        data, self.pending = bytes(self.pending), bytearray()
        file = self._file
        self._writing = data
        try:
            self.run_io(_write_all, file.fileno(), data, self._written)
        except BaseException as exc:
            if self._file is not file:  # discarded meanwhile: close() ended the write
                if isinstance(exc, OSError):
                    return
                raise
            taken = max(0, self._read_pos - self._written)  # by take() meanwhile
            self.pending[:0] = data[taken:]
            self._read_pos -= taken
            self._writing = b""
            raise
        if self._file is not file:
            return  # discarded meanwhile
        self._writing = b""
        self._written += len(data)
        self._close_if_read()

    def take(self) -> bytes:
        """The oldest unread complete lines (one chunk or so); ``b""`` if none."""
        if self._read_pos < self._written:
            data: bytes = self.run_io(_read_lines, self._file.fileno(), self._read_pos,
                                      self._written)
            self._read_pos += len(data)
        elif self._read_pos < self._written + len(self._writing):
            data = self._writing[self._read_pos - self._written:]
            self._read_pos += len(data)
        else:
            data, self.pending = bytes(self.pending), bytearray()
        self._close_if_read()
        return data

    def _close_if_read(self) -> None:
        if (self._file is not None and not self._writing
                and self._read_pos >= self._written):
            self.close()

    def close(self) -> None:
        """Close the file (freeing its disk space); unread bytes in it are lost."""
        if self._closer is not None:
            self._closer()
        self._file = self._closer = None
        self._read_pos = self._written = 0
        self._writing = b""


class StreamEnd:
    """Whether a stream has ended: ``is_set()`` (as parallel-ssh's ``eof`` event has).

    Output is pulled (see the module's theory of operation), so nothing sets it behind
    the caller's back and it has no ``wait``: iterate the stream to wait for its end.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def __repr__(self) -> str:
        return f"<StreamEnd {'set' if self._set else 'not set'}>"

    def __bool__(self) -> bool:
        return self._set

    def is_set(self) -> bool:
        """Whether the stream has ended."""
        return self._set

    def set(self) -> None:
        """Mark the stream as ended."""
        self._set = True


class LineBuffer:
    """Bytes received on one stream: complete lines (in memory, then spooled to a
    temporary file past ``limit``) plus a trailing partial line.

    It is also the stream's ``rw_buffer`` in parallel-ssh's terms: :meth:`write` adds
    bytes, :meth:`read` takes every byte not yet taken, ``eof`` tells whether the
    stream has ended.

    :param limit: bytes of complete lines (newlines included) held in memory; ``None``
        for no limit. A chunk counts until its last line is taken; a partial line never
        counts, so a line longer than the limit can still be completed.
    :param spool_to_disk: past ``limit``, complete lines go on into a temporary file;
        with ``False``, :meth:`is_full` turns true instead (read no more now).
    :param run_io: runs the temporary file's calls, ``run_io(func, *args)``; the
        engines pass one that uses gevent's thread pool. ``None`` runs them inline.
    :param pull: called by :meth:`read` to move what has arrived on the channel into
        the buffers first, without waiting; ``None`` for a buffer nobody fills.
    """

    def __init__(self, limit: int | None = DEFAULT_BUFFER_LIMIT, *,
                 spool_to_disk: bool = False, run_io: Callable[..., Any] | None = None,
                 pull: Callable[[], object] | None = None) -> None:
        self._ready: deque[bytes] = deque()  # lines split from _current, oldest first
        self.limit = limit
        self.spool_to_disk = spool_to_disk
        self.eof = StreamEnd()
        self.pull = pull
        self.wait_for_more: Callable[[float | None], object] | None = None
        """Set by the engine's reader: move more output in, waiting until the deadline
        given; see :meth:`lines`."""
        self._chunks: deque[bytes] = deque()  # complete lines as received, each ends in \n
        self._size = 0  # bytes in _chunks
        self._current = b""  # the chunk ``lines`` was split from, as received
        self._partial = bytearray()
        self._spool = _Spool(run_io or _run_inline)

    def __repr__(self) -> str:
        return (f"<LineBuffer {self._held()} bytes in memory, {len(self._spool)} spooled, "
                f"eof={self.eof.is_set()}>")

    def _held(self) -> int:
        return self._size + (len(self._current) if self._ready else 0)

    def is_full(self) -> bool:
        """Whether no more should be read into this buffer now: without spooling, the
        complete lines in memory have reached the limit; with it, bytes waiting to be
        written to the temporary file have piled up (the disk is failing)."""
        if self.spool_to_disk:
            return len(self._spool.pending) >= 4 * SPOOL_CHUNK
        return self.limit is not None and self._held() >= self.limit

    def feed(self, data: bytes) -> None:
        """Add a chunk of received bytes."""
        last_newline = data.rfind(b"\n")
        if last_newline < 0:
            self._partial += data
            return
        if self._partial:
            self._partial += data[:last_newline + 1]
            complete = bytes(self._partial)
            self._partial = bytearray()
        else:
            complete = data[:last_newline + 1]
        if self.spool_to_disk and (len(self._spool) or (
                self.limit is not None and self._held() >= self.limit)):
            self._spool.pending += complete
        else:
            self._chunks.append(complete)
            self._size += len(complete)
        if last_newline + 1 < len(data):
            self._partial += data[last_newline + 1:]

    def write(self, data: bytes) -> None:
        """Add bytes to the stream, as if received (parallel-ssh's ``rw_buffer.write``)."""
        self.feed(data)

    def flush(self) -> None:
        """Write spooled lines waiting in memory to the temporary file, once they make a
        chunk.

        :raises OSError: writing failed; nothing is lost, the lines stay in memory.
        """
        self._spool.flush()

    def _next_lines(self) -> deque[bytes]:
        """The deque of complete lines ready, oldest first, without line endings; refilled
        from the oldest unsplit chunk when empty (from the temporary file once memory has
        none). Lines popped from it are taken; a caller that stops early leaves the rest
        in place. ``HostOutput``'s line loop pops from it directly."""
        lines = self._ready
        if lines:
            return lines
        if self._chunks:
            chunk = self._chunks.popleft()
            self._size -= len(chunk)
        else:
            chunk = self._spool.take()
            if not chunk:
                self._current = b""
                return lines
        self._current = chunk
        if b"\r" in chunk:  # \r\n endings lose their \r here, once per chunk
            chunk = chunk.replace(b"\r\n", b"\n")
        parts = chunk.split(b"\n")
        parts.pop()  # the chunk ends with a newline: the last part is empty
        lines.extend(parts)
        return lines

    def has_lines(self) -> bool:
        """Whether a complete line is waiting."""
        return bool(self._next_lines())

    def pop_line(self) -> bytes:
        """The oldest complete line, without its line ending.

        :raises IndexError: there is none.
        """
        return self._next_lines().popleft()

    def drain(self) -> Iterator[bytes]:
        """Take the complete lines, oldest first, until none is left. A caller that stops
        early leaves the lines it has not taken in the buffer."""
        while lines := self._next_lines():
            while lines:
                yield lines.popleft()

    def take_partial(self) -> bytes | None:
        """The bytes after the last newline, once the stream has ended; ``None`` if none."""
        if not self._partial:
            return None
        rest = bytes(self._partial)
        self._partial = bytearray()
        return rest[:-1] if rest.endswith(b"\r") else rest

    def read(self) -> bytes:
        """Every byte received on the stream and not yet taken, as received (line
        endings included), after moving what has arrived on the channel; ``b""`` if
        none. Lines read here are not yielded by ``HostOutput.stdout``/``stderr`` any
        more, and the reverse.

        :raises SSHError: the channel failed while moving what had arrived.
        """
        if self.pull is not None:
            self.pull()
        parts = []
        if self._ready:
            taken = self._current.count(b"\n") - len(self._ready)
            parts.append(self._current.split(b"\n", taken)[-1] if taken else self._current)
            self._ready.clear()
        parts.extend(self._chunks)
        self._chunks.clear()
        self._size = 0
        while chunk := self._spool.take():
            parts.append(chunk)
        parts.append(bytes(self._partial))
        self._partial = bytearray()
        return b"".join(parts)

    def lines(self, timeout: float | None = None) -> Iterator[bytes]:
        """Yield the stream's lines (bytes, without their line endings) as they arrive,
        from :meth:`read`, until the stream ends; parallel-ssh's ``read_output`` of an
        ``rw_buffer``.

        :raises Timeout: ``timeout`` seconds passed first; lines taken so far were
            yielded, a partial line stays until the next call.
        """
        deadline = deadline_after(timeout)
        rest = b""
        while True:
            data = self.read()
            if data:
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    yield line[:-1] if line.endswith(b"\r") else line
            elif self.eof.is_set() or self.wait_for_more is None:
                break
            else:
                self.wait_for_more(deadline)
        if rest:
            yield rest

    def discard_lines(self) -> None:
        """Forget the complete lines, keeping a trailing partial one."""
        self._ready.clear()
        self._chunks.clear()
        self._size = 0
        self._spool.pending = bytearray()
        self._spool.close()

    def discard(self) -> None:
        """Forget everything buffered."""
        self.discard_lines()
        self._partial = bytearray()

    def close(self) -> None:
        """Close the temporary file, if any, forgetting the lines in it."""
        self._spool.close()


class OutputReader(Protocol):
    """What an engine provides to move a channel's output into the buffers."""

    def is_done(self) -> bool:
        """The command ended and its channel closed, or the channel failed."""

    def fill(self, deadline: float | None) -> None:
        """Move more output into the buffers, waiting until ``deadline`` if none is there.

        :raises Timeout: ``deadline`` passed.
        :raises BufferFullError: a stream's spooled output could not be written to its
            temporary file (nothing is lost).
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


class BufferData:
    """One stream of a command's output (parallel-ssh's shape).

    :param reader: what fills the stream: the engine's :class:`OutputReader` for the
        command (shared by its two streams), or ``None`` for a buffer nobody fills.
    :param rw_buffer: the stream's :class:`LineBuffer`: ``rw_buffer.read()`` takes the
        bytes received and not read yet.
    """

    __slots__ = ("reader", "rw_buffer")

    def __init__(self, reader: OutputReader | None, rw_buffer: LineBuffer) -> None:
        self.reader = reader
        self.rw_buffer = rw_buffer

    def __repr__(self) -> str:
        return f"BufferData(reader={self.reader!r}, rw_buffer={self.rw_buffer!r})"


class HostOutputBuffers:
    """A command's two output streams, each a :class:`BufferData` (parallel-ssh's shape).

    :param stdout: the standard output stream.
    :param stderr: the standard error stream.
    """

    __slots__ = ("stdout", "stderr")

    def __init__(self, stdout: BufferData, stderr: BufferData) -> None:
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"HostOutputBuffers(stdout={self.stdout!r}, stderr={self.stderr!r})"


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
    :ivar buffers: the output's two streams (:class:`HostOutputBuffers`), or ``None`` if
        the command never started. ``buffers.stdout.rw_buffer.read()`` gives the raw
        bytes received on stdout and not read yet.
    :ivar fully_qualified_command: the command line as sent, with ``sudo`` and the
        shell wrapped around it.
    """

    def __init__(self, host: str, channel: Any, stdin: Any, client: CommandClient | None,
                 alias: str | None = None, exception: BaseException | None = None,
                 encoding: str = "utf-8", read_timeout: float | None = None,
                 buffers: HostOutputBuffers | None = None,
                 fully_qualified_command: str | None = None) -> None:
        self.host = host
        self.alias = alias
        self.channel = channel
        self.stdin = stdin
        self.client = client
        self.exception = exception
        self.encoding = encoding
        self.read_timeout = read_timeout
        self.buffers = buffers
        self.fully_qualified_command = fully_qualified_command

    def __repr__(self) -> str:
        # The exit code only once known: reading it before may touch the network, and a
        # repr must not.
        reader = self._reader
        code = reader.poll_exit_code() if reader is not None and reader.is_done() else None
        return (f"HostOutput(host={self.host!r}, alias={self.alias!r}, exit_code={code!r}, "
                f"buffers={self.buffers!r}, exception={self.exception!r})")

    @property
    def _reader(self) -> OutputReader | None:
        return None if self.buffers is None else self.buffers.stdout.reader

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
        reader = self._reader
        if reader is None:
            return None
        try:
            return reader.poll_exit_code()
        except SSHError as exc:
            if self.exception is None:
                self.exception = exc
            return None

    def is_done(self) -> bool:
        """Whether the command has ended (or never started, or its host failed)."""
        reader = self._reader
        return reader is None or self.exit_code is not None or reader.is_done()

    def _lines(self, stderr: bool) -> Iterator[str]:
        if self.buffers is None:
            return
        stream = self.buffers.stderr if stderr else self.buffers.stdout
        buffer, reader = stream.rw_buffer, stream.reader
        deadline = deadline_after(self.read_timeout)
        encoding = self.encoding
        while True:
            lines = buffer._next_lines()
            if lines:
                if host_logger.isEnabledFor(logging.INFO):
                    while lines:
                        yield self._emit(lines.popleft())
                else:  # the common case, kept lean: this loop runs once per output line
                    popleft = lines.popleft
                    while lines:
                        yield popleft().decode(encoding, "replace")
                continue
            if reader is None or reader.is_done():
                break
            try:
                reader.fill(deadline)
            except (Timeout, BufferFullError):
                raise
            except SSHError as exc:
                self.exception = exc
                yield from self._rest(buffer)
                raise
        yield from self._rest(buffer)

    def _rest(self, buffer: LineBuffer) -> Iterator[str]:
        for raw in buffer.drain():
            yield self._emit(raw)
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
        (past the buffer limit in a temporary file, unless ``run_command`` was given
        ``spool_to_disk=False``) or, with ``consume``, dropped as it comes.

        :raises Timeout: ``deadline`` passed first.
        :raises BufferFullError: without ``consume``, a stream's unread output reached its
            buffer limit and spooling to disk is off (or writing the temporary file
            failed), so the command cannot end before somebody reads it.
        :raises SSHError: the connection failed.
        """
        reader = self._reader
        if reader is None or self.buffers is None:
            return
        while not reader.is_done():
            if not consume:
                self._check_room(self.buffers)
            reader.fill(deadline)
            if consume:
                self.consume(final=False)

    def _check_room(self, buffers: HostOutputBuffers) -> None:
        for name, stream in (("stdout", buffers.stdout), ("stderr", buffers.stderr)):
            buffer = stream.rw_buffer
            if buffer.is_full():
                port = self.client.port if self.client is not None else None
                raise BufferFullError(
                    f"{name} of {self.alias or self.host} holds {buffer.limit} bytes of "
                    f"unread output, its buffer limit, so the command waits until they are "
                    f"read: iterate host_out.{name}, join with consume_output=True, or pass "
                    f"run_command a larger buffer_limit (None for no limit) or "
                    f"spool_to_disk=True", host=self.host, port=port)

    def consume(self, final: bool = True) -> None:
        """Drop buffered output, logging each line to the host logger if it is enabled.

        :param final: the command has ended, so a trailing partial line goes too.
        """
        if self.buffers is None:
            return
        logging_enabled = host_logger.isEnabledFor(logging.INFO)
        for stream in (self.buffers.stdout, self.buffers.stderr):
            buffer = stream.rw_buffer
            if logging_enabled:
                for raw in buffer.drain():
                    self._emit(raw)
                partial = buffer.take_partial() if final else None
                if partial is not None:
                    self._emit(partial)
            elif final:
                buffer.discard()
            else:
                buffer.discard_lines()
