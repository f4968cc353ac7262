"""What one more host costs each client, in CPU instructions: a measure the machine's load
does not move.

Client CPU seconds rise with the machine's load (on a busy machine with shared cores the
same work takes several times the CPU time), so ``run.py``'s "client CPU ms per added
host" is only comparable within one run. This script runs the same workload scripts as
``run.py``, each under ``valgrind --tool=callgrind``, at two host counts, and reports the
instructions executed per added host (the difference over the difference in hosts, so
start-up and imports cancel out), split by where they ran: the crypto library (OpenSSL,
or the one inside ``cryptography``), the SSH library (libssh2, libssh), the Python
interpreter and everything else (libc, gevent, greenlet, the kernel interface).

Only Python clients run here: OpenSSH's client is one process per host, and its cost is
already the whole process (see ``run.py``). Instruction counts vary a little with how
often a non-blocking call is retried, so each case runs ``--repeat`` times and the
median is used.

    python benchmarks/cost.py --clients pssh,parallel-ssh,asyncssh --sizes 10,60

paramiko can be named too, but has not been measured this way yet (callgrind runs its
thread per connection one at a time, slowly).
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
from collections import Counter

import run  # the sibling script: its clients, workloads and child set-up

GROUPS = (("crypto", re.compile(r"libcrypto|_rust\.abi3|_openssl|libsodium|libnacl")),
          ("SSH library", re.compile(r"libssh")),
          ("Python", re.compile(r"libpython|^python3")))
GROUP_NAMES = [name for name, _ in GROUPS] + ["other"]
LINE = re.compile(r"\s*([\d,]+)\s+\S.*\[(?P<object>[^\]]+)\]\s*$")
VALGRIND_TIMEOUT = 600


def group_of(shared_object: str) -> str:
    name = os.path.basename(shared_object)
    for group, pattern in GROUPS:
        if pattern.search(name):
            return group
    return "other"


def instructions_by_group(callgrind_out: str) -> Counter[str]:
    """Instructions of one callgrind profile, summed by where they ran."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                           "--show-percs=no", callgrind_out],
                          capture_output=True, text=True, check=True).stdout
    totals: Counter[str] = Counter()
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            totals[group_of(match.group("object"))] += int(match.group(1).replace(",", ""))
    return totals


def profile(client: run.Client, case: run.Case, server: run.LocalSSHD,
            pool_size: int) -> Counter[str]:
    """Run one workload script under callgrind; its instructions by group."""
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "callgrind.out")
        child = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             client.interpreter(), os.path.join(run.WORKLOADS, client.script),
             run._child_args(case, client, server, pool_size)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            env=run._child_env(client), timeout=VALGRIND_TIMEOUT)
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {}
        if result.get("ok") != case.hosts:
            tail = " | ".join(child.stderr.strip().splitlines()[-3:])
            raise SystemExit(f"{client.name} at N={case.hosts} under valgrind: "
                             f"{result.get('errors') or tail}")
        return instructions_by_group(out)


def per_added_host(low: list[Counter[str]], high: list[Counter[str]],
                   hosts: int) -> dict[str, float]:
    """Median instructions per added host, by group and in total (millions)."""
    def median_of(runs: list[Counter[str]], group: str | None) -> float:
        return statistics.median(sum(counts.values()) if group is None else counts[group]
                                 for counts in runs)
    costs = {group: (median_of(high, group) - median_of(low, group)) / hosts / 1e6
             for group in GROUP_NAMES}
    costs["total"] = (median_of(high, None) - median_of(low, None)) / hosts / 1e6
    return costs


def table(costs: dict[str, dict[str, float]], low: int, high: int) -> str:
    ours = costs.get("pssh", {}).get("total")
    rows = ["| client | M instructions per added host | ÷ pssh | "
            + " | ".join(GROUP_NAMES) + " |",
            "|---|---:|---:|" + "---:|" * len(GROUP_NAMES)]
    for client, cost in costs.items():
        ratio = f"{cost['total'] / ours:.2f}" if ours else "-"
        rows.append(f"| {client} | {cost['total']:.2f} | {ratio} | "
                    + " | ".join(f"{cost[group]:.2f}" for group in GROUP_NAMES) + " |")
    return (f"echo, N {low} → {high}, callgrind instructions (millions) per added host\n\n"
            + "\n".join(rows))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="pssh,pssh-libssh,parallel-ssh,asyncssh")
    parser.add_argument("--sizes", default="10,60", help="the two host counts")
    parser.add_argument("--workload", default="echo")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pool-size", type=int, default=100)
    parser.add_argument("--out", help="write the results as JSON lines to this file")
    parser.add_argument("--baseline", metavar="DIR",
                        help="also run pssh from DIR as pssh-base (see run.py --baseline)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, run._exit_on_sigterm)
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        raise SystemExit("needs valgrind: apt-get install -y valgrind")
    low, high = sorted(int(size) for size in args.sizes.split(","))
    clients = run.chosen_clients(args)
    workload = run.WORKLOADS_BY_NAME[args.workload]
    for client in clients:
        run.ensure_venv(client)
    runs: dict[tuple[str, int], list[Counter[str]]] = {}
    with run.LocalSSHD(num_hosts=high, start_timeout=60) as server:
        workload.prepare(server)
        for repeat in range(args.repeat):
            for hosts in (low, high):
                for client in clients:  # interleaved, as in run.py
                    counts = profile(client, run.Case(workload, hosts), server,
                                     args.pool_size)
                    runs.setdefault((client.name, hosts), []).append(counts)
                    print(f"{client.name:<13} N={hosts:<4} #{repeat + 1} "
                          f"{sum(counts.values()) / 1e6:9.1f} M instructions",
                          file=sys.stderr, flush=True)
    costs = {client.name: per_added_host(runs[(client.name, low)],
                                         runs[(client.name, high)], high - low)
             for client in clients}
    if args.out:
        with open(args.out, "w") as out:
            for (client_name, hosts), counts_list in runs.items():
                for counts in counts_list:
                    out.write(json.dumps({"client": client_name, "hosts": hosts,
                                          "workload": args.workload, **counts}) + "\n")
    print(table(costs, low, high))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
