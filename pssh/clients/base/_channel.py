"""A running command's channel: its output reader and its stdin, engine-independent.

The reader moves bytes from the SSH channel into the two line buffers only when
:class:`~pssh.output.HostOutput` asks (see the theory of operation in ``pssh.output``).
What is the engine's is one *step*: move what has arrived on both streams without
waiting, notice the command's end, and say whether anything happened. The reader runs
that step in the client's wait loop (:meth:`ChannelReader.fill`) or once, without
waiting (:meth:`ChannelReader.poll_exit_code`). When a command counts as finished, and
how its channel is released, differ between libssh2 and libssh; each engine's
``_channel`` module says how.

Past the buffer limit a stream's lines are spooled to a temporary file (see
``pssh.output``). The step only appends them to memory; after it, :meth:`fill` writes
them out a chunk (1 MiB) at a time in gevent's thread pool, as reading them back does:
on this kind of machine a 1 MiB write to a temporary file takes 2 ms at the median but
up to 20 ms at the 99th percentile and 170 ms at worst (the kernel throttling writers
of dirty pages), which inline would stall every other host's greenlet; the thread
pool's round trip adds about 0.5 ms to a write.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from gevent.hub import get_hub

from ...exceptions import BufferFullError, Timeout
from ...output import BufferData, HostOutputBuffers, LineBuffer
from ._seams import ChannelClient, where

T = TypeVar("T")

__all__ = ["ChannelReader", "Stdin", "READ_SIZE", "FILL_LIMIT", "run_off_hub"]

READ_SIZE = 64 * 1024
"""Bytes asked of the library per read of one stream."""
FILL_LIMIT = 1024 * 1024
"""Bytes one step takes at most, so a reader yields lines before it takes more and a
fast stream read as it arrives stays within a few buffers' worth of memory."""


class ChannelReader:
    """Fills one command's stdout/stderr buffers from its channel.

    Engines implement :meth:`_step`, :meth:`_read` and :meth:`_release_channel`, and
    call :meth:`_finish` from their step once the command has ended.
    """

    def __init__(self, client: ChannelClient, channel: Any) -> None:
        pull = _weak_poll(self)  # a bound method here would make a reference cycle
        self.stdout = LineBuffer(run_io=run_off_hub, pull=pull)
        self.stderr = LineBuffer(run_io=run_off_hub, pull=pull)
        self.stdout.wait_for_more = self.stderr.wait_for_more = _weak_fill(self)
        self._client = client
        self._channel = channel
        self._exit_code: int | None = None
        self._done = False
        self._failed = False

    def __repr__(self) -> str:
        state = "failed" if self._failed else "done" if self._done else (
            "eof" if self._is_at_eof() else "running")
        return f"<{type(self).__name__} {self._client.host} {state}>"

    def is_done(self) -> bool:
        """The command has ended and its channel closed, or the channel failed."""
        return self._done or self._failed

    def set_buffer_limit(self, limit: int | None, spool_to_disk: bool) -> None:
        """Hold at most ``limit`` bytes of each stream's unread lines in memory; past
        that, spool them to a temporary file, or with ``spool_to_disk`` false stop
        reading that stream (see ``pssh.output``)."""
        for buffer in (self.stdout, self.stderr):
            buffer.limit = limit
            buffer.spool_to_disk = spool_to_disk

    def host_buffers(self) -> HostOutputBuffers:
        """The two streams in ``HostOutput.buffers``'s shape, this reader filling both."""
        return HostOutputBuffers(BufferData(self, self.stdout), BufferData(self, self.stderr))

    def fill(self, deadline: float | None) -> None:
        """Read what is available, waiting for more until ``deadline`` if nothing is.

        :raises Timeout: ``deadline`` passed.
        :raises SSHError: the channel or connection failed (the reader is then done).
        """
        if self.is_done():
            return
        try:
            self._client.wait_for(self._step, deadline, "reading output")
        except Timeout:
            raise
        except Exception:
            self._fail()
            raise
        self._spool()

    def poll_exit_code(self) -> int | None:
        """The exit code once the command has finished; moves available output, never
        waits.

        :raises SSHError: the channel or connection failed (the reader is then done).
        """
        if not self.is_done():
            try:
                self._client.call_once(self._step, "checking the command")
            except Exception:
                self._fail()
                raise
            self._spool()
        return self._exit_code

    def _spool(self) -> None:
        """Write what the step spooled to the temporary files, off the event loop."""
        for name, buffer in (("stdout", self.stdout), ("stderr", self.stderr)):
            try:
                buffer.flush()
            except OSError as exc:
                client = self._client
                raise BufferFullError(
                    f"{name} of {where(client)}: writing its unread output to a temporary "
                    f"file failed ({exc}); it is kept in memory meanwhile. Free space in "
                    f"{tempfile.gettempdir()} (or set TMPDIR), read the output, or join with "
                    f"consume_output=True", host=client.host, port=client.port) from exc

    def _fail(self) -> None:
        self._failed = True
        self.stdout.eof.set()
        self.stderr.eof.set()

    def _finish(self, status: int | None) -> None:
        """The command has ended with ``status``: record it and release the channel."""
        self._exit_code = status
        self._done = True
        self.stdout.eof.set()
        self.stderr.eof.set()
        self._release_channel()

    def _read_available(self) -> int:
        """Read both streams until neither has data or ``FILL_LIMIT`` bytes came; how
        many bytes came.

        A library's read of one stream may first take whatever the socket holds, and file
        it by stream inside the library. So the stderr read, made after the stdout read
        found nothing, may file stdout bytes (or the end of stdout) that arrived in
        between, and nothing more may come on the socket for them: parking then would
        wait for bytes the library already holds. So if the stderr read took bytes from
        the socket (the kernel's count says), another round reads what it filed.
        """
        taken = 0
        while taken < FILL_LIMIT:
            size = self._read(False, self.stdout)
            if not size:
                before = self._client.taken_bytes()
                size = self._read(True, self.stderr)
                if size is None or (not size and (
                        before is None or self._client.taken_bytes() == before)):
                    break
            taken += size or 0
        return taken

    # -- engine hooks -----------------------------------------------------------------------

    def _read(self, is_stderr: bool, buffer: LineBuffer) -> int | None:
        """Move what has arrived of one stream into ``buffer``, never waiting; how many
        bytes came, or ``None`` if the stream was not read: its buffer is full (the
        library keeps the rest and holds the channel window shut, so the remote command
        waits) or it has ended."""
        raise NotImplementedError


    def _step(self) -> bool:
        """Move what has arrived, never waiting; True if anything came or the command
        finished."""
        raise NotImplementedError

    def _release_channel(self) -> None:
        """Free the channel on the server once the command has finished."""
        raise NotImplementedError

    def _is_at_eof(self) -> bool:
        """Whether both streams have ended (for ``repr``)."""
        raise NotImplementedError


def _weak_poll(reader: ChannelReader) -> Callable[[], object]:
    """``reader.poll_exit_code`` without keeping ``reader`` alive, so that dropping a
    ``HostOutput`` frees its buffers (and closes their temporary files) at once."""
    ref = weakref.ref(reader)

    def poll() -> object:
        alive = ref()
        return None if alive is None else alive.poll_exit_code()
    return poll


def _weak_fill(reader: ChannelReader) -> Callable[[float | None], None]:
    """``reader.fill`` without keeping ``reader`` alive (see :func:`_weak_poll`)."""
    ref = weakref.ref(reader)

    def fill(deadline: float | None) -> None:
        alive = ref()
        if alive is not None:
            alive.fill(deadline)
    return fill


def run_off_hub(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in gevent's thread pool and return its result, or raise its
    error here (for the spool files' calls; see the module's docstring)."""
    failed, value = get_hub().threadpool.apply(_capture, (func, args))
    if failed:
        raise value
    result: T = value
    return result


def _capture(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    try:
        return False, func(*args)
    except Exception as exc:
        return True, exc


class Stdin:
    """A command's standard input.

    ``write`` returns once the library has taken every byte (partial writes are resumed),
    so ``flush`` has nothing left to do; it never discards unread output.
    """

    def __init__(self, channel: Any, client: ChannelClient) -> None:
        self._channel = channel
        self._client = client

    def __repr__(self) -> str:
        return f"<Stdin {self._client.host}>"

    def write(self, data: bytes | str) -> None:
        """Send ``data`` (str is encoded as UTF-8) to the command's stdin.

        :raises Timeout: the client's ``timeout`` passed before all bytes were taken.
        :raises SessionError: the command has ended or the channel failed.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._client.write_stdin(self._channel, payload)

    def flush(self) -> None:
        """Nothing to do: ``write`` sends everything before returning."""

    def close(self) -> None:
        """Send EOF, so commands reading stdin to its end (``cat``) can finish."""
        self._client.send_eof(self._channel)
