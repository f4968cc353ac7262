"""The ``pssh`` command line against the tools people reach for, on N loopback hosts.

    .venv/bin/python benchmarks/cli_peers.py [--hosts 200] [--repeat 5] \\
        [--workloads true,cat26k] [--tools pssh,clush,parallel-ssh,pdsh,xargs-ssh] \\
        [--kex ALGORITHM] [--out benchmarks/results/cli_peers]

Every tool runs as a user would run it: a subprocess started from its console script,
hosts read from a file, stdout and stderr into files, the same fan-out (N) for all, the
test key, no agent, no host key checking. The peers are ClusterShell's ``clush`` (pip, in
``benchmarks/.venvs/clush``), the classic ``pssh`` (Debian's ``pssh`` package, whose
script is ``parallel-ssh``; PyPI's ``pssh==2.3.1`` is Python 2 only), ``pdsh -R ssh``
(Debian's ``pdsh``) and ``xargs -P N ssh``. All of them but ours run one OpenSSH ``ssh``
process per host, with OpenSSH's default key exchange unless ``--kex`` sets one.

Workloads: ``true``, and ``cat26k``, a ``cat`` of the repository's 26 KB ``COPYING``
(502 lines) as in ``run.py``'s workload of that name.

Per run: wall time from start to exit of the tool's process; client CPU, user + sys of
the tool and everything it waited for (its ``ssh`` children), from ``os.wait4``; sshd
CPU, utime + stime + cutime + cstime of the sshd masters after they have reaped every
connection. A run counts only if it is correct: exit status 0, the sshd log shows N new
public key logins, nothing on stderr but the tool's own summary, and for ``cat26k`` every
host's 502 lines in the output (for ``xargs``, which labels nothing, N times the bytes and
lines). Tools take turns (A B C A B C ...) after one unrecorded warm-up run each; the
table shows medians of the correct runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from run import sshd_cpu_seconds, wait_until_reaped  # noqa: E402  (benchmarks/run.py)

from pssh.testing import LocalSSHD  # noqa: E402  (needs the checkout on sys.path)

VENVS = os.path.join(HERE, ".venvs")
CORES = os.cpu_count() or 1
COPYING = os.path.join(REPO, "COPYING")
OUR_PSSH = os.path.join(REPO, ".venv", "bin", "pssh")
CLUSH = os.path.join(VENVS, "clush", "bin", "clush")
LOGIN = re.compile(r"Accepted publickey for ")


# -- workloads --------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    command: Callable[[LocalSSHD], str]
    expect: bytes  # each host's stdout


def _copying_lines() -> bytes:
    with open(COPYING, "rb") as text:
        return text.read()


WORKLOADS = {
    "true": Workload("true", lambda server: "true", b""),
    "cat26k": Workload("cat26k", lambda server: f"cat {os.path.join(server.home, 'COPYING')}",
                       _copying_lines()),
}


# -- tools ------------------------------------------------------------------------------


@dataclass
class Context:
    """What every tool's command line is built from."""

    server: LocalSSHD
    hosts: list[str]
    host_file: str
    command: str
    kex: str | None

    def ssh_options(self) -> list[str]:
        """OpenSSH client options equivalent to what our pssh is given."""
        options = ["-F", "/dev/null", "-p", str(self.server.port), "-i", self.server.pkey,
                   "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "LogLevel=ERROR"]
        if self.kex:
            options += ["-o", f"KexAlgorithms={self.kex}"]
        return options


@dataclass(frozen=True)
class Tool:
    name: str
    argv: Callable[[Context], list[str]]
    output: str  # "prefixed" (host: line), "classic" ([n] time [SUCCESS] host), "raw"
    version: list[str]
    env: Callable[[Context], dict[str, str]] = lambda context: {}
    needs: str = ""  # how to install it when missing
    summary: re.Pattern[str] | None = None  # an stderr line that is not an error


def _our_argv(context: Context) -> list[str]:
    return [OUR_PSSH, "-h", context.host_file, "-p", str(len(context.hosts)),
            "-l", context.server.user, "-i", context.server.pkey,
            "-O", f"Port={context.server.port}", "--host-key-policy", "off", context.command]


def _clush_argv(context: Context) -> list[str]:
    return [CLUSH, "--hostfile", context.host_file, "-f", str(len(context.hosts)),
            "-l", context.server.user, "-o", " ".join(context.ssh_options()), "-S",
            context.command]


def _classic_argv(context: Context) -> list[str]:
    return ["parallel-ssh", "-h", context.host_file, "-p", str(len(context.hosts)),
            "-l", context.server.user, "-t", "0", "-i",
            "-x", " ".join(context.ssh_options()), context.command]


def _pdsh_argv(context: Context) -> list[str]:
    return ["pdsh", "-R", "ssh", "-w", "^" + context.host_file, "-f", str(len(context.hosts)),
            "-l", context.server.user, "-S", context.command]


def _pdsh_env(context: Context) -> dict[str, str]:
    return {"PDSH_SSH_ARGS_APPEND": " ".join(context.ssh_options())}


def _xargs_argv(context: Context) -> list[str]:
    return ["xargs", "-a", context.host_file, "-P", str(len(context.hosts)), "-I{}",
            "ssh", *context.ssh_options(), "-l", context.server.user, "{}", context.command]


TOOLS = {tool.name: tool for tool in [
    Tool("pssh", _our_argv, "prefixed",
         [os.path.join(REPO, ".venv", "bin", "python"), "-c",
          "import pssh; print('pssh', pssh.__version__)"],
         needs="make venv", summary=re.compile(r"^\d+ hosts? in [\d.]+ s: \d+ ok$")),
    Tool("clush", _clush_argv, "prefixed", [CLUSH, "--version"],
         needs=f"python3 -m venv {VENVS}/clush && {VENVS}/clush/bin/pip install clustershell"),
    Tool("parallel-ssh", _classic_argv, "classic", ["parallel-ssh", "--version"],
         needs="apt-get install -y pssh"),
    Tool("pdsh", _pdsh_argv, "prefixed", ["pdsh", "-V"], env=_pdsh_env,
         needs="apt-get install -y pdsh"),
    Tool("xargs-ssh", _xargs_argv, "raw", ["xargs", "--version"]),
]}


def _version(tool: Tool) -> str:
    run = subprocess.run(tool.version, capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
    text = (run.stdout or run.stderr).strip().splitlines()
    name = {"parallel-ssh": "parallel-ssh (Debian pssh) "}.get(tool.name, "")
    return name + (text[0] if text else "?")


def _missing(tool: Tool) -> str | None:
    executable = {"pssh": OUR_PSSH, "clush": CLUSH}.get(tool.name, tool.version[0])
    if os.path.isabs(executable):
        return None if os.access(executable, os.X_OK) else executable
    return None if shutil.which(executable) else executable


# -- checking a run ---------------------------------------------------------------------


def _by_host_prefixed(stdout: bytes, hosts: list[str]) -> dict[str, list[bytes]]:
    """``host: line`` output grouped by host; lines without a known host go under ''."""
    known = set(hosts)
    grouped: dict[str, list[bytes]] = {}
    for line in stdout.splitlines():
        host, sep, rest = line.partition(b":")
        name = host.decode(errors="replace")
        if not sep or name not in known:
            grouped.setdefault("", []).append(line)
            continue
        grouped.setdefault(name, []).append(rest[1:] if rest.startswith(b" ") else rest)
    return grouped


CLASSIC_HEAD = re.compile(rb"^\[\d+\] \d\d:\d\d:\d\d \[(SUCCESS|FAILURE)\] (\S+)(.*)$")


def _by_host_classic(stdout: bytes, hosts: list[str]) -> tuple[dict[str, list[bytes]], int]:
    """The classic pssh's ``-i`` blocks by host, and how many said SUCCESS."""
    grouped: dict[str, list[bytes]] = {}
    current = ""
    success = 0
    for line in stdout.splitlines():
        head = CLASSIC_HEAD.match(line)
        if head:
            current = head.group(2).decode(errors="replace")
            success += head.group(1) == b"SUCCESS"
            grouped.setdefault(current, [])
            continue
        grouped.setdefault(current, []).append(line)
    return grouped, success


def check(tool: Tool, workload: Workload, hosts: list[str], status: int, stdout: bytes,
          stderr: bytes, logins: int) -> list[str]:
    """Why this run is not a correct one; empty when it is."""
    problems = []
    if status != 0:
        problems.append(f"exit status {status}")
    if logins != len(hosts):
        problems.append(f"{logins} logins in the sshd log, not {len(hosts)}")
    noise = [line for line in stderr.decode(errors="replace").splitlines()
             if line.strip() and not (tool.summary and tool.summary.match(line))]
    if noise:
        problems.append(f"stderr: {noise[0]!r} ({len(noise)} lines)")
    expected = [line.rstrip() for line in workload.expect.splitlines()]
    if tool.output == "raw":
        lines, want_lines = stdout.count(b"\n"), len(hosts) * workload.expect.count(b"\n")
        if len(stdout) != len(hosts) * len(workload.expect) or lines != want_lines:
            problems.append(f"{len(stdout)} bytes in {lines} lines of output, not "
                            f"{len(hosts) * len(workload.expect)} in {want_lines}")
        return problems
    if tool.output == "classic":
        grouped, success = _by_host_classic(stdout, hosts)
        if success != len(hosts):
            problems.append(f"{success} hosts said SUCCESS")
    else:
        grouped = _by_host_prefixed(stdout, hosts)
    wrong = [host for host in hosts
             if [line.rstrip() for line in grouped.get(host, [])] != expected]
    stray = len(grouped.get("", []))
    if wrong:
        problems.append(f"{len(wrong)} hosts' output wrong or missing, first {wrong[0]} "
                        f"({len(grouped.get(wrong[0], []))} lines)")
    if stray:
        problems.append(f"{stray} output lines from no host")
    return problems


# -- one run ----------------------------------------------------------------------------


@dataclass
class Run:
    workload: str
    hosts: int
    tool: str
    repeat: int
    kex: str
    wall: float = 0.0
    cpu: float = 0.0
    sshd_cpu: float = 0.0
    rss_kb: int = 0
    status: int = 0
    load_before: float = 0.0  # 1-minute load average: other work on the machine shows here
    ok: bool = False
    problems: list[str] = field(default_factory=list)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _env(tool: Tool, context: Context) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name not in ("SSH_AUTH_SOCK", "PYTHONPATH", "PYTHONHOME", "DISPLAY")}
    env.update(tool.env(context))
    return env


def measure(tool: Tool, workload: Workload, context: Context, repeat: int,
            run_timeout: float) -> Run:
    server = context.server
    run = Run(workload.name, len(context.hosts), tool.name, repeat, context.kex or "default")
    logins_before = len(LOGIN.findall(server.read_log()))
    run.load_before = os.getloadavg()[0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sshd_before = sshd_cpu_seconds(server.pids)
        began = time.perf_counter()
        child = subprocess.Popen(tool.argv(context), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=err, env=_env(tool, context), start_new_session=True)
        timer = threading.Timer(run_timeout, _kill_group, (child.pid,))
        timer.start()
        _pid, status, usage = os.wait4(child.pid, 0)
        run.wall = time.perf_counter() - began
        timer.cancel()
        child.returncode = run.status = os.waitstatus_to_exitcode(status)
        _kill_group(child.pid)  # anything left behind
        wait_until_reaped(server.pids)
        run.sshd_cpu = sshd_cpu_seconds(server.pids) - sshd_before
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    run.cpu = usage.ru_utime + usage.ru_stime
    run.rss_kb = usage.ru_maxrss
    logins = len(LOGIN.findall(server.read_log())) - logins_before
    run.problems = check(tool, workload, context.hosts, run.status, stdout, stderr, logins)
    if run.wall >= run_timeout:
        run.problems.insert(0, f"killed after {run_timeout:.0f} s")
    run.ok = not run.problems
    return run


def openssh_kex(context: Context) -> str:
    """The key exchange OpenSSH's client settles on with these options (from ``ssh -v``)."""
    probe = subprocess.run(["ssh", "-v", *context.ssh_options(), "-l", context.server.user,
                            context.hosts[0], "true"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, env=_env(TOOLS["xargs-ssh"], context))
    for line in probe.stderr.splitlines():
        if "kex: algorithm:" in line:
            return line.split("kex: algorithm:", 1)[1].strip()
    return "?"


# -- tables -----------------------------------------------------------------------------


def _median(runs: list[Run], name: str) -> float:
    return statistics.median(getattr(run, name) for run in runs)


def table(runs: list[Run]) -> str:
    rows = ["| workload | N | tool | wall s | client CPU s | sshd CPU s | correct runs "
            "| wall ÷ pssh | client CPU ÷ pssh |",
            "|---|---:|---|---:|---:|---:|---|---:|---:|"]
    groups: dict[tuple[str, int, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.workload, run.hosts, run.tool), []).append(run)
    for (workload, hosts, name), group in groups.items():
        good = [run for run in group if run.ok]
        ours = [run for run in groups.get((workload, hosts, "pssh"), []) if run.ok]
        if not good:
            first = group[0].problems[0] if group[0].problems else "?"
            rows.append(f"| {workload} | {hosts} | {name} | - | - | - | 0/{len(group)}: "
                        f"{first} | - | - |")
            continue
        wall, cpu = _median(good, "wall"), _median(good, "cpu")
        ratios = ["-", "-"]
        if ours:
            ratios = [f"{wall / _median(ours, 'wall'):.2f}",
                      f"{cpu / _median(ours, 'cpu'):.2f}"]
        rows.append(f"| {workload} | {hosts} | {name} | {wall:.2f} | {cpu:.2f} | "
                    f"{_median(good, 'sshd_cpu'):.2f} | {len(good)}/{len(group)} | "
                    f"{ratios[0]} | {ratios[1]} |")
    return "\n".join(rows)


# -- the command line -------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200, help="loopback hosts (200)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per tool and workload")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated, from: " + ", ".join(WORKLOADS))
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="comma-separated, from: " + ", ".join(TOOLS))
    parser.add_argument("--kex", help="KexAlgorithms for the ssh-based tools "
                                      "(default: OpenSSH's own choice)")
    parser.add_argument("--run-timeout", type=float, default=120.0,
                        help="seconds before a run is killed (120)")
    parser.add_argument("--out", help="write PREFIX.jsonl (every run) and PREFIX.md")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.hosts < 1:
        parser.error("--repeat and --hosts must be at least 1")
    for what, known in (("workloads", WORKLOADS), ("tools", TOOLS)):
        names = [name for name in getattr(args, what).split(",") if name]
        unknown = [name for name in names if name not in known]
        if unknown or not names:
            parser.error(f"--{what}: choose from {', '.join(known)}")
        setattr(args, what, [known[name] for name in names])
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through LocalSSHD's context manager


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = parse_args(argv)
    missing = [(tool, path) for tool in args.tools if (path := _missing(tool))]
    if missing:
        raise SystemExit("missing: " + "; ".join(f"{path} ({tool.needs})"
                                                 for tool, path in missing))
    versions = {tool.name: _version(tool) for tool in args.tools}
    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    load = os.getloadavg()[0]
    runs: list[Run] = []
    # VERBOSE makes sshd log each login, which is how a run proves every host answered.
    with LocalSSHD(num_hosts=args.hosts, start_timeout=60,
                   extra_config={"LogLevel": "VERBOSE"}) as server, \
            tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(COPYING, os.path.join(server.home, "COPYING"))
        host_file = os.path.join(folder, "hosts")
        with open(host_file, "w") as hosts:
            hosts.write("\n".join(server.hosts) + "\n")
        base = Context(server, server.hosts, host_file, "", args.kex)
        kex = openssh_kex(base)
        print(f"{args.hosts} hosts on {len(server.pids)} sshd processes, {CORES} cores; "
              f"OpenSSH client key exchange: {kex}", file=sys.stderr)
        for workload in args.workloads:
            context = Context(server, server.hosts, host_file, workload.command(server),
                              args.kex)
            for repeat in range(-1, args.repeat):  # -1: the unrecorded warm-up
                for tool in args.tools:
                    run = measure(tool, workload, context, repeat, args.run_timeout)
                    print(f"{workload.name:>6} N={args.hosts} {tool.name:<12} "
                          f"{'warm-up' if repeat < 0 else f'#{repeat + 1}':<7} "
                          f"wall {run.wall:6.2f} s  cpu {run.cpu:6.2f} s  "
                          f"sshd {run.sshd_cpu:6.2f} s  load {run.load_before:4.1f}  "
                          f"{'ok' if run.ok else '; '.join(run.problems)}",
                          file=sys.stderr, flush=True)
                    if repeat >= 0:
                        runs.append(run)
    date = time.strftime("%Y-%m-%d %H:%M:%S %z")
    header = (f"{date}, {CORES} cores, load average {load:.2f} before and "
              f"{os.getloadavg()[0]:.2f} after; N={args.hosts}, "
              f"fan-out {args.hosts}; medians of the correct runs out of {args.repeat}; "
              f"OpenSSH client key exchange: {kex}")
    report = "\n\n".join([header, table(runs),
                          "; ".join([*versions.values(), ssh_version])])
    print(report)
    if args.out:
        with open(args.out + ".jsonl", "w") as out:
            out.write(json.dumps({"kind": "meta", "date": date, "cores": CORES,
                                  "argv": argv, "load_before": load, "kex": kex,
                                  "versions": versions, "ssh": ssh_version}) + "\n")
            for run in runs:
                out.write(json.dumps({"kind": "run", **asdict(run)}) + "\n")
        with open(args.out + ".md", "w") as out:
            out.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
