"""The sharded client against the one-process client, on N loopback hosts running ``echo``.

    .venv/bin/python benchmarks/sharded.py [--hosts 1000] [--repeat 1] [--pin] \\
        [--out benchmarks/results/sharded]

Variants: ``ParallelSSHClient``, and ``ShardedSSHClient`` with ``processes=1`` and
``processes=2``; every one with ``pool_size`` = N (all hosts at once; the sharded
client shares it out among its workers). Plus ``startup``: each client on 2 hosts
running ``true``, which is mostly the sharded client's worker start-up.

Each run is a fresh child process (``--child``) that makes the client, runs the command,
joins, checks every host said ``ok`` with exit code 0, and disconnects (which reaps the
workers). Per run: wall time from making the client to the end of ``join``; client CPU,
user + sys of the child and of everything it reaped (its workers), from ``os.wait4``;
sshd CPU, utime + stime + cutime + cstime of the sshd masters once they have reaped
every connection. The 1-minute load average before each run is recorded: the machine
may be shared, so compare ratios between variants of one run, not absolute figures.

With ``--pin`` the sshd masters (and so every connection they fork) are pinned to core
0 and the client to core 1 (``taskset``): the two sides then cannot take each other's
core, which shows which side sets the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from run import sshd_cpu_seconds, wait_until_reaped  # noqa: E402  (benchmarks/run.py)

VARIANTS = ["parallel", "sharded-1", "sharded-2"]


def child(variant: str, hosts: list[str], kwargs: dict[str, object]) -> dict[str, object]:
    """One run, in this (child) process: the timings, as a dict."""
    from pssh.clients import ParallelSSHClient, ShardedSSHClient

    began = time.perf_counter()
    if variant == "parallel":
        client = ParallelSSHClient(hosts, pool_size=len(hosts), **kwargs)
    else:
        client = ShardedSSHClient(hosts, pool_size=len(hosts),
                                  processes=int(variant.rsplit("-", 1)[1]), **kwargs)
    command = "true" if len(hosts) <= 2 else "echo ok"
    output = client.run_command(command, stop_on_errors=False)
    started = time.perf_counter() - began
    client.join(output)
    wall = time.perf_counter() - began
    expected = [] if command == "true" else ["ok"]
    bad = [host_out.host for host_out in output
           if host_out.exception is not None or host_out.exit_code != 0
           or list(host_out.stdout) != expected]
    usage = resource.getrusage(resource.RUSAGE_SELF)  # this process only: the caller
    client.disconnect()
    return {"wall": wall, "started": started, "failed_hosts": len(bad),
            "caller_cpu": usage.ru_utime + usage.ru_stime,
            "first_failure": repr(output[hosts.index(bad[0])].exception) if bad else None}


def measure(variant: str, hosts: list[str], kwargs: dict[str, object], pin: bool,
            ) -> dict[str, object]:
    argv = [sys.executable, os.path.abspath(__file__), "--child", variant,
            "--child-args", json.dumps({"hosts": hosts, "kwargs": kwargs})]
    if pin:
        argv = ["taskset", "-c", "1", *argv]
    return _run_child(argv, variant, len(hosts))


def _run_child(argv: list[str], variant: str, count: int) -> dict[str, object]:
    load = os.getloadavg()[0]
    server_pids = SERVER_PIDS
    sshd_before = sshd_cpu_seconds(server_pids)
    began = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert process.stdout is not None
    result_line = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.stdout.close()
    process_wall = time.perf_counter() - began
    wait_until_reaped(server_pids)
    result = json.loads(result_line) if os.waitstatus_to_exitcode(status) == 0 else {
        "error": f"child exit status {os.waitstatus_to_exitcode(status)}"}
    result.update(variant=variant, hosts=count, load_before=load,
                  process_wall=process_wall, client_cpu=usage.ru_utime + usage.ru_stime,
                  client_user=usage.ru_utime, client_sys=usage.ru_stime,
                  sshd_cpu=sshd_cpu_seconds(server_pids) - sshd_before)
    return result


SERVER_PIDS: list[int] = []


def _pin_server(pids: list[int]) -> None:
    for pid in pids:
        os.sched_setaffinity(pid, {0})


def table(runs: list[dict[str, object]]) -> str:
    rows = ["| hosts | variant | runs | wall s | client CPU s | of which caller s | "
            "sshd CPU s | wall ÷ parallel | client CPU ÷ parallel | load before |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[object, object], list[dict[str, object]]] = {}
    for run in runs:
        if "error" not in run and not run.get("failed_hosts"):
            groups.setdefault((run["hosts"], run["variant"]), []).append(run)

    def median(hosts: object, variant: str, name: str) -> float:
        return statistics.median(float(run[name])  # type: ignore[arg-type]
                                 for run in groups[hosts, variant])

    for (hosts, variant), group in groups.items():
        wall, cpu = median(hosts, str(variant), "wall"), median(hosts, str(variant),
                                                                "client_cpu")
        base = (hosts, "parallel") in groups
        ratio_wall = f"{wall / median(hosts, 'parallel', 'wall'):.2f}" if base else "-"
        ratio_cpu = f"{cpu / median(hosts, 'parallel', 'client_cpu'):.2f}" if base else "-"
        load = max(float(run["load_before"]) for run in group)  # type: ignore[arg-type]
        caller = median(hosts, str(variant), "caller_cpu")
        rows.append(f"| {hosts} | {variant} | {len(group)} | {wall:.2f} | {cpu:.2f} | "
                    f"{caller:.2f} | {median(hosts, str(variant), 'sshd_cpu'):.2f} | "
                    f"{ratio_wall} | "
                    f"{ratio_cpu} | {load:.1f} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--pin", action="store_true",
                        help="sshd on core 0, the client on core 1")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=None, help="write OUT.md and append to OUT.jsonl")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-args", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        given = json.loads(args.child_args)
        print(json.dumps(child(args.child, given["hosts"], given["kwargs"])))
        return 0
    from pssh.testing import LocalSSHD

    runs: list[dict[str, object]] = []
    variants = args.variants.split(",")
    with LocalSSHD(num_hosts=args.hosts, start_timeout=300) as server:
        SERVER_PIDS[:] = server.pids
        wait_until_reaped(server.pids)  # the readiness probes' connections
        if args.pin:
            _pin_server(server.pids)
        kwargs = server.client_kwargs()
        kwargs["timeout"] = 300
        for variant in variants:  # start-up: each client on 2 hosts running true
            runs.append(dict(measure(variant, server.hosts[:2], kwargs, args.pin),
                             variant=f"{variant} (startup)"))
            print(json.dumps(runs[-1]), file=sys.stderr)
        for repeat in range(args.repeat):
            for variant in variants:  # taking turns: A B C A B C
                run = measure(variant, server.hosts, kwargs, args.pin)
                run.update(repeat=repeat, pinned=args.pin)
                runs.append(run)
                print(json.dumps(run), file=sys.stderr)
    report = table(runs)
    print(report)
    if args.out:
        with open(args.out + ".jsonl", "a") as jsonl:
            for run in runs:
                jsonl.write(json.dumps(run) + "\n")
        with open(args.out + ".md", "a") as md:
            md.write(f"\n`benchmarks/sharded.py {' '.join(argv)}` "
                     f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                     f"{os.cpu_count()} cores)\n\n{report}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
