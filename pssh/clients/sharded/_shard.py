"""One worker process as the caller sees it: start it, send it requests, and run the
one message loop that takes its frames in the caller's gevent hub.

The process is started with multiprocessing's *spawn* method: a fresh interpreter
that imports pssh and gevent itself. Forking the caller instead would copy a running
gevent hub, its thread pool's locks, the caller's open sockets and any libssh2 session
in mid-use into the child; *forkserver* would fork from a clean server too, but it
preloads the caller's ``__main__`` into a process shared by the whole program, and its
quicker start matters little for a handful of workers started in parallel. The price of
spawn is the start-up (an interpreter and the imports, paid once per worker, in
parallel) and the usual rule for spawn: a script's top level must sit under
``if __name__ == "__main__":``.

When the worker's end of the socket closes, the loop reaps the process (waiting on its
sentinel, cooperatively) and fails whatever it still owed, each host with a
:class:`~pssh.exceptions.WorkerLostError` naming the host and how the worker ended. The
next request starts a new worker.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import signal
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

import gevent
import gevent.socket
from gevent.event import AsyncResult

from ...exceptions import WorkerLostError
from ._remote import HostRef, RemoteReader, RemoteResult
from ._wire import Wire
from ._worker import main

__all__ = ["Shard", "Started"]

logger = logging.getLogger("pssh.clients.sharded")

_CONTEXT = multiprocessing.get_context("spawn")
STOP_GRACE = 10.0
"""Seconds a worker gets to close its connections and exit before it is killed."""

Started = tuple[BaseException | None, str | None, RemoteReader | None]
"""One host's start of a command: its error, its command line as sent, its reader."""


class Shard:
    """The hosts at ``positions`` of the client, served by one worker process.

    :param hosts: the host names at those positions.
    :param ports: their ports, for errors raised before the worker said otherwise.
    :param settings: the worker's ``ParallelSSHClient`` keyword arguments.
    """

    def __init__(self, index: int, positions: range, hosts: list[str], ports: list[int],
                 settings: dict[str, Any]) -> None:
        self.index = index
        self.positions = positions
        self.hosts = hosts
        self.ports = ports
        self._settings = settings
        self._ids = itertools.count()
        self._starting: dict[int, tuple[AsyncResult, int | None, bool]] = {}
        self._runs: dict[int, list[RemoteReader | None]] = {}
        self._requests: dict[int, tuple[RemoteResult, int]] = {}
        self._progress: dict[int, tuple[Callable[..., None], set[int]]] = {}
        self._stopping = False
        self.process: Any = None
        self.pid: int | None = None
        """The worker's process id (the last one's, once it has ended)."""
        self._wire: Wire | None = None
        self._loop: gevent.Greenlet | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else "stopped"
        return f"<Shard {self.index}: {len(self.hosts)} hosts, pid {self.pid}, {state}>"

    def is_alive(self) -> bool:
        return self._loop is not None and not self._loop.dead

    def start(self) -> None:
        """Start the worker, unless it runs; returns without waiting for it."""
        if self.is_alive():
            return
        parent, child = socket.socketpair()
        process = _CONTEXT.Process(target=main, args=(child,), daemon=True,
                                   name=f"pssh-shard-{self.index}")
        try:
            process.start()
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.process, self.pid, self._stopping = process, process.pid, False
        self._wire = Wire(gevent.socket.socket(fileno=parent.detach()))
        self._loop = gevent.spawn(self._receive_loop, self._wire, process)
        self._send(("init", self.hosts, self._settings))

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._wire is not None
        try:
            self._wire.send(message)
        except OSError:
            pass  # the worker has gone; the loop sees it and fails what is pending

    # -- requests -----------------------------------------------------------------------

    def run(self, commands: list[str], options: dict[str, Any], limit: int | None,
            spool_to_disk: bool) -> tuple[int, AsyncResult]:
        """Start ``commands`` (one per host): the call's id, and a result whose value is
        a list of :data:`Started`, one per host, once every command has started."""
        self.start()
        call_id = next(self._ids)
        started = AsyncResult()
        self._starting[call_id] = (started, limit, spool_to_disk)
        self._send(("run", call_id, commands, options))
        return call_id, started

    def stdin(self, call_id: int, index: int, operation: str, data: bytes) -> None:
        """Do ``operation`` on a command's stdin in the worker and wait until done.

        :raises SSHError: what the worker raised, or ``WorkerLostError``.
        """
        result = self._request(index)
        if self.is_alive():
            self._send(("stdin", result.request_id, call_id, index, operation, data))
        result.get()

    def copy(self, method: str, templates: tuple[str, str], copy_args: list[dict[str, str]],
             options: dict[str, Any], progress: Callable[..., None] | None,
             ) -> list[RemoteResult]:
        """Start a copy on every host of the shard; one result per host."""
        self.start()
        results = [self._request(index) for index in range(len(self.hosts))]
        ids = [result.request_id for result in results]
        if progress is not None:
            self._progress[ids[0]] = (progress, set(ids))
        options = dict(options, progress=progress is not None)
        self._send(("copy", ids, method, templates, copy_args, options))
        return results

    def _gate(self, call_id: int, index: int, pause: bool) -> None:
        """Stop (``pause``) or restart the worker's reading of one command's output."""
        if self.is_alive():
            self._send(("gate", call_id, index, pause))

    def _request(self, index: int) -> RemoteResult:
        request_id = next(self._ids)
        result = RemoteResult(request_id, lambda: self._send(("cancel", request_id)))
        if self.is_alive():
            self._requests[request_id] = (result, index)
        else:
            result.set_exception(self._lost_error(index, "is not running", None))
        return result

    def stop(self) -> None:
        """Ask the worker to close its connections and exit; kill it if it has not
        within ``STOP_GRACE`` seconds. Returns once it is reaped."""
        if not self.is_alive():
            return
        assert self._loop is not None
        self._stopping = True
        self._send(("stop",))
        self._loop.join(STOP_GRACE)
        if not self._loop.dead:
            self.process.kill()
            self._loop.join()

    def abandon(self) -> None:
        """Close the socket without waiting: the worker sees the end and exits (for a
        client dropped without ``disconnect``)."""
        if self._loop is not None:
            self._loop.kill(block=False)
        if self._wire is not None:
            self._wire.close()

    # -- the message loop ---------------------------------------------------------------

    def _receive_loop(self, wire: Wire, process: Any) -> None:
        try:
            while (batch := wire.receive()) is not None:
                for item in batch:
                    getattr(self, "_on_" + item[0])(*item[1:])
        except OSError:
            pass  # the connection broke: the worker has gone
        finally:
            wire.close()
            self._lost(process)

    def _on_started(self, call_id: int, hosts: list[tuple[Any, str | None, int | None]],
                    ) -> None:
        started, limit, spool = self._starting.pop(call_id)
        readers: list[RemoteReader | None] = []
        value: list[Started] = []
        for index, (error, command, port) in enumerate(hosts):
            reader = None
            if error is None:
                host = HostRef(self.hosts[index], port or self.ports[index])
                reader = RemoteReader(host, limit, spool, partial(self._gate, call_id, index))
            readers.append(reader)
            value.append((error, command, reader))
        self._runs[call_id] = readers
        started.set(value)

    def _on_failed(self, call_id: int, error: BaseException) -> None:
        self._starting.pop(call_id)[0].set_exception(error)

    def _on_out(self, call_id: int, index: int, out: bytes, err: bytes) -> None:
        reader = self._runs[call_id][index]
        assert reader is not None
        reader.feed(out, err)

    def _on_end(self, call_id: int, index: int, exit_code: int | None,
                error: BaseException | None) -> None:
        readers = self._runs[call_id]
        reader = readers[index]
        assert reader is not None
        reader.finish(exit_code, error)
        if all(each is None or each.is_done() for each in readers):
            del self._runs[call_id]

    def _on_reply(self, request_id: int, error: BaseException | None) -> None:
        result, _ = self._requests.pop(request_id)
        for first, (_, pending) in list(self._progress.items()):
            pending.discard(request_id)
            if not pending:
                del self._progress[first]
        if error is None:
            result.set(None)
        else:
            result.set_exception(error)

    def _on_progress(self, first: int, args: tuple[Any, ...]) -> None:
        found = self._progress.get(first)
        if found is None:
            return
        try:
            found[0](*args)
        except Exception:
            logger.exception("The progress callback raised; the copy goes on")

    def _lost(self, process: Any) -> None:
        """The worker has gone: reap it and fail what it still owed."""
        exitcode = _reap(process)
        fate = "was stopped by disconnect()" if self._stopping else _fate(exitcode)
        starting, self._starting = self._starting, {}
        for started, _, _ in starting.values():
            started.set([(self._lost_error(index, fate, exitcode), None, None)
                         for index in range(len(self.hosts))])
        runs, self._runs = self._runs, {}
        for readers in runs.values():
            for index, reader in enumerate(readers):
                if reader is not None:
                    reader.finish(None, self._lost_error(index, fate, exitcode))
        requests, self._requests = self._requests, {}
        for result, index in requests.values():
            result.set_exception(self._lost_error(index, fate, exitcode))
        self._progress.clear()

    def _lost_error(self, index: int, fate: str, exitcode: int | None) -> WorkerLostError:
        host, port = self.hosts[index], self.ports[index]
        return WorkerLostError(
            f"{host}:{port}: the worker process serving it (shard {self.index}, pid "
            f"{self.pid}) "
            f"{fate} before this host's work ended; a command may have run on the host. "
            f"The next call starts a new worker", host=host, port=port,
            reason=fate.removeprefix("was ").removeprefix("is "), exitcode=exitcode)


def _reap(process: Any) -> int | None:
    """Wait (cooperatively) for ``process`` to end, killing it after ``STOP_GRACE``
    seconds; its exit code. Frees its sentinel."""
    try:
        gevent.socket.wait_read(process.sentinel, STOP_GRACE, _StillRunning())
    except _StillRunning:
        process.kill()
        gevent.socket.wait_read(process.sentinel)
    process.join()
    exitcode: int | None = process.exitcode
    process.close()
    return exitcode


class _StillRunning(Exception):
    """The worker had not exited in time."""


def _fate(exitcode: int | None) -> str:
    if exitcode is None:
        return "ended"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with status {exitcode}"
