"""The caller's side of one host's work in a worker: what fills the caller's
:class:`~pssh.output.HostOutput`, its stdin, and a copy's result.

A :class:`RemoteReader` is the output's reader (:class:`~pssh.output.OutputReader`):
the shard's message loop pushes bytes into its two :class:`~pssh.output.LineBuffer`\\ s
as frames arrive, and :meth:`RemoteReader.fill` waits for the next push. Splitting,
decoding, spooling past ``buffer_limit``, ``read_timeout`` and ``join`` are
``pssh.output``'s, unchanged, so the caller holds the real classes.
"""

from __future__ import annotations

import tempfile
import weakref
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event

from ..._deadline import time_left
from ...exceptions import BufferFullError, Timeout
from ...output import BufferData, HostOutput, HostOutputBuffers, LineBuffer
from ..base._channel import run_off_hub
from ..base.parallel import HostResult

__all__ = ["HostRef", "RemoteReader", "RemoteStdin", "RemoteResult"]


class HostRef:
    """``HostOutput.client`` for a host served by a worker: its name and port."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __repr__(self) -> str:
        return f"<HostRef {self.host}:{self.port} (in a worker process)>"


class RemoteReader:
    """One command's output in the caller, filled by the shard's message loop."""

    def __init__(self, host: HostRef, limit: int | None, spool_to_disk: bool,
                 gate: Callable[[bool], None]) -> None:
        self.host = host
        # Weak methods: the buffers must not keep the reader alive (see ``_weakly``).
        pull, fill = _weakly(self._pull), _weakly(self.fill)
        self.stdout = LineBuffer(limit, spool_to_disk=spool_to_disk, run_io=run_off_hub,
                                 pull=pull)
        self.stderr = LineBuffer(limit, spool_to_disk=spool_to_disk, run_io=run_off_hub,
                                 pull=pull)
        self.stdout.wait_for_more = self.stderr.wait_for_more = fill
        self.output: weakref.ref[HostOutput] | None = None
        self.owner: object = None
        """What must outlive the command (the client whose workers serve it): held
        until the command ends, so an output outlives a client dropped meanwhile, as
        with ``ParallelSSHClient``."""
        self._gate = gate
        self._paused = False
        self._exit_code: int | None = None
        self._done = False
        self._error: BaseException | None = None
        self._changed: Event | None = None

    def __repr__(self) -> str:
        state = "failed" if self._error else "done" if self._done else "running"
        return f"<RemoteReader {self.host.host} {state}>"

    @property
    def error(self) -> BaseException | None:
        """What failed the host, once it has."""
        return self._error

    def host_buffers(self) -> HostOutputBuffers:
        return HostOutputBuffers(BufferData(self, self.stdout), BufferData(self, self.stderr))

    # -- OutputReader -----------------------------------------------------------------------

    def is_done(self) -> bool:
        return self._done

    def poll_exit_code(self) -> int | None:
        if not self._done:
            self._pull()
        return self._exit_code

    def fill(self, deadline: float | None) -> None:
        """Wait until more output (or the end) arrives, or ``deadline``.

        :raises Timeout: ``deadline`` passed.
        :raises SSHError: the host failed meanwhile (its worker ended, say).
        """
        if self._done:
            return
        # The event first: letting the worker read again sends a message, which may
        # yield to the message loop, and what arrives meanwhile must wake this wait.
        if self._changed is None:
            self._changed = Event()
        changed = self._changed
        self._resume_if_room()
        if not changed.wait(time_left(deadline)):
            where = f"{self.host.host}:{self.host.port}"
            raise Timeout(f"no output from {where} before the deadline; what was read "
                          f"stays readable", host=self.host.host, port=self.host.port)
        if self._error is not None:
            raise self._error

    # -- from the message loop ------------------------------------------------------------

    def feed(self, out: bytes, err: bytes) -> None:
        if out:
            self.stdout.feed(bytes(out))
        if err:
            self.stderr.feed(bytes(err))
        self._spool()
        if not self._paused and not self._done and self._is_full():
            self._paused = True
            self._gate(True)
        self._wake()

    def finish(self, exit_code: int | None, error: BaseException | None) -> None:
        if self._done:
            return
        self._exit_code = exit_code
        self._error = error
        self._done = True
        self.owner = None
        self.stdout.eof.set()
        self.stderr.eof.set()
        output = self.output() if self.output is not None else None
        if error is not None and output is not None and output.exception is None:
            output.exception = error
        self._wake()

    def _is_full(self) -> bool:
        return self.stdout.is_full() or self.stderr.is_full()

    def _resume_if_room(self) -> None:
        """A stream was full, so the worker stopped reading this host (its command
        waiting on SSH flow control, as in one process); once lines have been taken,
        let it read again."""
        if self._paused and not self._done and not self._is_full():
            self._paused = False
            self._gate(False)

    def _pull(self) -> None:
        self._resume_if_room()
        _let_loops_run()

    def _wake(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _spool(self) -> None:
        """Write lines spooled past the buffer limit to their temporary files (in
        gevent's thread pool): holding up the message loop meanwhile slows this worker's
        sending, which is the back-pressure wanted."""
        for name, buffer in (("stdout", self.stdout), ("stderr", self.stderr)):
            try:
                buffer.flush()
            except OSError as exc:
                self.finish(None, BufferFullError(
                    f"{name} of {self.host.host}: writing its unread output to a temporary "
                    f"file in {tempfile.gettempdir()} failed ({exc})", host=self.host.host,
                    port=self.host.port))


class RemoteStdin:
    """A command's standard input in a worker: each call returns once the worker has
    done it, raising what it raised."""

    def __init__(self, host: HostRef, send: Callable[[str, bytes], None]) -> None:
        self._host = host
        self._send = send

    def __repr__(self) -> str:
        return f"<RemoteStdin {self._host.host}>"

    def write(self, data: bytes | str) -> None:
        """Send ``data`` (str is encoded as UTF-8) to the command's stdin.

        :raises SessionError: the command has ended, the channel failed, or the worker
            ended (:class:`~pssh.exceptions.WorkerLostError`).
        """
        self._send("write", data.encode("utf-8") if isinstance(data, str) else bytes(data))

    def flush(self) -> None:
        """Nothing to do: ``write`` returns once the bytes are sent."""

    def close(self) -> None:
        """Send EOF, so commands reading stdin to its end (``cat``) can finish."""
        self._send("close", b"")


class RemoteResult(HostResult):
    """A copy's result for one host in a worker; ``kill()`` asks the worker to stop it."""

    __slots__ = ("request_id", "_cancel")

    def __init__(self, request_id: int, cancel: Callable[[], None]) -> None:
        super().__init__()
        self.request_id = request_id
        self._cancel = cancel
        self.greenlet = None

    def kill(self, block: bool = True, timeout: float | None = None) -> None:
        """Stop the copy; ``get()`` then raises ``gevent.GreenletExit``."""
        if not self.ready():
            self._cancel()
            if block:
                self.wait(timeout)


def failed_host(host: str, port: int | None, error: BaseException, alias: str | None,
                encoding: str, read_timeout: float | None) -> HostOutput:
    """The output of a host whose command never started."""
    return HostOutput(host, None, None, HostRef(host, port or 22), alias=alias,
                      exception=error, encoding=encoding, read_timeout=read_timeout)


def _weakly(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` without keeping its object alive, so that dropping a ``HostOutput``
    frees its buffers (and closes their temporary files) at once."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        bound = ref()
        return None if bound is None else bound(*args)
    return call


def _let_loops_run() -> None:
    """Give the shards' message loops a turn, so that a caller polling ``exit_code`` or
    ``rw_buffer.read()`` in a loop of its own still sees output arrive."""
    gevent.sleep(0)
