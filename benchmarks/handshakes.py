"""Many connections to one sshd address: what ``handshake_limit`` does against
OpenSSH's default ``MaxStartups 10:30:100``, and what it costs where nothing is dropped.

    .venv/bin/python benchmarks/handshakes.py [--connections 200] [--repeat 3]

Part 1: one sshd address with sshd's default ``MaxStartups``; ``--connections`` hosts
(all that address) run ``true`` with ``num_retries=0``, once without a limit and once
with the default limit (8), on each engine. Per run: hosts that failed (each one a
connection sshd dropped; its log says so only for the first few, it throttles the
message), wall time.

Part 2: 100 distinct addresses (``MaxStartups`` raised, so nothing is dropped), the same
run without a limit and with the default one, to show what holding a slot until the
server's first answer after the login costs when it protects nothing.

Part 3: how long counting this process's open descriptors takes with 5,000 open.

Runs alternate (no limit, limit, no limit, ...); the table shows medians.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import time
from typing import Any

from pssh.clients.base._descriptors import open_descriptors
from pssh.constants import DEFAULT_HANDSHAKE_LIMIT
from pssh.testing import LocalSSHD


def run_once(engine: str, hosts: list[str], kwargs: dict[str, Any],
             limit: int | None) -> tuple[int, float]:
    """Failed hosts and wall seconds of one ``run_command('true')`` and ``join``."""
    clients = importlib.import_module(f"pssh.clients.{engine}")
    client = clients.ParallelSSHClient(hosts, **kwargs, handshake_limit=limit,
                                       pool_size=len(hosts))
    start = time.monotonic()
    output = client.run_command("true", stop_on_errors=False)
    client.join(output)
    wall = time.monotonic() - start
    client.disconnect()
    return sum(1 for host_out in output if host_out.exception is not None), wall


def compare(server: LocalSSHD, hosts: list[str], repeat: int, title: str) -> None:
    kwargs = {**server.client_kwargs(), "num_retries": 0, "timeout": 60}
    print(f"\n{title}\n")
    print("| engine | handshake_limit | failed hosts | wall s |")
    print("|---|---|---|---|")
    for engine in ("native", "ssh"):
        runs: dict[int | None, list[tuple[int, float]]] = {None: [],
                                                           DEFAULT_HANDSHAKE_LIMIT: []}
        for _ in range(repeat):
            for limit in runs:
                runs[limit].append(run_once(engine, hosts, kwargs, limit))
        for limit, results in runs.items():
            print(f"| {engine} | {limit} | {statistics.median(r[0] for r in results):g} | "
                  f"{statistics.median(r[1] for r in results):.2f} |")


def time_counting(open_count: int = 5000) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, open_count + 100), hard))
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(open_count)]
    try:
        start = time.perf_counter()
        for _ in range(10):
            counted = open_descriptors()
        each = (time.perf_counter() - start) / 10
    finally:
        for fd in opened:
            os.close(fd)
    print(f"\nCounting {counted} open descriptors: {each * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    busy = {"MaxStartups": "10:30:100", "LogLevel": "INFO"}
    with LocalSSHD(num_hosts=1, extra_config=busy) as server:
        compare(server, server.hosts * args.connections, args.repeat,
                f"{args.connections} connections to one address, MaxStartups 10:30:100")
    with LocalSSHD(num_hosts=100) as server:
        compare(server, server.hosts, args.repeat,
                "100 distinct addresses, MaxStartups 10000")
    time_counting()


if __name__ == "__main__":
    main()
