"""What host key checking costs: client CPU per host with checking on and off, and the
lookup's cost against a 10,000-line known_hosts file, plain and hashed.

    .venv/bin/python benchmarks/host_keys.py [--hosts 200] [--repeat 3] [--engines native,ssh]

Part 1 connects ``--hosts`` loopback hosts of a local sshd with a ParallelSSHClient, runs
``true`` and joins, and reads this process's CPU time (user + system) around it: once with
``known_hosts=None`` (no checking) and once with a known_hosts file listing every host and
``host_key_policy='strict'``. The sshd's own CPU is not counted. Each case runs
``--repeat`` times in turn; the medians are printed.

Part 2 builds known_hosts files of 10,000 lines (random ed25519 keys for other hosts) in
plain and hashed form and times parsing them and looking up 200 hosts in each.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import importlib
import os
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pssh._known_hosts import KnownHosts  # noqa: E402
from pssh.testing import LocalSSHD  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fan_out(engine: str, server: LocalSSHD, **settings: object) -> float:
    """Client CPU seconds to connect every host, run ``true`` and join."""
    module = importlib.import_module(f"pssh.clients.{engine}")
    start = cpu_seconds()
    client = module.ParallelSSHClient(server.hosts, **server.client_kwargs(),
                                      pool_size=len(server.hosts), **settings)
    output = client.run_command("true", stop_on_errors=False)
    client.join()
    failed = [host_out.exception for host_out in output if host_out.exception is not None]
    client.disconnect()
    spent = cpu_seconds() - start
    if failed:
        raise SystemExit(f"{len(failed)} hosts failed, first: {failed[0]}")
    return spent


def part_one(hosts: int, repeat: int, engines: list[str]) -> None:
    with LocalSSHD(num_hosts=hosts) as server, tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "known_hosts")
        fan_out(engines[0], server, known_hosts=path, host_key_policy="accept-new")
        print(f"## Client CPU per host, N={hosts}, median of {repeat}\n")
        print("| engine | checking off | checking on (strict) | difference |")
        print("|---|---|---|---|")
        for engine in engines:
            off, on = [], []
            for _ in range(repeat):
                off.append(fan_out(engine, server, known_hosts=None))
                on.append(fan_out(engine, server, known_hosts=path,
                                  host_key_policy="strict"))
            off_ms = statistics.median(off) / hosts * 1000
            on_ms = statistics.median(on) / hosts * 1000
            print(f"| {engine} | {off_ms:.2f} ms | {on_ms:.2f} ms | "
                  f"{on_ms - off_ms:+.2f} ms |")


def random_blob() -> bytes:
    name = b"ssh-ed25519"
    key = os.urandom(32)
    return len(name).to_bytes(4, "big") + name + len(key).to_bytes(4, "big") + key


def known_hosts_file(folder: str, lines: int, hashed: bool) -> str:
    path = os.path.join(folder, "hashed" if hashed else "plain")
    with open(path, "w") as out:
        for index in range(lines):
            name = f"host{index}.example.com"
            if hashed:
                salt = os.urandom(20)
                digest = hmac.digest(salt, name.encode(), hashlib.sha1)
                name = (f"|1|{base64.b64encode(salt).decode()}|"
                        f"{base64.b64encode(digest).decode()}")
            out.write(f"{name} ssh-ed25519 {base64.b64encode(random_blob()).decode()}\n")
    return path


def part_two(lines: int, lookups: int) -> None:
    print(f"\n## Lookups in a {lines:,}-line known_hosts, {lookups} hosts\n")
    print("| file | parse once | per host lookup |")
    print("|---|---|---|")
    blob = random_blob()
    with tempfile.TemporaryDirectory() as folder:
        for hashed in (False, True):
            path = known_hosts_file(folder, lines, hashed)
            start = time.perf_counter()
            known = KnownHosts([path])
            parsed = time.perf_counter() - start
            start = time.perf_counter()
            for index in range(lookups):
                known.check(f"10.1.{index // 250}.{index % 250}", 22, blob)
            per_host = (time.perf_counter() - start) / lookups
            print(f"| {'hashed' if hashed else 'plain'} | {parsed * 1000:.0f} ms | "
                  f"{per_host * 1e6:.0f} µs |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engines", default="native,ssh")
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    part_one(args.hosts, args.repeat, args.engines.split(","))
    part_two(args.lines, 200)


if __name__ == "__main__":
    main()
