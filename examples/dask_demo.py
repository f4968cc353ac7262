"""Run a command on N local "hosts" from the workers of a Dask cluster, twice.

A throwaway OpenSSH server (pssh.testing.LocalSSHD) serves the hosts, and a LocalCluster
of worker processes on this machine stands in for a real cluster: a real one is given
as ``Client("tcp://scheduler:8786")`` instead. The second run shows each host answering
on the connection the first run opened, kept by the worker that ran it.

    python examples/dask_demo.py --hosts 10 --workers 2
"""

from __future__ import annotations

import argparse
import logging
import tempfile

import dask
from distributed import Client, LocalCluster

from pssh import distributed as pssh_dask
from pssh.testing import LocalSSHD

# $SSH_CONNECTION is "client-address client-port server-address server-port".
COMMAND = "echo $SSH_CONNECTION"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a command on N hosts through Dask.")
    parser.add_argument("--hosts", type=int, default=10, metavar="N",
                        help="how many local hosts (default: 10)")
    parser.add_argument("--workers", type=int, default=2, metavar="W",
                        help="how many Dask worker processes (default: 2)")
    return parser.parse_args()


def client_ports(dask_client: Client, server: LocalSSHD) -> dict[str, str]:
    """Run COMMAND on every host; each host's client-side port, printed in host order."""
    outcomes = sorted(pssh_dask.run_command(dask_client, server.hosts, COMMAND,
                                            **server.client_kwargs()),
                      key=lambda outcome: outcome.position)
    ports = {}
    for outcome in outcomes:
        if outcome.exception is not None:
            print(f"  {outcome.host} failed: {outcome.exception}")
            continue
        ports[outcome.host] = outcome.stdout[0].split()[1]
        print(f"  {outcome.host} exit code {outcome.exit_code}, "
              f"connected from port {ports[outcome.host]}")
    return ports


def main() -> int:
    args = parse_args()
    if args.hosts < 1 or args.workers < 1:
        raise SystemExit("--hosts and --workers must be at least 1")
    # Dask's scratch space goes to a directory removed at the end, not into TMPDIR.
    with tempfile.TemporaryDirectory(prefix="dask-demo-") as scratch, \
            dask.config.set({"temporary-directory": scratch}), \
            LocalSSHD(num_hosts=args.hosts) as server, \
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as dask_client:
        print(f"sshd on {args.hosts} loopback hosts, Dask cluster of {args.workers} workers")
        print("first run:")
        first = client_ports(dask_client, server)
        print("second run:")
        second = client_ports(dask_client, server)
        kept = sum(1 for host, port in second.items() if first.get(host) == port)
        print(f"{kept} of {args.hosts} hosts answered on the first run's connection")
        print(f"closed {pssh_dask.disconnect(dask_client)} client sets on the workers")
    return 0 if kept == args.hosts else 1


if __name__ == "__main__":
    raise SystemExit(main())
