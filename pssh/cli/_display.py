"""Where the command line's output goes: plain text into pipes, colour and a live
progress line on a terminal.

Pipes get exactly the lines (``host: line``, gathered blocks, JSON) and nothing else on
stdout, so ``pssh ... | grep`` and CI logs stay clean; the summary goes to stderr. On a
terminal, rich draws the progress line at the bottom and prints every output line above
it through the same console, so the two never tear each other apart. Redrawing the line
is the one thing on a clock (its elapsed time moves): a greenlet redraws it a few times
a second, and at every host's end.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

import gevent
from gevent.event import Event
from rich.console import Console
from rich.live import Live
from rich.text import Text

from ._results import size

__all__ = ["Screen", "Progress"]

_PALETTE = ("cyan", "green", "yellow", "magenta", "blue", "bright_cyan", "bright_green",
            "bright_yellow", "bright_magenta", "bright_blue")
_REDRAW_SECONDS = 0.125


class Progress:
    """The counts the progress line shows: hosts done / failed / running, elapsed time,
    and for copies the bytes moved."""

    def __init__(self, total: int, copies: bool = False) -> None:
        self.total = total
        self.ok = 0
        self.failed = 0
        self.started = time.monotonic()
        self.copies = copies
        self.files: dict[tuple[str, str], tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"<Progress {self.ok} ok, {self.failed} failed of {self.total}>"

    def host_done(self, ok: bool) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed += 1

    def copied(self, host: str, path: str, done: int, total: int) -> None:
        """The copies' ``progress`` callback: ``done`` of ``total`` bytes of one file."""
        self.files[(host, path)] = (done, total)

    def transferred(self) -> tuple[int, int]:
        """Bytes done and bytes known of, over every host's files."""
        return (sum(done for done, _ in self.files.values()),
                sum(total for _, total in self.files.values()))

    def __rich__(self) -> Text:
        running = self.total - self.ok - self.failed
        text = Text()
        text.append(f"{self.ok + self.failed}/{self.total} done", style="bold")
        text.append(" · ")
        text.append(f"{self.failed} failed", style="bold red" if self.failed else "dim")
        text.append(f" · {running} running · {time.monotonic() - self.started:.1f} s")
        if self.copies:
            done, total = self.transferred()
            text.append(f" · {size(done)} / {size(total)}")
        return text


class Screen:
    """The terminal or the pipes the command line writes to."""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.tty = self.stdout.isatty()
        self.console = Console(file=self.stdout, highlight=False, soft_wrap=True) \
            if self.tty else None
        # stderr lines join the terminal's console only when stderr is that terminal too
        self.err_tty = self.tty and self.stderr.isatty()
        self.styles: dict[str, str] = {}
        # set when stdout's reader has gone (``pssh ... | head``): the run stops
        self.closed = Event()
        self._live: Live | None = None
        self._redraw: gevent.Greenlet | None = None

    def __repr__(self) -> str:
        return f"<Screen tty={self.tty} progress={self._live is not None}>"

    def set_labels(self, labels: list[str]) -> None:
        """Give each host its colour, by position."""
        self.styles = {label: _PALETTE[index % len(_PALETTE)]
                       for index, label in enumerate(labels)}

    def start_progress(self, progress: Progress) -> None:
        """Show the live progress line (on a terminal only)."""
        if self.console is None:
            return
        self._live = Live(progress, console=self.console, auto_refresh=False,
                          transient=True, redirect_stdout=False, redirect_stderr=False)
        self._live.start(refresh=True)
        self._redraw = gevent.spawn(self._redraw_loop)

    def _redraw_loop(self) -> None:
        while self._live is not None:
            self._live.refresh()
            gevent.sleep(_REDRAW_SECONDS)

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def stop_progress(self) -> None:
        live, self._live = self._live, None
        if self._redraw is not None:
            self._redraw.kill(block=False)
            self._redraw = None
        if live is not None:
            live.stop()

    def host_line(self, label: str, line: str, stderr: bool = False) -> None:
        """``label: line``, the label in the host's colour on a terminal."""
        if stderr and not self.err_tty or not stderr and self.console is None:
            self._write(self.stderr if stderr else self.stdout, f"{label}: {line}\n")
            return
        assert self.console is not None
        text = Text()
        text.append(f"{label}: ", style=self.styles.get(label, "bold"))
        text.append(line, style="red" if stderr else "")
        self.console.print(text)

    def line(self, line: str, stderr: bool = False, style: str = "") -> None:
        """A line of the command line's own (headers, JSON, the summary)."""
        if stderr and not self.err_tty or not stderr and self.console is None:
            self._write(self.stderr if stderr else self.stdout, line + "\n")
            return
        assert self.console is not None
        self.console.print(Text(line, style=style))

    def _write(self, stream: TextIO, text: str) -> None:
        if self.closed.is_set():
            return
        try:
            stream.write(text)
        except BrokenPipeError:
            self._reader_gone(stream)

    def _reader_gone(self, stream: TextIO) -> None:
        """Nobody reads ``stream`` any more: stop the run, and send what is still
        buffered for it nowhere (so exiting does not complain about it either)."""
        self.closed.set()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(devnull)

    def flush(self) -> None:
        for stream in (self.stdout, self.stderr):
            try:
                stream.flush()
            except BrokenPipeError:
                self._reader_gone(stream)
            except (OSError, ValueError):
                pass
