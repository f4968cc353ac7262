"""Copy a file to N local "hosts" and back, with SFTP and with SCP, and check every copy.

The hosts are loopback addresses served by a throwaway OpenSSH server
(pssh.testing.LocalSSHD), so this needs no remote machines, only /usr/sbin/sshd:

    python examples/copy_files.py --hosts 10 --size-mb 20

Each upload goes to a per-host remote path (``copy_args``); downloads land in
``<name>_<host>`` files, the default for ``copy_remote_file`` and ``scp_recv``. Hosts are
reported as they finish, so a slow host shows up as the one still missing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time

import gevent

from pssh.clients import ParallelSSHClient
from pssh.testing import LocalSSHD


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Copy a file to N local hosts and back.")
    parser.add_argument("--hosts", type=int, default=4, metavar="N",
                        help="how many local hosts (default: 4)")
    parser.add_argument("--size-mb", type=int, default=20, metavar="MB",
                        help="size of the file to copy (default: 20)")
    return parser.parse_args()


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wait_and_report(label: str, hosts: list[str], results: list, size: int) -> int:
    """Print each host as its copy ends; return how many failed."""
    started = time.monotonic()
    host_of = {id(result): host for host, result in zip(hosts, results)}
    failed = 0
    for result in gevent.iwait(results):
        host = host_of[id(result)]
        if result.successful():
            print(f"  {label} {host}: done after {time.monotonic() - started:.2f} s")
        else:
            failed += 1
            print(f"  {label} {host}: FAILED: {result.exception}")
    elapsed = time.monotonic() - started
    moved = size * (len(hosts) - failed) / 1e6
    print(f"{label}: {len(hosts) - failed}/{len(hosts)} hosts, {moved:.0f} MB in "
          f"{elapsed:.2f} s ({moved / elapsed:.0f} MB/s)")
    return failed


def round_trip(client: ParallelSSHClient, hosts: list[str], source: str, work: str,
               protocol: str) -> int:
    """Upload ``source`` to every host and download it again; return failures."""
    size = os.path.getsize(source)
    remote = [{"path": os.path.join(work, f"{protocol}-remote-{host}.bin")} for host in hosts]
    send = client.copy_file if protocol == "sftp" else client.scp_send
    failed = wait_and_report(f"{protocol} upload", hosts,
                             send(source, "%(path)s", copy_args=remote), size)
    receive = client.copy_remote_file if protocol == "sftp" else client.scp_recv
    copies = os.path.join(work, f"{protocol}-back.bin")
    failed += wait_and_report(f"{protocol} download", hosts,
                              receive(source, copies), size)
    expected = sha256(source)
    for host, path in zip(hosts, (item["path"] for item in remote)):
        for copy in (path, f"{copies}_{host}"):
            if not os.path.exists(copy) or sha256(copy) != expected:
                print(f"  {host}: {copy} is missing or differs from the source")
                failed += 1
    return failed


def main() -> int:
    args = parse_args()
    if args.hosts < 1 or args.size_mb < 0:
        raise SystemExit("--hosts must be at least 1 and --size-mb not negative")
    server = LocalSSHD(num_hosts=args.hosts)
    with tempfile.TemporaryDirectory(prefix="pssh-copy-demo-") as work:
        source = os.path.join(work, "source.bin")
        with open(source, "wb") as file:
            for _ in range(args.size_mb):
                file.write(os.urandom(1 << 20))
        server.start()
        try:
            with ParallelSSHClient(server.hosts, **server.client_kwargs()) as client:
                failed = sum(round_trip(client, server.hosts, source, work, protocol)
                             for protocol in ("sftp", "scp"))
        finally:
            server.stop()
    print("all copies verified" if not failed else f"{failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
