"""``pssh``'s entry point: parse, build the client, run, report, exit.

The work runs in its own greenlet while the main one waits for it or for a signal.
SIGINT (Ctrl-C) or SIGTERM stops the work where it is: what finished has been shown
already, the rest is marked interrupted, every connection is closed, and the summary
is printed. A second Ctrl-C while that happens quits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import gevent
from gevent.event import Event

from ._client import make_client
from ._display import Screen
from ._hosts import UsageError
from ._report import make_report
from ._results import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Outcome,
    exit_status,
    summary_lines,
)
from ._run import Run
from ._usage import parse

__all__ = ["main"]

# The exit status of a program that SIGPIPE ended: stdout's reader went away.
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE

# How long closing every connection may take after an interrupt or a timeout.
_CLOSE_SECONDS = 5.0


def _quit_now(*_: object) -> None:
    os._exit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    screen = Screen()
    try:
        plan = parse(argv)
        report = make_report(screen, time.time(), plan.gather, plan.json, plan.out_dir,
                             plan.err_dir)
        client = make_client(plan)
    except UsageError as exc:
        sys.stderr.write(f"pssh: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:
        sys.stderr.write(f"pssh: {exc}\n")
        return EXIT_USAGE
    run = Run(plan, client, screen, report)
    screen.set_labels(run.labels)
    interrupted, failure, outcomes = _execute(run, screen)
    if screen.closed.is_set():
        return EXIT_PIPE_CLOSED  # as a program killed by SIGPIPE, without a word
    report.end(outcomes)
    if failure is not None:
        sys.stderr.write(f"pssh: internal error: {type(failure).__name__}: {failure}\n")
        return EXIT_INTERNAL
    if not plan.quiet:
        screen.flush()
        copied = run.progress.transferred()[0] if plan.action != "run" else None
        for line in summary_lines(outcomes, len(outcomes), time.monotonic() - run.started,
                                  interrupted, copied):
            screen.line(line, stderr=True)
    screen.flush()
    return exit_status(outcomes, interrupted)


def _execute(run: Run, screen: Screen) -> tuple[bool, BaseException | None, list[Outcome]]:
    """Run the work until it ends or a signal stops it, record how the hosts left
    ended, then close every connection. Whether it was interrupted, the error if the
    work itself failed, and every host's outcome."""
    stop = Event()
    handlers = [gevent.signal_handler(signum, stop.set)
                for signum in (signal.SIGINT, signal.SIGTERM)]
    job = gevent.spawn(run.execute)
    screen.start_progress(run.progress)
    try:
        gevent.wait([job, stop, screen.closed], count=1)
        interrupted = not job.ready()
        for handler in handlers:
            handler.cancel()
        if interrupted:
            signal.signal(signal.SIGINT, _quit_now)
            job.kill(block=True, timeout=_CLOSE_SECONDS)
        outcomes = run.finish(interrupted)
    finally:
        screen.stop_progress()
        _close(run)
    return interrupted, job.exception, outcomes


def _close(run: Run) -> None:
    """Stop every host's work and close every connection, within a few seconds."""
    client = run.client
    with gevent.Timeout(_CLOSE_SECONDS, False):
        pool = getattr(client, "pool", None)  # the sharded client's are in its workers
        if pool is not None:
            pool.kill(block=True)
        client.disconnect()
