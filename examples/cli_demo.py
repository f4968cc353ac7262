"""The ``pssh`` command line on N local "hosts": gathered output and the summary.

The hosts are loopback addresses served by a throwaway OpenSSH server
(pssh.testing.LocalSSHD), as in local_demo.py. Each run is shown as a shell transcript;
the options that point pssh at the local server (``-O Port=... -l ... -i ...``) are left
out of the command shown. pssh prints its summary on stderr; here it is merged into
the transcript.

    python examples/cli_demo.py --hosts 10
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

from pssh.testing import LocalSSHD

RUNS = [
    # (options and command, the exit status expected)
    (["-b", "uname -sr"], 0),
    (["-b", 'case "$SSH_CONNECTION" in *" 127.0.0.3 "*) echo broken; exit 3;; esac; '
            'echo deployed'], 5),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Show the pssh command line on N local hosts.")
    parser.add_argument("--hosts", type=int, default=10, metavar="N",
                        help="how many local hosts to run on (default: 10)")
    return parser.parse_args()


def node_set(server: LocalSSHD) -> str:
    """The server's hosts as one node set: 127.0.0.[2-11]."""
    last = [int(host.rsplit(".", 1)[1]) for host in server.hosts]
    return f"127.0.0.[{last[0]}-{last[-1]}]" if len(last) > 1 else server.hosts[0]


def run(server: LocalSSHD, args: list[str], expected: int) -> bool:
    """Run ``pssh`` with ``args`` on every host, print the transcript; whether it
    exited with ``expected``."""
    hosts = ["-H", node_set(server)]
    kwargs = server.client_kwargs()
    login = ["-O", f"Port={kwargs['port']}", "-l", kwargs["user"], "-i", kwargs["pkey"]]
    print(f"$ pssh {shlex.join(hosts + args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "pssh", *hosts, *login, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    print(result.stdout, end="")
    print(f"(exit status {result.returncode})\n", flush=True)
    return result.returncode == expected


def main() -> int:
    args = parse_args()
    if not 1 <= args.hosts <= 250:
        raise SystemExit("--hosts must be between 1 and 250")
    with LocalSSHD(num_hosts=args.hosts) as server:
        print(f"sshd on {len(server.hosts)} loopback hosts, port {server.port}\n")
        ok = [run(server, options, expected) for options, expected in RUNS]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
