"""Running a command or a copy on every host, as one :class:`Run`.

Built only on the library's public pieces: ``run_command(stop_on_errors=False)``; then
in inline mode one greenlet per host that iterates its ``stdout`` (lines shown as they
arrive, stderr once stdout has ended), and in the other modes ``iter_completed``, which
hands over each host's output as its command ends. Copies are the parallel client's
``copy_file``/``copy_remote_file``/``scp_send``/``scp_recv`` with their ``progress``
callback, waited on in the order they end.

A run records one :class:`~pssh.cli._results.Outcome` per host position as it ends, so
whatever stops it (the ``-t`` deadline, Ctrl-C) leaves the finished hosts' results in
place; :meth:`Run.finish` fills in the others as timed out or interrupted, with what
they had printed so far.
"""

from __future__ import annotations

import os
import posixpath
import time
from typing import Any

import gevent

from ..exceptions import SSHError, Timeout
from ..output import HostOutput
from ._display import Progress, Screen
from ._hosts import Target
from ._report import Report
from ._results import Outcome, status_of_error
from ._usage import Plan

__all__ = ["Run", "labels"]


def labels(targets: list[Target]) -> list[str]:
    """How each host is named in output: its name, or its whole entry where the same
    name appears with another user or port."""
    names = [target.host for target in targets]
    return [target.host if names.count(target.host) == 1 else target.entry()
            for target in targets]


def _buffered(host_out: HostOutput, stderr: bool) -> list[str]:
    """The lines a host has sent and nobody has read yet, without waiting for more."""
    if host_out.buffers is None:
        return []
    stream = host_out.buffers.stderr if stderr else host_out.buffers.stdout
    try:
        data = stream.rw_buffer.read()
    except SSHError:
        return []
    return data.decode(host_out.encoding, "replace").splitlines()


class Run:
    """One invocation's work on every host, and its results so far."""

    def __init__(self, plan: Plan, client: Any, screen: Screen, report: Report) -> None:
        self.plan = plan
        self.client = client
        self.screen = screen
        self.report = report
        self.labels = labels(plan.targets)
        self.progress = Progress(len(plan.targets), copies=plan.action != "run")
        self.started = time.monotonic()
        self.deadline = None if plan.timeout is None else self.started + plan.timeout
        self.outcomes: dict[int, Outcome] = {}
        self.partial: dict[int, tuple[list[str], list[str]]] = {}
        self.output: list[HostOutput] = []
        self.copies: list[Any] = []

    def __repr__(self) -> str:
        return (f"<Run {self.plan.action} on {len(self.labels)} hosts, "
                f"{len(self.outcomes)} ended>")

    def _left(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def record(self, position: int, outcome: Outcome) -> None:
        """``outcome`` for the host at ``position``; shown by the report at once."""
        if position in self.outcomes:
            return
        outcome.elapsed = time.monotonic() - self.started
        self.outcomes[position] = outcome
        self.progress.host_done(outcome.status == "ok")
        self.report.finished(outcome)
        self.screen.refresh()

    def execute(self) -> None:
        """Do the work; returns when every host has ended or the deadline passed."""
        if self.plan.action == "run":
            self._run_command()
        else:
            self._copy()

    # -- commands -----------------------------------------------------------------------

    def _run_command(self) -> None:
        output = self.client.run_command(self.plan.command, sudo=self.plan.sudo,
                                         stop_on_errors=False)
        self.output = output
        if self.report.streams:
            followers = [gevent.spawn(self._follow, position, host_out)
                         for position, host_out in enumerate(output)]
            try:
                gevent.joinall(followers)
            finally:
                gevent.killall(followers)
            return
        positions = {id(host_out): position for position, host_out in enumerate(output)}
        try:
            for host_out in self.client.iter_completed(output, timeout=self._left()):
                self._ended(positions[id(host_out)], host_out)
        except Timeout:
            pass  # the hosts left are timed out, see finish()

    def _follow(self, position: int, host_out: HostOutput) -> None:
        """Show one host's lines as they arrive, then record how it ended."""
        label, report = self.labels[position], self.report
        kept: tuple[list[str], list[str]] = ([], [])
        self.partial[position] = kept
        host_out.read_timeout = self._left()
        try:
            for stderr, lines in ((False, host_out.stdout), (True, host_out.stderr)):
                for line in lines:
                    report.line(label, line, stderr)
                    if report.keeps_lines:
                        kept[stderr].append(line)
        except Timeout:
            return  # finish() records it, with the lines kept
        except SSHError:
            pass  # stored on host_out.exception
        self.record(position, self._outcome(label, host_out, *kept))

    def _ended(self, position: int, host_out: HostOutput) -> None:
        keep = self.report.keeps_lines
        stdout = list(host_out.stdout) if keep else []
        stderr = list(host_out.stderr) if keep else []
        self.record(position, self._outcome(self.labels[position], host_out, stdout, stderr))

    @staticmethod
    def _outcome(label: str, host_out: HostOutput, stdout: list[str],
                 stderr: list[str]) -> Outcome:
        error = host_out.exception
        exit_code = None if error is not None else host_out.exit_code
        if error is not None:
            status = status_of_error(error)
        else:
            status = "ok" if exit_code == 0 else "failed"
        return Outcome(label, status, exit_code, stdout, stderr, error)

    # -- copies -------------------------------------------------------------------------

    def _copy(self) -> None:
        plan, client = self.plan, self.client
        kwargs = {"recurse": plan.recursive, "progress": self.progress.copied}
        if plan.action == "put":
            method = client.scp_send if plan.scp else client.copy_file
            self.copies = method(plan.source, plan.destination, **kwargs)
        else:
            name = posixpath.basename(plan.source.rstrip("/")) or "root"
            local = os.path.join(plan.destination, name)
            method = client.scp_recv if plan.scp else client.copy_remote_file
            self.copies = method(plan.source, local, **kwargs)
        positions = {id(result): position for position, result in enumerate(self.copies)}
        for result in gevent.iwait(self.copies, timeout=self._left()):
            self._copied(positions[id(result)], result)

    def _copied(self, position: int, result: Any) -> None:
        label, host = self.labels[position], self.plan.targets[position].host
        done = sum(bytes_done for (name, _), (bytes_done, _) in self.progress.files.items()
                   if name == host)
        error = None if result.successful() else result.exception
        status = "ok" if error is None else status_of_error(error)
        self.record(position, Outcome(label, status, error=error, transferred=done))

    # -- the end ------------------------------------------------------------------------

    def finish(self, interrupted: bool) -> list[Outcome]:
        """Every host's outcome in host order: those not ended are timed out (or
        interrupted), with the lines they had sent."""
        status = "interrupted" if interrupted else "timeout"
        for position, label in enumerate(self.labels):
            if position in self.outcomes:
                continue
            stdout, stderr = self.partial.get(position, ([], []))
            if position < len(self.output) and self.report.keeps_lines:
                stdout = stdout + _buffered(self.output[position], False)
                stderr = stderr + _buffered(self.output[position], True)
            self.record(position, Outcome(label, status, stdout=stdout, stderr=stderr))
        for result in self.copies:
            result.kill(block=False)
        return [self.outcomes[position] for position in range(len(self.labels))]
