"""One client, thousands of hosts: client CPU, memory and file descriptors per host as the
host count grows from 10 to 2,000, all running ``echo ok``.

    python benchmarks/scale.py [--sizes 10,200,500,1000,2000] [--repeat 3]
                               [--engines native,ssh] [--out benchmarks/results/scale]

Theory of operation
-------------------
One :class:`~pssh.testing.LocalSSHD` serves the largest host count for every run (2,000
hosts are 125 sshd masters of 16 addresses each, with ``MaxStartups 10000``); its start-up
time is reported. Each run is a fresh child process (this script with ``--child``) that
makes one ``ParallelSSHClient`` for the first N hosts, runs ``echo ok``, reads every
host's output and checks that it is exactly the line ``ok`` with exit code 0. The child
measures what only it can see:

- open file descriptors, by kind (socket, pipe, anon_inode, file), before the client
  exists, while every host is still connected (after the output is read), and after
  ``client.disconnect()`` and dropping the client and its output (then ``gc.collect()``):
  the last count must equal the first, or the client leaks;
- its RSS (``VmRSS``) before and after, and its peak (``ru_maxrss``).

The parent measures the rest as ``run.py`` does and reuses its helpers: the child's CPU
(user + sys, from ``os.wait4``; ``start-up`` is the part before the client was made,
interpreter and imports), the sshd masters' CPU (their children's, once reaped) and the
floor, (sshd CPU + client run CPU) / cores: the wall time the machine's cores allow.

The figures to read are per host: client CPU after start-up per added host between
consecutive host counts (the slope), whose ratio last/first must stay within
``SLOPE_LIMIT`` (flat: no cost per host that grows with N), and peak RSS per host over
the smallest count. Host counts take turns within each repeat and the tables show
medians over the repeats.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
COMMAND = "echo ok"
EXPECTED = ["ok"]
SLOPE_LIMIT = 1.2  # slope of the last step over that of the first
DEFAULT_SIZES = "10,200,500,1000,2000"
ENGINES = {"native": "libssh2", "ssh": "libssh"}


# -- the child: one client, N hosts ------------------------------------------------------


def open_fds() -> dict[str, int]:
    """This process's open descriptors by kind: socket, pipe, anon_inode:[...], file."""
    kinds: dict[str, int] = {}
    folder = "/proc/self/fd"
    for name in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, name))
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
        if target.startswith("anon_inode:"):
            kind = target  # anon_inode:[eventpoll], anon_inode:[eventfd], ...
        elif target.startswith(("socket:", "pipe:")):
            kind = target.split(":", 1)[0]
        else:
            kind = "file"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(args: dict[str, Any]) -> None:
    """One run: connect the hosts, run the command, check every host, tear down, and
    print the figures as one JSON line (``_common.Bench.report``)."""
    sys.path.insert(0, os.path.join(HERE, "workloads"))
    import _common
    import gevent

    import pssh
    engine = importlib.import_module(f"pssh.clients.{args['engine']}")
    # gevent's event loop opens an epoll and an eventfd once per process, on first use:
    # made before the baseline, they are not counted as the client's.
    gevent.get_hub()
    gc.collect()
    fds_before, rss_before = open_fds(), rss_kb()
    bench = _common.Bench(args)
    client = engine.ParallelSSHClient(args["hosts"], user=args["user"], pkey=args["pkey"],
                                      port=args["port"], num_retries=0,
                                      timeout=args["timeout"], pool_size=args["pool_size"])
    output = client.run_command(COMMAND, stop_on_errors=False)
    lines = [_read(host_out) for host_out in output]
    client.join(output, consume_output=True)
    bench.phase("read")
    fds_peak = open_fds()
    for host_out, (read, error) in zip(output, lines):
        wrong = None if read == EXPECTED else f"stdout {read!r}, expected {EXPECTED!r}"
        bench.check(host_out.host, host_out.exit_code, 1,
                    host_out.exception or error or wrong)
    client.disconnect()
    del client
    gc.collect()
    fds_output_held = open_fds()
    del output, host_out
    gc.collect()
    bench.phase("closed")
    bench.report("pssh", pssh.__version__, pssh.__file__, fds_before=fds_before,
                 fds_peak=fds_peak, fds_output_held=fds_output_held, fds_after=open_fds(),
                 rss_before_kb=rss_before, rss_after_kb=rss_kb(),
                 rss_peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _read(host_out: Any) -> tuple[list[str], BaseException | None]:
    """One host's stdout lines, read to the end, and the error that stopped it, if any."""
    if host_out.exception is not None or host_out.stdout is None:
        return [], None
    read: list[str] = []
    try:
        read.extend(host_out.stdout)
    except Exception as exc:  # a read timeout or a dropped connection fails this host
        return read, exc
    return read, None


# -- the parent: the server, the runs and the tables --------------------------------------


def measure(server: Any, engine: str, hosts: int, repeat: int,
            args: argparse.Namespace) -> dict[str, Any]:
    """Run one child on the first ``hosts`` hosts; its figures and the server's CPU."""
    import run
    ours = run.CLIENTS_BY_NAME["pssh"]
    child_args = {"hosts": server.hosts[:hosts], "port": server.port, "user": server.user,
                  "pkey": server.pkey, "timeout": run.CLIENT_TIMEOUT, "engine": engine,
                  "pool_size": args.pool_size, "expect_lines": 1}
    record: dict[str, Any] = {"kind": "run", "engine": engine, "hosts": hosts,
                              "repeat": repeat, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sshd_before = run.sshd_cpu_seconds(server.pids)
        proc = subprocess.Popen(
            [ours.interpreter(), os.path.abspath(__file__), "--child", json.dumps(child_args)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=run._child_env(ours),
            start_new_session=True)
        fired = threading.Event()
        timer = threading.Timer(args.run_timeout, run._time_out, (proc.pid, fired))
        timer.daemon = True
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:  # also on SIGTERM, which raises SystemExit here
            timer.cancel()
            run._kill_group(proc.pid)
        run.wait_until_reaped(server.pids)
        record["sshd_cpu"] = run.sshd_cpu_seconds(server.pids) - sshd_before
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    record.update(cpu=usage.ru_utime + usage.ru_stime, load_after=os.getloadavg()[0],
                  timed_out=fired.is_set(), returncode=os.waitstatus_to_exitcode(status))
    found = [line for line in stdout.splitlines() if line.startswith("{")]
    if record["returncode"] != 0 or not found:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        return {**record, "ok": 0, "failed": hosts, "errors": [tail[:500]]}
    result = json.loads(found[-1])
    if not result["module_path"].startswith(run.REPO):
        raise SystemExit(f"the child ran {result['module_path']}, not this checkout's pssh")
    result["wall"] = result["phases"]["read"]
    result["teardown"] = result["phases"]["closed"] - result["phases"]["read"]
    return {**record, **result}


def _progress(item: dict[str, Any]) -> None:
    leak = _leak(item)
    print(f"{item['engine']:>6} N={item['hosts']:<5} #{item['repeat'] + 1} "
          f"wall {item.get('wall', 0):6.2f} s  cpu {item['cpu']:6.2f} s  "
          f"sshd {item['sshd_cpu']:6.2f} s  rss {item.get('rss_peak_kb', 0) / 1024:5.0f} MB  "
          f"fds {sum(item.get('fds_before', {}).values())}/"
          f"{sum(item.get('fds_peak', {}).values())}/{sum(item.get('fds_after', {}).values())}"
          f"  ok {item['ok']}/{item['failed']}  load {item['load_after']:.1f}"
          + (f"  LEAK {leak}" if leak else "") + (f"  {item['errors'][0]}"
                                                 if item.get("errors") else ""),
          file=sys.stderr, flush=True)


def _leak(item: dict[str, Any]) -> dict[str, int]:
    """Descriptors open after the teardown that were not before the client, by kind."""
    before, after = item.get("fds_before", {}), item.get("fds_after", {})
    return {kind: after.get(kind, 0) - before.get(kind, 0)
            for kind in sorted(set(before) | set(after))
            if after.get(kind, 0) != before.get(kind, 0)}


def _median(runs: list[dict[str, Any]], name: str) -> float:
    return float(statistics.median(run[name] for run in runs if name in run))


def _run_cpu(runs: list[dict[str, Any]]) -> float:
    """Median client CPU after start-up: what the client spent on the hosts."""
    return float(statistics.median(run["cpu"] - run.get("start_cpu", 0.0) for run in runs))


def _fds(runs: list[dict[str, Any]], name: str) -> int:
    return int(statistics.median(sum(run.get(name, {}).values()) for run in runs))


def table(groups: dict[tuple[str, int], list[dict[str, Any]]]) -> str:
    """Medians per engine and host count; RSS per host is over the smallest count."""
    rows = ["| engine | N | wall s | client CPU s | start-up CPU s | run CPU ms/host "
            "| peak RSS MB | RSS KB/host | fds before/peak/after | ok/failed | sshd CPU s "
            "| wall ÷ floor |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|"]
    for (engine, hosts), runs in groups.items():
        smallest = min(size for name, size in groups if name == engine)
        base = _median(groups[(engine, smallest)], "rss_peak_kb")
        rss = _median(runs, "rss_peak_kb")
        run_cpu = _run_cpu(runs)
        floor = (_median(runs, "sshd_cpu") + run_cpu) / (os.cpu_count() or 1)
        per_host = "-" if hosts == smallest else f"{(rss - base) / (hosts - smallest):.0f}"
        worst = max(runs, key=lambda item: item["failed"])
        rows.append(
            f"| {engine} | {hosts} | {_median(runs, 'wall'):.2f} | {_median(runs, 'cpu'):.2f} "
            f"| {_median(runs, 'start_cpu'):.2f} | {run_cpu / hosts * 1000:.2f} "
            f"| {rss / 1024:.0f} | {per_host} | {_fds(runs, 'fds_before')}/"
            f"{_fds(runs, 'fds_peak')}/{_fds(runs, 'fds_after')} "
            f"| {worst['ok']}/{worst['failed']} | {_median(runs, 'sshd_cpu'):.2f} "
            f"| {_median(runs, 'wall') / floor:.2f} |")
    return "\n".join(rows)


def slopes(groups: dict[tuple[str, int], list[dict[str, Any]]]) -> tuple[str, bool]:
    """Client CPU per added host between consecutive host counts, and whether the last
    step's slope stays within SLOPE_LIMIT of the first step's for every engine."""
    rows = ["| engine | N | client CPU ms per added host | ÷ first step |",
            "|---|---|---:|---:|"]
    verdicts, ratios = [], []
    for engine in dict.fromkeys(name for name, _ in groups):
        sizes = sorted(size for name, size in groups if name == engine)
        steps = []
        for low, high in zip(sizes, sizes[1:]):
            rise = _run_cpu(groups[(engine, high)]) - _run_cpu(groups[(engine, low)])
            steps.append((low, high, rise / (high - low) * 1000))
        for low, high, slope in steps:
            rows.append(f"| {engine} | {low} → {high} | {slope:.3f} | "
                        f"{slope / steps[0][2]:.2f} |")
        if steps:
            ratio = steps[-1][2] / steps[0][2]
            verdicts.append(ratio <= SLOPE_LIMIT)
            ratios.append(f"- {engine}: slope {steps[-1][0]} → {steps[-1][1]} ÷ slope "
                          f"{steps[0][0]} → {steps[0][1]} = {ratio:.2f}, "
                          f"{'PASS' if verdicts[-1] else 'FAIL'} (limit {SLOPE_LIMIT})")
    return "\n".join(rows) + "\n\n" + "\n".join(ratios), all(verdicts)


def verdicts(runs: list[dict[str, Any]], flat: bool) -> str:
    failed = sum(item["failed"] for item in runs)
    leaks = [f"{item['engine']} N={item['hosts']} #{item['repeat'] + 1}: {_leak(item)}"
             for item in runs if _leak(item)]
    lines = [f"- zero failures: {'PASS' if not failed else f'FAIL ({failed} host runs)'}",
             f"- client CPU per host flat (slope ratio <= {SLOPE_LIMIT}): "
             f"{'PASS' if flat else 'FAIL'}",
             f"- fds back to the baseline after the teardown: "
             f"{'PASS' if not leaks else 'FAIL'}"]
    return "\n".join(lines + [f"  - LEAK {leak}" for leak in leaks])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated host counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and count")
    parser.add_argument("--engines", default="native",
                        help="comma-separated, from: " + ", ".join(
                            f"{name} ({library})" for name, library in ENGINES.items()))
    parser.add_argument("--pool-size", type=int, default=100,
                        help="ParallelSSHClient's pool_size (its default: 100)")
    parser.add_argument("--run-timeout", type=float, default=600.0,
                        help="seconds before a child is killed")
    parser.add_argument("--out", help="write STEM.md (the tables) and STEM.jsonl (every run)")
    args = parser.parse_args(argv)
    args.sizes = sorted({int(size) for size in args.sizes.split(",") if size.strip()})
    args.engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    if args.repeat < 1 or not args.sizes or min(args.sizes) < 1:
        parser.error("--repeat and every size must be at least 1")
    if not args.engines or set(args.engines) - set(ENGINES):
        parser.error(f"--engines takes {', '.join(ENGINES)}")
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(json.loads(argv[1]))
        return 0
    args = parse_args(argv)
    sys.path.insert(0, HERE)
    import run  # puts the checkout on sys.path

    from pssh.testing import LocalSSHD
    meta: dict[str, Any] = {"kind": "meta", "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                            "cores": os.cpu_count(), "argv": argv,
                            "load_before": os.getloadavg()[0]}
    runs = []
    signal.signal(signal.SIGTERM, run._exit_on_sigterm)  # unwinds through LocalSSHD's exit
    began = time.perf_counter()
    with LocalSSHD(num_hosts=max(args.sizes), start_timeout=600) as server:
        meta.update(sshd_start=time.perf_counter() - began, masters=len(server.pids))
        # The readiness probe opened a connection to every host: reaped, their sshd
        # processes' CPU lands in the start-up's figure, not in the first run's.
        run.wait_until_reaped(server.pids)
        meta["sshd_start_cpu"] = run.sshd_cpu_seconds(server.pids)
        print(f"sshd: {len(server.pids)} masters for {len(server.hosts)} hosts, ready in "
              f"{meta['sshd_start']:.1f} s ({meta['sshd_start_cpu']:.1f} s of sshd CPU)",
              file=sys.stderr, flush=True)
        for repeat in range(args.repeat):
            for hosts in args.sizes:
                for engine in args.engines:  # interleaved, so load drifts hit all alike
                    runs.append(measure(server, engine, hosts, repeat, args))
                    _progress(runs[-1])
    meta["load_after"] = os.getloadavg()[0]
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for engine in args.engines:
        for hosts in args.sizes:
            groups[(engine, hosts)] = [item for item in runs
                                       if (item["engine"], item["hosts"]) == (engine, hosts)]
    slope_table, flat = slopes(groups)
    version = next((item["version"] for item in runs if "version" in item), "?")
    text = "\n\n".join([
        f"{meta['date']}, {meta['cores']} cores, load average {meta['load_before']:.2f} "
        f"before and {meta['load_after']:.2f} after; medians of {args.repeat} runs; "
        f"`{COMMAND}`, pool_size {args.pool_size}; sshd: {meta['masters']} masters, ready "
        f"in {meta['sshd_start']:.1f} s ({meta['sshd_start_cpu']:.1f} s of sshd CPU); "
        f"pssh {version}",
        table(groups), slope_table, verdicts(runs, flat)])
    print(text)
    if args.out:
        with open(args.out + ".md", "w") as markdown:
            markdown.write(text + "\n")
        with open(args.out + ".jsonl", "w") as lines:
            for item in [meta, *runs]:
                lines.write(json.dumps(item) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
