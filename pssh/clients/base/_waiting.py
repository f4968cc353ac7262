"""Waiting on a run's outputs: ``finished``, ``join`` and ``iter_completed``.

They need nothing of a client but its last run's outputs, so every parallel client (the
one-process ``ParallelSSHClient`` of both engines and the sharded one) inherits them from
:class:`OutputWaiting` and keeps ``_last_output`` up to date.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import gevent
from gevent import Greenlet
from gevent.queue import Queue

from ..._deadline import check_timeout, deadline_after
from ...exceptions import BufferFullError, SSHError, Timeout
from ...output import HostOutput

__all__ = ["OutputWaiting", "check_items"]

logger = logging.getLogger("pssh.clients")


class OutputWaiting:
    """``finished``, ``join`` and ``iter_completed`` over ``_last_output`` or given
    outputs."""

    _last_output: list[HostOutput] | None

    def finished(self, output: list[HostOutput] | None = None) -> bool:
        """Whether every command in ``output`` (default: the last run's) has ended."""
        output = self._last_output if output is None else output
        return all(host_out.is_done() for host_out in output or [])

    def join(self, output: list[HostOutput] | None = None, consume_output: bool = False,
             timeout: float | None = None) -> None:
        """Wait until every command in ``output`` has ended, reading output as it comes.

        Output stays readable afterwards unless ``consume_output`` is set, which drops it
        (logging it to the host logger when that is enabled). Output past a stream's
        ``buffer_limit`` waits in a temporary file (see ``run_command``'s
        ``spool_to_disk``), so memory stays bounded whatever its size. Exit codes are set
        on return.
        A host whose connection fails meanwhile gets the error on ``exception``; the
        others are still waited for.

        :param output: outputs to wait on; defaults to the last ``run_command``'s.
        :param consume_output: drop output as it is read, keeping memory flat.
        :param timeout: seconds to wait for all hosts together; ``None`` for no limit.
        :raises Timeout: ``timeout`` passed first. ``finished_output`` and
            ``unfinished_output`` on the exception list the outputs; everything read so
            far stays readable, and ``join`` may be called again.
        :raises BufferFullError: only if ``run_command`` was given
            ``spool_to_disk=False`` (or a temporary file could not be written): without
            ``consume_output``, a host's unread output reached its ``buffer_limit``
            (raised once the other hosts are done); read that host's output and ``join``
            again.
        """
        check_timeout(timeout, "join timeout")
        output = self._last_output if output is None else output
        check_items(output, HostOutput, "join's output", "the list run_command returned")
        if not output:
            return
        deadline = deadline_after(timeout)
        waiting = [gevent.spawn(_wait_one, host_out, deadline, consume_output)
                   for host_out in output]
        gevent.joinall(waiting, raise_error=False)
        full = [greenlet.value for greenlet in waiting
                if isinstance(greenlet.value, BufferFullError)]
        if full:
            raise full[0]
        unfinished = [host_out for host_out, greenlet in zip(output, waiting)
                      if not greenlet.value]
        if unfinished:
            finished = [host_out for host_out in output if host_out not in unfinished]
            raise Timeout(f"join timed out after {timeout}s with {len(unfinished)} of "
                          f"{len(output)} commands still running", timeout=timeout,
                          finished_output=finished, unfinished_output=unfinished)

    def iter_completed(self, output: list[HostOutput] | None = None,
                       timeout: float | None = None, consume_output: bool = False,
                       ) -> Iterator[HostOutput]:
        """Yield each output as soon as its command has ended (or its host failed), in
        the order they end; ``output`` itself keeps host order.

        Every host's output is read meanwhile, as :meth:`join` does, so no command waits
        on a full channel; an output yielded has its ``exit_code`` (or ``exception``) set
        and its lines kept for reading, unless ``consume_output`` dropped them.
        Stopping the iteration early stops the reading; the commands run on.

        .. code-block:: python

            for host_out in client.iter_completed(client.run_command('deploy')):
                print(host_out.host, host_out.exit_code)

        :param output: outputs to wait on; defaults to the last ``run_command``'s.
        :param timeout: seconds for all of them together; ``None`` for no limit.
        :raises Timeout: ``timeout`` passed; ``finished_output`` lists the outputs
            yielded, ``unfinished_output`` the others.
        :raises BufferFullError: as for :meth:`join`, at once.
        """
        check_timeout(timeout, "iter_completed timeout")
        output = self._last_output if output is None else output
        check_items(output, HostOutput, "iter_completed's output",
                     "the list run_command returned")
        if not output:
            return
        deadline = deadline_after(timeout)
        ended: Queue[tuple[HostOutput, Greenlet]] = Queue()
        waiting = []
        for host_out in output:
            greenlet = gevent.spawn(_wait_one, host_out, deadline, consume_output)
            greenlet.link(partial(_put_ended, ended, host_out))
            waiting.append(greenlet)
        finished: list[HostOutput] = []
        try:
            while len(finished) < len(output):
                host_out, greenlet = ended.get()
                if isinstance(greenlet.value, BufferFullError):
                    raise greenlet.value
                if not greenlet.value:
                    unfinished = [each for each in output if each not in finished]
                    raise Timeout(f"iter_completed timed out after {timeout}s with "
                                  f"{len(unfinished)} of {len(output)} commands still "
                                  f"running", timeout=timeout, finished_output=finished,
                                  unfinished_output=unfinished)
                finished.append(host_out)
                yield host_out
        finally:
            gevent.killall(waiting, block=False)


def _put_ended(ended: Queue[tuple[HostOutput, Greenlet]], host_out: HostOutput,
               greenlet: Greenlet) -> None:
    ended.put((host_out, greenlet))


def _wait_one(host_out: HostOutput, deadline: float | None,
              consume: bool) -> bool | BufferFullError:
    """Read one host's output until its command ends; False if ``deadline`` passed, the
    error if the host's unread output filled its buffer first."""
    try:
        host_out.wait_done(deadline, consume)
    except Timeout:
        return False
    except BufferFullError as exc:
        return exc
    except SSHError as exc:
        logger.error("Host %s failed while waiting: %s", host_out.alias or host_out.host, exc)
        host_out.exception = exc
    if consume:
        host_out.consume(final=True)
    return True


def check_items(items: Any, kind: type, name: str, expected: str) -> None:
    """Refuse ``items`` unless it is a list (or tuple) of ``kind``, naming ``expected``."""
    if items is None:
        return
    if not isinstance(items, (list, tuple)) or not all(
            isinstance(item, kind) for item in items):
        raise TypeError(f"{name} must be {expected} (a list of {kind.__name__}), not "
                        f"{items!r:.200}")
