"""Peak memory of large copies: a 1 GB file uploaded to 20 hosts, downloaded from 2.

Checks that a copy streams in bounded memory instead of holding the file per host.
Each measurement runs in a fresh child process that reports its own peak RSS::

    .venv/bin/python benchmarks/copy_memory.py [--size-mb 1000] [--hosts 20]

Uploads go to /dev/null on each host (SFTP leaves a device's mode alone), so the
upload needs no disk space; downloads land in /dev/shm (size-mb x 2 of memory).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from pssh.testing import LocalSSHD  # noqa: E402  (needs the checkout on sys.path)

WORK = "/dev/shm/pssh-copy-memory"


def child(args: dict) -> None:
    """Run one copy with pssh and print wall time and peak RSS as JSON."""
    import gevent

    from pssh.clients import ParallelSSHClient

    client = ParallelSSHClient(args["hosts"], user=args["user"], pkey=args["pkey"],
                               port=args["port"], num_retries=0, timeout=60)
    started = time.perf_counter()
    if args["direction"] == "up":
        results = client.copy_file(args["source"], "/dev/null")
    else:
        results = client.copy_remote_file(args["source"], os.path.join(WORK, "down"))
    gevent.joinall(results, raise_error=True)
    wall = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "rss_mb": rss_mb}))


def measure(server: LocalSSHD, source: str, hosts: int, direction: str) -> dict:
    args = {"hosts": server.hosts[:hosts], "user": server.user, "pkey": server.pkey,
            "port": server.port, "source": source, "direction": direction}
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], env=env,
                          capture_output=True, text=True, check=True)
    result: dict = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=20, help="hosts to upload to")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(json.loads(options.child))
        return 0
    os.makedirs(WORK, exist_ok=True)
    source = os.path.join(WORK, "source.bin")
    try:
        with open(source, "wb") as file:
            for _ in range(options.size_mb):
                file.write(os.urandom(1_000_000))
        with LocalSSHD(num_hosts=options.hosts) as server:
            for direction, hosts in (("up", options.hosts), ("down", 2)):
                result = measure(server, source, hosts, direction)
                moved = options.size_mb * hosts
                print(f"SFTP {'upload to' if direction == 'up' else 'download from'} "
                      f"{hosts} hosts of {options.size_mb} MB: {result['wall']:.1f} s, "
                      f"{moved / result['wall']:.0f} MB/s, peak RSS "
                      f"{result['rss_mb']:.0f} MB")
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
