"""Run one command on N local "hosts" with ParallelSSHClient, end to end.

The hosts are loopback addresses served by a throwaway OpenSSH server
(pssh.testing.LocalSSHD), so the demo needs no remote machines, only /usr/sbin/sshd:

    python examples/local_demo.py --hosts 10
"""

from __future__ import annotations

import argparse
import time

from pssh.clients import ParallelSSHClient
from pssh.testing import LocalSSHD

COMMAND = 'echo "hello from $SSH_CONNECTION" && uname -sr'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a command on N local hosts.")
    parser.add_argument("--hosts", type=int, default=10, metavar="N",
                        help="how many local hosts to run the command on (default: 10)")
    return parser.parse_args()


def run(server: LocalSSHD) -> int:
    """Run COMMAND on every host, print the output; return how many hosts exited 0."""
    client = ParallelSSHClient(server.hosts, **server.client_kwargs())
    output = client.run_command(COMMAND)
    for host_out in output:
        for line in host_out.stdout:
            print(host_out.host, line)
        print(host_out.host, "exit code", host_out.exit_code)
    return sum(1 for host_out in output if host_out.exit_code == 0)


def main() -> int:
    args = parse_args()
    if args.hosts < 1:
        raise SystemExit("--hosts must be at least 1")
    server = LocalSSHD(num_hosts=args.hosts)
    try:
        started = time.monotonic()
        server.start()
        print(f"sshd on {len(server.hosts)} loopback hosts, port {server.port}, "
              f"ready in {time.monotonic() - started:.2f} s")
        started = time.monotonic()
        ok = run(server)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    print(f"{args.hosts} hosts, {ok} ok, {elapsed:.2f} s wall time")
    return 0 if ok == args.hosts else 1


if __name__ == "__main__":
    raise SystemExit(main())
