"""Benchmark pssh against its peers on one local sshd, and print a markdown table.

Theory of operation
-------------------
One :class:`~pssh.testing.LocalSSHD` serves as many loopback hosts as the largest case
needs, for every run. Each measurement is a fresh child process running one script from
``workloads/`` under that client's own interpreter: ours from this checkout, each peer
from its own venv under ``benchmarks/.venvs/`` (the published parallel-ssh also installs
a package called ``pssh``, so it must never share an interpreter with ours). The child
gets its arguments as JSON and prints one JSON line.

What is measured, per run:

- ``wall``: the work only, timed inside the child after its imports;
- ``cpu``: user + sys of the whole child and everything it waited for (``os.wait4``);
  ``start_cpu`` is the part spent before the work began (interpreter start-up and
  imports), ``work_cpu`` the rest;
- ``rss``: the child's peak RSS from ``os.wait4`` (for OpenSSH, the script's peak plus
  the sum of every ssh process's peak);
- ``sshd_cpu``: utime + stime + cutime + cstime of the sshd master processes from
  ``/proc/<pid>/stat``, after minus before. Every connection is served by processes
  forked under a master, each of which waits for its own children, so once the masters
  have reaped them (we wait for that) their CPU has been added to the masters' cutime
  and cstime.

The clients take turns within each case (A B C A B C ...) so that slow drifts in the
machine's load hit every client alike, and the table shows medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from pssh.testing import LocalSSHD  # noqa: E402  (needs the checkout on sys.path)

VENVS = os.path.join(HERE, ".venvs")
WORKLOADS = os.path.join(HERE, "workloads")
CORES = os.cpu_count() or 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CLIENT_TIMEOUT = 60  # connect/auth timeout handed to every client library, seconds
REAP_TIMEOUT = 30.0  # how long to wait for sshd to reap its connections after a run
BIGOUT_BYTES = 10_000_000
BIGOUT_WIDTH = 99
STREAM_BYTES = 1_000_000_000
COPY_BYTES = 100_000_000
COPY_DIR = "/dev/shm/pssh-bench" if os.path.isdir("/dev/shm") else os.path.join(
    tempfile.gettempdir(), "pssh-bench")  # in memory where possible: disks add noise
COPY_SOURCE = os.path.join(COPY_DIR, "source.bin")


# -- workloads --------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A command run on every host, and how many stdout lines each host must send."""

    name: str
    description: str
    command: Callable[[LocalSSHD], str]
    expect_lines: int
    sizes: tuple[int, ...]  # host counts in a default run
    full_sizes: tuple[int, ...]  # host counts with --full
    quick_sizes: tuple[int, ...] = ()  # host counts with --quick; empty: left out
    prepare: Callable[[LocalSSHD], None] = lambda server: None
    copy: tuple[str, str] | None = None  # copy workloads: (protocol, direction)
    run_timeout: float | None = None  # seconds before a run is killed, if below --run-timeout
    phases: bool = False  # pool size = host count; the child times each phase


def _copying_path(server: LocalSSHD) -> str:
    return os.path.join(server.home, "COPYING")


def _place_copying(server: LocalSSHD) -> None:
    shutil.copyfile(os.path.join(REPO, "COPYING"), _copying_path(server))


def _line_count(path: str) -> int:
    with open(path, "rb") as text:
        data = text.read()
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def _lines_command(size: int) -> str:
    """A command printing ``size`` bytes of ``BIGOUT_WIDTH``-character lines."""
    return f"head -c {size} /dev/zero | tr '\\0' x | fold -w {BIGOUT_WIDTH}"


WORKLOAD_LIST = [
    Workload("echo", "`echo hello`, one line per host",
             lambda server: "echo hello", 1,
             (1, 10, 50, 100, 200), (1, 10, 50, 100, 200, 500), (10, 50)),
    Workload("cat26k", "`cat` of a 26 KB text file (the repository's COPYING), by line",
             lambda server: f"cat {_copying_path(server)}",
             _line_count(os.path.join(REPO, "COPYING")),
             (1, 10, 50, 100, 200), (1, 10, 50, 100, 200, 500), (10, 50), _place_copying),
    Workload("auth", "connect, authenticate and run `true`",
             lambda server: "true", 0, (100,), (100, 500), (50,)),
    Workload("bigout", "10 MB of 99-character lines per host, read host by host",
             lambda server: _lines_command(BIGOUT_BYTES),
             -(-BIGOUT_BYTES // BIGOUT_WIDTH), (2, 4, 10), (2, 4, 10), (2,)),
    Workload("stream1g", "1 GB of 99-character lines from one host, read as it arrives",
             lambda server: _lines_command(STREAM_BYTES),
             -(-STREAM_BYTES // BIGOUT_WIDTH), (1,), (1,), run_timeout=240),
]


def _place_copy_source(server: LocalSSHD) -> None:
    os.makedirs(COPY_DIR, exist_ok=True)
    if not os.path.exists(COPY_SOURCE) or os.path.getsize(COPY_SOURCE) != COPY_BYTES:
        with open(COPY_SOURCE, "wb") as source:
            for _ in range(COPY_BYTES // 1_000_000):
                source.write(os.urandom(1_000_000))


WORKLOAD_LIST += [
    Workload(f"{protocol}-{direction}",
             f"{protocol.upper()} {'upload' if direction == 'up' else 'download'} of a "
             f"{COPY_BYTES // 1_000_000} MB file {'to' if direction == 'up' else 'from'} "
             f"every host", lambda server: "", COPY_BYTES, (1, 10), (1, 10), (1,),
             _place_copy_source, (protocol, direction), run_timeout=90)
    for protocol in ("sftp", "scp") for direction in ("up", "down")]
WORKLOAD_LIST.append(Workload(
    "pool", "the libssh2 benchmark post's experiment: `cat` of the 26 KB file, pool size = "
    "host count, timing commands started, commands finished and output read",
    lambda server: f"cat {_copying_path(server)}",
    _line_count(os.path.join(REPO, "COPYING")),
    (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
    (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100), (), _place_copying, phases=True))
WORKLOADS_BY_NAME = {workload.name: workload for workload in WORKLOAD_LIST}


# -- clients ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """How to run one client's workload script: which interpreter, which environment."""

    name: str
    script: str
    pip_spec: str | None = None  # peers: what to install into benchmarks/.venvs/<name>
    python: str | None = None  # set for the clients that do not get a venv of their own
    pythonpath: str | None = None
    module_under: str = ""  # where the child's library must have come from
    protocols: tuple[str, ...] = ("sftp", "scp")  # the copy protocols it has

    def can_run(self, workload: Workload) -> bool:
        return workload.copy is None or workload.copy[0] in self.protocols

    def interpreter(self) -> str:
        if self.pip_spec is not None:
            return _venv_python(self.name)
        return self.python or sys.executable


def _venv_python(name: str) -> str:
    return os.path.join(VENVS, name, "bin", "python")


def _our_python() -> str:
    """The project venv's interpreter when there is one (it has ssh2-python and gevent)."""
    candidate = os.path.join(REPO, ".venv", "bin", "python")
    return candidate if os.path.exists(candidate) else sys.executable


CLIENT_LIST = [
    Client("pssh", "pssh_bench.py", python=_our_python(), pythonpath=REPO,
           module_under=os.path.join(REPO, "pssh")),
    Client("pssh-libssh", "pssh_libssh_bench.py", python=_our_python(), pythonpath=REPO,
           module_under=os.path.join(REPO, "pssh"), protocols=()),  # no copies
    Client("parallel-ssh", "parallel_ssh_bench.py", pip_spec="parallel-ssh",
           module_under=os.path.join(VENVS, "parallel-ssh")),
    Client("asyncssh", "asyncssh_bench.py", pip_spec="asyncssh",
           module_under=os.path.join(VENVS, "asyncssh")),
    Client("paramiko", "paramiko_bench.py", pip_spec="paramiko",
           module_under=os.path.join(VENVS, "paramiko"), protocols=("sftp",)),
    Client("openssh", "openssh_bench.py"),
]
CLIENTS_BY_NAME = {client.name: client for client in CLIENT_LIST}


def baseline_client(tree: str) -> Client:
    """pssh from another checkout (``--baseline``), run beside this one as ``pssh-base``."""
    tree = os.path.abspath(tree)
    if not os.path.isfile(os.path.join(tree, "pssh", "__init__.py")):
        raise SystemExit(f"--baseline {tree}: no pssh package there")
    return Client("pssh-base", "pssh_bench.py", python=_our_python(), pythonpath=tree,
                  module_under=os.path.join(tree, "pssh"))


def chosen_clients(args: argparse.Namespace) -> list[Client]:
    """The clients of ``--clients``, and ``pssh-base`` right after ours with ``--baseline``."""
    clients = _names(args.clients, CLIENTS_BY_NAME, "client")
    if args.baseline:
        clients.insert(1 if clients and clients[0].name == "pssh" else 0,
                       baseline_client(args.baseline))
    return clients


def ensure_venv(client: Client) -> None:
    """Create the peer's venv and install it, unless an earlier run already did."""
    if client.pip_spec is None:
        return
    home = os.path.join(VENVS, client.name)
    stamp = os.path.join(home, ".installed")
    if os.path.exists(stamp) and open(stamp).read() == client.pip_spec:
        return
    print(f"setting up {home} ({client.pip_spec}) ...", file=sys.stderr, flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    pip = subprocess.run([_venv_python(client.name), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", client.pip_spec],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if pip.returncode != 0:
        raise SystemExit(f"pip install {client.pip_spec} failed:\n{pip.stderr}")
    with open(stamp, "w") as marker:
        marker.write(client.pip_spec)


# -- one measurement ------------------------------------------------------------------


@dataclass
class Case:
    workload: Workload
    hosts: int


@dataclass
class Run:
    """Everything recorded about one child process; written out as one JSON line."""

    workload: str
    hosts: int
    client: str
    repeat: int
    wall: float | None = None
    process_wall: float = 0.0
    cpu: float = 0.0
    start_cpu: float = 0.0
    rss_kb: int = 0
    sshd_cpu: float = 0.0
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    version: str = ""
    load_before: float = 0.0
    load_after: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds from the start


def sshd_cpu_seconds(pids: list[int]) -> float:
    """utime + stime + cutime + cstime of the sshd masters, in seconds."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        ticks += sum(int(value) for value in fields[11:15])  # stat fields 14 to 17
    return ticks / CLOCK_TICKS


def _children_of(pids: list[int]) -> list[int]:
    parents = set(pids)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                ppid = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid in parents:
            found.append(int(name))
    return found


def wait_until_reaped(pids: list[int]) -> None:
    """Wait until the masters have no children left, so their cutime is complete."""
    deadline = time.monotonic() + REAP_TIMEOUT
    while _children_of(pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _child_env(client: Client) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name not in ("PYTHONPATH", "SSH_AUTH_SOCK", "PYTHONHOME")}
    if client.pythonpath:
        env["PYTHONPATH"] = client.pythonpath
    # The venvs sit inside our work tree: without a ceiling, versioneer in the published
    # parallel-ssh runs `git describe` on our repository at every import.
    env["GIT_CEILING_DIRECTORIES"] = VENVS
    return env


def _child_args(case: Case, client: Client, server: LocalSSHD, pool_size: int) -> str:
    args = {
        "hosts": server.hosts[:case.hosts], "port": server.port, "user": server.user,
        "pkey": server.pkey, "command": case.workload.command(server),
        "expect_lines": case.workload.expect_lines,
        "pool_size": case.hosts if case.workload.phases else pool_size,
        "timeout": CLIENT_TIMEOUT, "phases": case.workload.phases}
    if case.workload.copy is not None:
        protocol, direction = case.workload.copy
        args["copy"] = {"protocol": protocol, "direction": direction, "source": COPY_SOURCE,
                        "destination": os.path.join(_copy_output(client), "copy"),
                        "size": COPY_BYTES}
    return json.dumps(args)


def _copy_output(client: Client) -> str:
    """The directory one client's copies land in; emptied after every run."""
    return os.path.join(COPY_DIR, f"out-{client.name}")


def _run_limit(workload: Workload, run_timeout: float) -> float:
    """Seconds a run of ``workload`` may take: --run-timeout, or the workload's own if less."""
    return min(run_timeout, workload.run_timeout or run_timeout)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _time_out(pid: int, fired: threading.Event) -> None:
    fired.set()
    _kill_group(pid)


def measure(client: Client, case: Case, server: LocalSSHD, repeat: int,
            pool_size: int, run_timeout: float) -> Run:
    """Run one workload script in a fresh process and collect what it and sshd used."""
    run = Run(case.workload.name, case.hosts, client.name, repeat)
    run.load_before = os.getloadavg()[0]
    script = os.path.join(WORKLOADS, client.script)
    # Files, not pipes: the parent only has to wait4 the child, never to drain it.
    if case.workload.copy is not None:
        os.makedirs(_copy_output(client), exist_ok=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sshd_before = sshd_cpu_seconds(server.pids)
        began = time.perf_counter()
        child = subprocess.Popen(
            [client.interpreter(), script, _child_args(case, client, server, pool_size)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_child_env(client),
            start_new_session=True)
        fired = threading.Event()
        timer = threading.Timer(_run_limit(case.workload, run_timeout), _time_out,
                                (child.pid, fired))
        timer.start()
        _pid, status, usage = os.wait4(child.pid, 0)
        run.process_wall = time.perf_counter() - began
        timer.cancel()
        run.timed_out = fired.is_set()
        child.returncode = os.waitstatus_to_exitcode(status)
        _kill_group(child.pid)  # anything the child left behind (ssh processes)
        wait_until_reaped(server.pids)
        run.sshd_cpu = sshd_cpu_seconds(server.pids) - sshd_before
        shutil.rmtree(_copy_output(client), ignore_errors=True)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    run.cpu = usage.ru_utime + usage.ru_stime
    run.rss_kb = usage.ru_maxrss
    run.load_after = os.getloadavg()[0]
    _take_result(run, client, case, stdout, stderr, child.returncode)
    return run


def _take_result(run: Run, client: Client, case: Case, stdout: str, stderr: str,
                 returncode: int) -> None:
    """Fill the run from the child's JSON line; a child without one failed every host."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if run.timed_out or returncode != 0 or not lines:
        why = "timed out" if run.timed_out else f"exited with {returncode}"
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        run.failed = case.hosts
        run.errors = [f"workload script {why}: {tail}"[:500]]
        return
    result = json.loads(lines[-1])
    if not result["module_path"].startswith(client.module_under):
        raise SystemExit(f"{client.name} ran {result['module_path']}, not a library under "
                         f"{client.module_under}: the environments are mixed up")
    run.wall = result["wall"]
    run.start_cpu = result["start_cpu"]
    run.ok, run.failed, run.errors = result["ok"], result["failed"], result["errors"]
    run.version = f"{result['library']} {result['version']}"
    run.rss_kb = result.get("rss_total_kb", run.rss_kb)
    run.phases = result.get("phases", {})


# -- the summary --------------------------------------------------------------------------


@dataclass
class Summary:
    """Medians over the repeats of one client on one case."""

    runs: list[Run]

    def median(self, name: str) -> float:
        return statistics.median(getattr(run, name) for run in self.runs)

    @property
    def wall(self) -> float | None:
        """Median work wall time; a run that timed out counts as +infinity."""
        walls = [run.wall if run.wall is not None else float("inf") for run in self.runs]
        value = statistics.median(walls)
        return None if value == float("inf") else value

    @property
    def work_cpu(self) -> float:
        return statistics.median(run.cpu - run.start_cpu for run in self.runs)

    def outcome(self) -> str:
        """ok/failed of the worst run, and how many runs timed out."""
        worst = max(self.runs, key=lambda run: run.failed)
        text = f"{worst.ok}/{worst.failed}"
        timeouts = sum(run.timed_out for run in self.runs)
        return text + (f" ({timeouts} timed out)" if timeouts else "")


def _ratio(value: float | None, ours: float | None) -> str:
    if value is None or ours is None or ours <= 0:
        return "-"
    return f"{value / ours:.2f}"


def _seconds(value: float | None, run_timeout: float) -> str:
    return f"> {run_timeout:.0f}" if value is None else f"{value:.2f}"


TABLE_HEAD = ("| workload | N | client | wall s | client CPU s | start-up CPU s | peak RSS MB"
              " | sshd CPU s | ok/failed | wall ÷ pssh | CPU ÷ pssh | wall ÷ floor |\n"
              "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")


def table(summaries: dict[tuple[str, int, str], Summary], run_timeout: float) -> str:
    """The markdown table of medians, one row per case and client, ours first."""
    rows = [TABLE_HEAD]
    for (workload, hosts, client), summary in summaries.items():
        ours = summaries.get((workload, hosts, "pssh"))
        wall, cpu = summary.wall, summary.median("cpu")
        floor = (summary.median("sshd_cpu") + summary.work_cpu) / CORES
        limit = _run_limit(WORKLOADS_BY_NAME[workload], run_timeout)
        rows.append(" | ".join([
            f"| {workload}", str(hosts), client, _seconds(wall, limit), f"{cpu:.2f}",
            f"{summary.median('start_cpu'):.2f}", f"{summary.median('rss_kb') / 1024:.0f}",
            f"{summary.median('sshd_cpu'):.2f}", summary.outcome(),
            _ratio(wall, ours.wall if ours else None),
            _ratio(cpu, ours.median("cpu") if ours else None),
            _ratio(wall, floor) + " |"]))
    return "\n".join(rows)


def slopes(summaries: dict[tuple[str, int, str], Summary]) -> str:
    """What one more host costs between the smallest N >= 10 and the largest N: client CPU
    and peak RSS. Every client holds all its connections open when its RSS peaks (the
    scripts start every host before reading any), so the RSS slope is one connection's."""
    rows = []
    for workload in dict.fromkeys(key[0] for key in summaries):
        sizes = sorted({key[1] for key in summaries if key[0] == workload and key[1] >= 10})
        if len(sizes) < 2:
            continue
        low, high = sizes[0], sizes[-1]
        per_client = {}
        for client in dict.fromkeys(key[2] for key in summaries if key[0] == workload):
            if (workload, low, client) in summaries and (workload, high, client) in summaries:
                per_client[client] = tuple(
                    (summaries[(workload, high, client)].median(name)
                     - summaries[(workload, low, client)].median(name)) / (high - low)
                    for name in ("cpu", "rss_kb"))
        ours = per_client.get("pssh", (None, None))
        for client, (cpu, rss) in per_client.items():
            rows.append(f"| {workload} | {low} → {high} | {client} | {cpu * 1000:.2f} | "
                        f"{_ratio(cpu, ours[0])} | {rss:.0f} | {_ratio(rss, ours[1])} |")
    return _markdown("| workload | N | client | client CPU ms per added host | ÷ pssh "
                     "| RSS KB per added connection | ÷ pssh |\n"
                     "|---|---|---|---:|---:|---:|---:|", rows)


def copy_table(summaries: dict[tuple[str, int, str], Summary]) -> str:
    """Throughput of the copy workloads: all hosts' bytes over the wall time."""
    rows = []
    for (workload, hosts, client), summary in summaries.items():
        if WORKLOADS_BY_NAME[workload].copy is None:
            continue
        openssh = summaries.get((workload, hosts, "openssh"))
        rate = _rate(summary.wall, hosts)
        rows.append(f"| {workload} | {hosts} | {client} | "
                    f"{'-' if rate is None else f'{rate:.0f}'} | "
                    f"{summary.work_cpu:.2f} | {summary.median('sshd_cpu'):.2f} | "
                    f"{summary.outcome()} | "
                    f"{_ratio(rate, _rate(openssh.wall, hosts) if openssh else None)} |")
    return _markdown("| copy | N | client | MB/s (all hosts) | client CPU s | sshd CPU s "
                     "| ok/failed | MB/s ÷ OpenSSH's |\n|---|---:|---|---:|---:|---:|---|---:|",
                     rows)


def _markdown(head: str, rows: list[str]) -> str:
    """A markdown table, or nothing when there are no rows."""
    return "\n".join([head, *rows]) if rows else ""


def _rate(wall: float | None, hosts: int) -> float | None:
    return None if not wall else hosts * COPY_BYTES / wall / 1e6


def summarise(runs: list[Run]) -> dict[tuple[str, int, str], Summary]:
    grouped: dict[tuple[str, int, str], list[Run]] = {}
    for run in runs:
        grouped.setdefault((run.workload, run.hosts, run.client), []).append(run)
    return {key: Summary(group) for key, group in grouped.items()}


# -- the command line ---------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few minutes: echo and cat26k at N=10 and 50, auth at 50, "
                             "bigout from 2 hosts")
    parser.add_argument("--full", action="store_true", help="add the N=500 cases")
    parser.add_argument("--workloads", default=",".join(WORKLOADS_BY_NAME),
                        help="comma-separated, from: " + "; ".join(
                            f"{item.name} ({item.description})" for item in WORKLOAD_LIST))
    parser.add_argument("--clients", default=",".join(CLIENTS_BY_NAME),
                        help="comma-separated, from: " + ", ".join(CLIENTS_BY_NAME))
    parser.add_argument("--sizes", default="",
                        help="comma-separated host counts, replacing each workload's own")
    parser.add_argument("--repeat", type=int, default=3, help="runs per client and case")
    parser.add_argument("--pool-size", type=int, default=100,
                        help="pool size of pssh and parallel-ssh, asyncssh's semaphore and "
                             "paramiko's thread count")
    parser.add_argument("--run-timeout", type=float, default=None,
                        help="seconds before a run is killed (300; 40 with --quick)")
    parser.add_argument("--out", help="write every run as a JSON line to this file")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run pssh from DIR (e.g. `git archive main | tar -x -C "
                             "DIR`) as the client pssh-base: before and after in one run")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.run_timeout is None:
        args.run_timeout = 40.0 if args.quick else 300.0
    return args


def _names(text: str, known: dict[str, Any], what: str) -> list[Any]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; choose from "
                         f"{', '.join(known)}")
    return [known[name] for name in names]


def build_cases(args: argparse.Namespace) -> list[Case]:
    override = [int(size) for size in args.sizes.split(",") if size.strip()]
    cases = []
    for workload in _names(args.workloads, WORKLOADS_BY_NAME, "workload"):
        sizes = (override or (workload.quick_sizes if args.quick else
                              workload.full_sizes if args.full else workload.sizes))
        cases += [Case(workload, hosts) for hosts in sizes]
    return cases


def _progress(run: Run) -> None:
    wall = "-" if run.wall is None else f"{run.wall:.2f}"
    print(f"{run.workload:>7} N={run.hosts:<4} {run.client:<13} #{run.repeat + 1} "
          f"wall {wall:>6} s  cpu {run.cpu:6.2f} s  sshd {run.sshd_cpu:6.2f} s  "
          f"rss {run.rss_kb / 1024:5.0f} MB  ok {run.ok}/{run.failed}  "
          f"load {run.load_after:.1f}" + (f"  {run.errors[0]}" if run.errors else ""),
          file=sys.stderr, flush=True)


def run_all(args: argparse.Namespace, cases: list[Case], clients: list[Client],
            record: Callable[[dict[str, Any]], None]) -> list[Run]:
    runs = []
    with (LocalSSHD(num_hosts=max(case.hosts for case in cases), start_timeout=60) as server,
          _removed_after(COPY_DIR)):
        for workload in dict.fromkeys(case.workload.name for case in cases):
            WORKLOADS_BY_NAME[workload].prepare(server)
        for case in cases:
            for repeat in range(args.repeat):
                for client in clients:  # interleaved: A B C A B C
                    if not client.can_run(case.workload):
                        continue
                    run = measure(client, case, server, repeat, args.pool_size,
                                  args.run_timeout)
                    _progress(run)
                    record({"kind": "run", **run.__dict__})
                    runs.append(run)
    return runs


@contextlib.contextmanager
def _removed_after(path: str) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through LocalSSHD's context manager


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    cases = build_cases(args)
    clients = chosen_clients(args)
    if not cases or not clients:
        raise SystemExit("nothing to run")
    if any(client.name == "openssh" for client in clients) and not shutil.which("ssh"):
        raise SystemExit("the openssh client needs `ssh`: apt-get install -y openssh-client")
    for client in clients:
        ensure_venv(client)
    load = os.getloadavg()
    meta = {"kind": "meta", "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "cores": CORES,
            "argv": argv, "load_before": load}
    out = open(args.out + ".tmp", "w") if args.out else None

    def record(item: dict[str, Any]) -> None:
        if out is not None:
            out.write(json.dumps(item) + "\n")
            out.flush()

    record(meta)
    runs = run_all(args, cases, clients, record)
    if out is not None:
        out.close()
        os.replace(args.out + ".tmp", args.out)
    summaries = summarise(runs)
    versions = sorted({run.version for run in runs if run.version})
    print(f"{meta['date']}, {CORES} cores, load average {load[0]:.2f} before and "
          f"{os.getloadavg()[0]:.2f} after; medians of {args.repeat} runs\n")
    print(table(summaries, args.run_timeout))
    for extra in (slopes(summaries), copy_table(summaries)):
        if extra:
            print("\n" + extra)
    print("\n" + "; ".join(versions))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
