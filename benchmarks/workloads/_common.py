"""What every workload script shares: read the arguments, time the work, print the result.

Standard library only: the same file is imported under each peer's own interpreter.

A script reads one JSON object (``argv[1]``, or standard input when there is no
argument), imports its client library, creates a :class:`Bench` (that is where the clock
and the CPU counter start, so interpreter start-up and imports are not counted as
work), runs the command on every host, calls :meth:`Bench.check` once per host and
finally :meth:`Bench.report`, which prints exactly one JSON line on standard output.

A host counts as ok when it raised nothing, its command exited with 0 and the client
read exactly the number of stdout lines the workload expects.

Copy workloads carry ``args["copy"]``: ``protocol`` (``sftp`` or ``scp``), ``direction``
(``up`` or ``down``), ``source`` (the one file every host copies) and ``destination``,
to which each host's copy appends ``_<host>`` (see :func:`destination`). The sshd runs on
this machine, so a remote destination is a local path too, and :meth:`Bench.check_copy`
counts a host as ok when its destination file has the source's size.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

MAX_ERRORS = 3  # distinct error messages kept per run; the count says how many failed


def read_args() -> dict[str, Any]:
    text = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    args: dict[str, Any] = json.loads(text)
    return args


def destination(args: dict[str, Any], host: str) -> str:
    """Where one host's copy lands: the workload's destination, suffixed ``_<host>``."""
    return f"{args['copy']['destination']}_{host}"


def cpu_seconds() -> float:
    """user + sys of this process and of every child it has waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Bench:
    """One measured run: per-host outcomes between construction and :meth:`report`."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.ok = 0
        self.failed = 0
        self.errors: list[str] = []
        self.phases: dict[str, float] = {}
        self.start_cpu = cpu_seconds()
        self.start = time.perf_counter()

    def phase(self, name: str) -> None:
        """Record that the phase ``name`` (``started``, ``finished``, ``read``) has ended
        now; the pool workload reports these times."""
        self.phases[name] = time.perf_counter() - self.start

    def check(self, host: str, exit_code: Any, lines: int,
              error: BaseException | str | None = None) -> None:
        """Record one host: ok, or failed with the first reason that applies."""
        expected = self.args["expect_lines"]
        if error is not None:
            reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        elif exit_code != 0:
            reason = f"exit code {exit_code!r}"
        elif lines != expected:
            reason = f"read {lines} stdout lines, expected {expected}"
        else:
            self.ok += 1
            return
        self.failed += 1
        message = f"{host}: {reason}"[:300]
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(message)

    def check_copy(self, host: str, error: BaseException | str | None = None) -> None:
        """Record one host's copy: ok when nothing failed and the sizes match."""
        if error is None:
            path = destination(self.args, host)
            size = os.path.getsize(path) if os.path.exists(path) else None
            if size != self.args["copy"]["size"]:
                error = f"{path} has {size} bytes, expected {self.args['copy']['size']}"
        self.check(host, 0, self.args["expect_lines"], error)

    def report(self, library: str, version: str, module_path: str = "",
               **extra: Any) -> None:
        wall = time.perf_counter() - self.start
        result = {"wall": wall, "work_cpu": cpu_seconds() - self.start_cpu,
                  "start_cpu": self.start_cpu, "ok": self.ok, "failed": self.failed,
                  "errors": self.errors, "library": library, "version": version,
                  "module_path": module_path, "phases": self.phases, **extra}
        print(json.dumps(result), flush=True)
