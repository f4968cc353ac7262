"""The output modes: inline (``host: line``), gathered (``-b``), JSON lines (``--json``),
and files per host (``-o DIR``, ``-e DIR``, alongside any of them).

A report hears of each output line while it arrives (inline mode only), of each host's
:class:`~pssh.cli._results.Outcome` as that host ends, and of the end of the run.
"""

from __future__ import annotations

import json
import os

from ._display import Screen
from ._hosts import fold
from ._results import Outcome, size

__all__ = ["Report", "make_report"]


class Report:
    """Inline mode: every line as it comes, ``host: line``; stderr lines on stderr."""

    streams = True  # wants lines as they arrive

    def __init__(self, screen: Screen, started: float, out_dir: str | None = None,
                 err_dir: str | None = None) -> None:
        self.screen = screen
        self.started = started
        self.out_dir = out_dir
        self.err_dir = err_dir
        # whether outcomes must carry the hosts' lines (for files, gathering, JSON)
        self.keeps_lines = bool(out_dir or err_dir) or not self.streams

    def __repr__(self) -> str:
        return f"<{type(self).__name__} out_dir={self.out_dir!r} err_dir={self.err_dir!r}>"

    def line(self, label: str, line: str, stderr: bool) -> None:
        if not (self.err_dir if stderr else self.out_dir):
            self.screen.host_line(label, line, stderr)

    def finished(self, outcome: Outcome) -> None:
        """``outcome``'s host has ended."""
        self._write_files(outcome)
        self.show(outcome)

    def show(self, outcome: Outcome) -> None:
        if outcome.transferred is not None and outcome.error is None:
            self.screen.host_line(outcome.label, f"ok, {size(outcome.transferred)}")
        if outcome.error is not None:
            self.screen.host_line(outcome.label, f"[{type(outcome.error).__name__}] "
                                  f"{str(outcome.error).splitlines()[0]}", stderr=True)

    def end(self, outcomes: list[Outcome]) -> None:
        """The run is over (or interrupted): ``outcomes`` in host order."""

    def _write_files(self, outcome: Outcome) -> None:
        name = outcome.label.replace("/", "_")
        for directory, lines in ((self.out_dir, outcome.stdout),
                                 (self.err_dir, outcome.stderr)):
            if directory:
                with open(os.path.join(directory, name), "w", encoding="utf-8") as file:
                    file.writelines(line + "\n" for line in lines)


class GatherReport(Report):
    """``-b``: hosts with the same stdout shown once, under their folded host set;
    stderr lines inline on stderr as each host ends."""

    streams = False

    def line(self, label: str, line: str, stderr: bool) -> None:
        raise AssertionError("a gathered report is not streamed")

    def show(self, outcome: Outcome) -> None:
        if not self.err_dir:
            for line in outcome.stderr:
                self.screen.host_line(outcome.label, line, stderr=True)
        super().show(outcome)

    def end(self, outcomes: list[Outcome]) -> None:
        if self.out_dir:
            return
        groups: dict[tuple[str, ...], list[str]] = {}
        for outcome in outcomes:
            if outcome.stdout:
                groups.setdefault(tuple(outcome.stdout), []).append(outcome.label)
        for lines, labels in groups.items():
            rule = "-" * 15
            self.screen.line(rule, style="dim")
            self.screen.line(f"{fold(labels)} ({len(labels)})", style="bold cyan")
            self.screen.line(rule, style="dim")
            for line in lines:
                self.screen.line(line)


class JsonReport(Report):
    """``--json``: one object per host per line, as each host ends."""

    streams = False

    def show(self, outcome: Outcome) -> None:
        self.screen.line(json.dumps(outcome.json(self.started), ensure_ascii=False))
        self.screen.flush()


def make_report(screen: Screen, started: float, gather: bool, as_json: bool,
                out_dir: str | None, err_dir: str | None) -> Report:
    """The report of the chosen mode, after making the ``-o``/``-e`` directories."""
    for directory in (out_dir, err_dir):
        if directory:
            os.makedirs(directory, exist_ok=True)
    kind = GatherReport if gather else JsonReport if as_json else Report
    return kind(screen, started, out_dir, err_dir)
