"""What happened on each host, the summary of a run, and the exit status.

An :class:`Outcome` is the command line's record of one host: how it ended (its
``status``), what it printed, its error and when it finished. The status decides the exit
status of the whole run, the worst one winning, in this order:

===  ===========================================================================
130  interrupted (Ctrl-C or SIGTERM)
3    some host timed out (``-t``)
4    some host could not be reached or authenticated, or its session failed
5    some command exited non-zero, or some copy failed
0    every host ok
===  ===========================================================================

(2 is bad usage, found before any connection; 141 a closed stdout, as after SIGPIPE; 1
an unexpected internal error.) 3, 4 and 5
are those of the classic ``pssh`` tool for the same situations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..exceptions import (
    AuthenticationError,
    ConnectionError,
    HostKeyError,
    SCPError,
    SFTPError,
    Timeout,
)
from ._hosts import fold

__all__ = ["Outcome", "EXIT_OK", "EXIT_USAGE", "EXIT_TIMEOUT", "EXIT_UNREACHABLE",
           "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_INTERNAL", "status_of_error",
           "exit_status", "summary_lines", "size"]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_UNREACHABLE = 4
EXIT_FAILED = 5
EXIT_INTERRUPTED = 130

# status -> exit status, the worst (first) winning
_EXIT_OF = {"interrupted": EXIT_INTERRUPTED, "timeout": EXIT_TIMEOUT,
            "unreachable": EXIT_UNREACHABLE, "error": EXIT_UNREACHABLE,
            "failed": EXIT_FAILED, "ok": EXIT_OK}


@dataclass
class Outcome:
    """One host's result.

    ``status`` is ``ok``; ``failed`` (the command exited non-zero, or the copy failed);
    ``unreachable`` (could not connect, authenticate, or its host key was refused);
    ``error`` (the session failed after connecting); ``timeout``; or ``interrupted``.
    """

    label: str
    status: str
    exit_code: int | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    error: BaseException | None = None
    elapsed: float = 0.0
    transferred: int | None = None

    def json(self, started: float) -> dict[str, Any]:
        """The stable ``--json`` object (see doc/cli.rst)."""
        error = None if self.error is None else {
            "type": type(self.error).__name__, "message": str(self.error),
            "reason": getattr(self.error, "reason", None)}
        record: dict[str, Any] = {
            "host": self.label, "status": self.status, "exit_code": self.exit_code,
            "stdout": "".join(line + "\n" for line in self.stdout),
            "stderr": "".join(line + "\n" for line in self.stderr),
            "error": error, "start": round(started, 6),
            "end": round(started + self.elapsed, 6), "elapsed": round(self.elapsed, 6)}
        if self.transferred is not None:
            record["bytes"] = self.transferred
        return record


def status_of_error(error: BaseException) -> str:
    """The status of a host whose work raised ``error``."""
    if isinstance(error, Timeout):
        return "timeout"
    if isinstance(error, (ConnectionError, AuthenticationError, HostKeyError)):
        return "unreachable"
    if isinstance(error, (SFTPError, SCPError, OSError)):
        return "failed"
    return "error"


def exit_status(outcomes: list[Outcome], interrupted: bool = False) -> int:
    """The exit status of a run: the worst of its outcomes (see the module's table)."""
    if interrupted:
        return EXIT_INTERRUPTED
    codes = {_EXIT_OF[outcome.status] for outcome in outcomes}
    for code in (EXIT_INTERRUPTED, EXIT_TIMEOUT, EXIT_UNREACHABLE, EXIT_FAILED):
        if code in codes:
            return code
    return EXIT_OK


def _why(outcome: Outcome) -> str:
    if outcome.status == "failed" and outcome.error is None:
        return f"exit {outcome.exit_code}"
    if outcome.status in ("timeout", "interrupted") and outcome.error is None:
        return "timed out" if outcome.status == "timeout" else "interrupted"
    return type(outcome.error).__name__


_COUNTED = {"failed": "failed", "unreachable": "unreachable", "error": "session failed",
            "timeout": "timed out", "interrupted": "interrupted"}


def summary_lines(outcomes: list[Outcome], total: int, elapsed: float,
                  interrupted: bool = False, transferred: int | None = None) -> list[str]:
    """The summary: counts on the first line, then one line per kind of failure with
    its folded host set (and one host's message for errors)."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    parts = [f"{counts.get('ok', 0)} ok"]
    parts += [f"{counts[status]} {name}" for status, name in _COUNTED.items()
              if counts.get(status)]
    if transferred is not None:
        parts.append(f"{size(transferred)} copied")
    not_run = total - len(outcomes)
    if not_run:
        parts.append(f"{not_run} not started")
    head = "interrupted: " if interrupted else ""
    hosts = "host" if total == 1 else "hosts"
    lines = [f"{head}{total} {hosts} in {elapsed:.2f} s: {', '.join(parts)}"]
    groups: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.status != "ok":
            groups.setdefault(_why(outcome), []).append(outcome)
    for why, members in sorted(groups.items()):
        hosts = fold([member.label for member in members])
        example = members[0].error
        detail = f" ({str(example).splitlines()[0]})" if example is not None else ""
        lines.append(f"  {why}: {hosts}{detail}")
    return lines


def size(count: float) -> str:
    """A byte count for people: ``12.3 MB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"
