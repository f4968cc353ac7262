"""The worker side of a sharded client: one process, one gevent hub, one
:class:`~pssh.clients.native.ParallelSSHClient` for its slice of the hosts.

Theory of operation
-------------------
One greenlet reads the caller's requests and starts a greenlet for each; the work's
results go into an :class:`_Outbox`, and one sender greenlet ships whatever has piled
up as a single frame when it next runs. Under load a frame carries many hosts' output,
so the per-message cost is paid once per hub turn, not once per line.

For each command, a forwarder greenlet per host waits on the channel (the native
reader's ``fill``), takes the raw bytes from the host's two buffers and adds them to
the outbox; the caller splits lines and decodes, so partial lines and encodings stay
exactly as in a one-process client. Flow control is end to end: while the outbox holds
more than ``_OUTBOX_LIMIT`` bytes the forwarders stop reading their channels, the
outbox fills only as fast as the socket to the caller drains, and that drains only as
fast as the caller's hub reads it. Per host, the caller closes a *gate* when that host's
unread output fills its buffer without spooling (``spool_to_disk=False``) and opens it
once lines are taken: while it is closed the host's forwarder reads nothing, so the
remote command waits on SSH flow control, as it would in one process.

The worker ignores SIGINT (Ctrl-C in a terminal reaches the whole process group: the
caller decides) and ends when the caller says ``stop`` or closes its end.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from typing import Any

import gevent
import gevent.socket
from gevent.event import Event

from ...exceptions import SessionError, SSHError
from ...output import HostOutput
from ..native import ParallelSSHClient
from ._wire import Wire, portable

__all__ = ["main"]

_OUTBOX_LIMIT = 1024 * 1024
"""Bytes of output waiting to be sent past which forwarders stop reading channels."""


def main(sock: socket.socket) -> None:
    """The worker process's entry point: serve requests on ``sock`` until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wire = Wire(gevent.socket.socket(fileno=sock.detach()))
    try:
        init = wire.receive()
        if init is None:
            return
        _, hosts, settings = init
        _Worker(wire, ParallelSSHClient(hosts, **settings)).serve()
    finally:
        wire.close()


class _Outbox:
    """Results waiting for the sender greenlet; output of one host merges into one item
    per frame."""

    def __init__(self, wire: Wire) -> None:
        self._wire = wire
        self._items: list[list[Any]] = []
        self._output: dict[tuple[int, int], list[Any]] = {}
        self._size = 0
        self._ready = Event()
        self._room = Event()
        self._room.set()
        self._closing = False
        self.sender = gevent.spawn(self._send_loop)

    def put(self, *item: Any) -> None:
        self._items.append(list(item))
        self._ready.set()

    def put_output(self, call_id: int, index: int, out: bytes, err: bytes) -> None:
        if not out and not err:
            return
        item = self._output.get((call_id, index))
        if item is None:
            item = ["out", call_id, index, bytearray(out), bytearray(err)]
            self._output[call_id, index] = item
            self._items.append(item)
        else:
            item[3] += out
            item[4] += err
        self._size += len(out) + len(err)
        if self._size > _OUTBOX_LIMIT:
            self._room.clear()
        self._ready.set()

    def wait_for_room(self) -> None:
        self._room.wait()

    def close(self) -> None:
        """Send what is left, then stop the sender."""
        self._closing = True
        self._ready.set()
        self.sender.join()

    def _send_loop(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            items, self._items, self._output, self._size = self._items, [], {}, 0
            if items:
                try:
                    self._wire.send(items)
                except OSError:
                    return  # the caller has gone; the request loop sees it too
            self._room.set()
            if self._closing and not self._items:
                return


class _Worker:
    """Requests from the caller, served with ``client``."""

    def __init__(self, wire: Wire, client: ParallelSSHClient) -> None:
        self._wire = wire
        self._client = client
        self._outbox = _Outbox(wire)
        self._runs: dict[int, list[HostOutput]] = {}
        self._copies: dict[int, Any] = {}
        self._cancelled: set[int] = set()  # copies cancelled before they were recorded
        self._handlers: dict[str, Callable[..., None]] = {
            "run": self._run, "stdin": self._stdin, "copy": self._copy,
            "cancel": self._cancel, "gate": self._set_gate}
        self._gates: dict[tuple[int, int], Event] = {}

    def serve(self) -> None:
        try:
            while True:
                message = self._wire.receive()
                if message is None or message[0] == "stop":
                    break
                gevent.spawn(self._handlers[message[0]], *message[1:])
        finally:
            self._client.disconnect()
            self._outbox.close()

    # -- commands -------------------------------------------------------------------------

    def _run(self, call_id: int, commands: list[str], options: dict[str, Any]) -> None:
        # Each host's command is already formatted by the caller: "%s" takes it verbatim.
        try:
            outputs = self._client.run_command("%s", host_args=[(each,) for each in commands],
                                               stop_on_errors=False, buffer_limit=None,
                                               spool_to_disk=False, **options)
        except Exception as exc:
            self._outbox.put("failed", call_id, portable(exc))
            return
        started = [(portable(out.exception), out.fully_qualified_command,
                    out.client.port if out.client is not None else None)
                   for out in outputs]
        self._runs[call_id] = outputs
        self._outbox.put("started", call_id, started)
        forwarders = [gevent.spawn(self._forward, call_id, index, out)
                      for index, out in enumerate(outputs) if out.buffers is not None]
        gevent.joinall(forwarders)
        del self._runs[call_id]

    def _forward(self, call_id: int, index: int, host_out: HostOutput) -> None:
        """Ship one host's output as it arrives, then its exit code or error."""
        assert host_out.buffers is not None
        reader = host_out.buffers.stdout.reader
        out, err = host_out.buffers.stdout.rw_buffer, host_out.buffers.stderr.rw_buffer
        outbox = self._outbox
        error: BaseException | None = None
        try:
            while reader is not None and not reader.is_done():
                outbox.wait_for_room()
                gate = self._gates.get((call_id, index))
                if gate is not None:
                    gate.wait()
                reader.fill(None)
                outbox.put_output(call_id, index, out.read(), err.read())
        except Exception as exc:  # whatever it is, the caller must hear this host end
            error = exc
        self._gates.pop((call_id, index), None)
        code = None
        try:
            outbox.put_output(call_id, index, out.read(), err.read())
            if error is None:
                code = host_out.exit_code
        except Exception as exc:
            error = error or exc
        outbox.put("end", call_id, index, code, portable(error or host_out.exception))

    def _set_gate(self, call_id: int, index: int, pause: bool) -> None:
        """The caller's buffer for this host is full (``pause``), or has room again."""
        if pause:
            self._gates.setdefault((call_id, index), Event())
        else:
            gate = self._gates.pop((call_id, index), None)
            if gate is not None:
                gate.set()

    def _stdin(self, request_id: int, call_id: int, index: int, operation: str,
               data: bytes) -> None:
        error: BaseException | None = None
        try:
            outputs = self._runs.get(call_id)
            stdin = outputs[index].stdin if outputs is not None else None
            if stdin is None:
                raise SessionError("the command has ended, so its stdin is closed")
            if operation == "write":
                stdin.write(data)
            else:
                stdin.close()
        except SSHError as exc:
            error = exc
        self._outbox.put("reply", request_id, portable(error))

    # -- copies ---------------------------------------------------------------------------

    def _copy(self, request_ids: list[int], method: str, templates: tuple[str, str],
              copy_args: list[dict[str, str]], options: dict[str, Any]) -> None:
        if options.pop("progress", False):
            options["progress"] = self._progress_for(request_ids)
        try:
            results = getattr(self._client, method)(*templates, copy_args=copy_args,
                                                    **options)
        except Exception as exc:
            for request_id in request_ids:
                self._outbox.put("reply", request_id, portable(exc))
            return
        for request_id, result in zip(request_ids, results):
            self._copies[request_id] = result
            result.rawlink(self._copy_ended(request_id))
            if request_id in self._cancelled:  # asked for while the copy was starting
                result.kill(block=False)

    def _copy_ended(self, request_id: int) -> Callable[[Any], None]:
        def ended(result: Any) -> None:
            self._copies.pop(request_id, None)
            self._cancelled.discard(request_id)
            self._outbox.put("reply", request_id, portable(result.exception))
        return ended

    def _progress_for(self, request_ids: list[int]) -> Callable[[str, str, int, int], None]:
        # Hosts may repeat, so the host name cannot tell which request it is: the first
        # request of the copy carries every host's progress, the caller routes it by host.
        first = request_ids[0]

        def progress(host: str, path: str, done: int, total: int) -> None:
            self._outbox.put("progress", first, (host, path, done, total))
        return progress

    def _cancel(self, request_id: int) -> None:
        result = self._copies.get(request_id)
        if result is not None:
            result.kill(block=False)
        else:  # not started yet (its local file is still being checked), or already over
            self._cancelled.add(request_id)
