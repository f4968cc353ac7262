"""The system OpenSSH client: one ``ssh`` process per host, all started at once, then
each one's stdout read line by line, in host order. Copies run one ``sftp -b -`` or
``scp -O`` (the classic SCP protocol, as libssh2 speaks it) process per host, all at
once.

The ssh processes are this script's children, so their CPU is in RUSAGE_CHILDREN (and
in what run.py measures for this script). Peak RSS is per process, so the script also
reports ``rss_total_kb``: its own peak plus the sum of every ssh process's peak, an
upper bound on what the N processes held together.
"""

from __future__ import annotations

import os
import resource
import subprocess
from typing import Any

import _common

# curve25519 because OpenSSH 9.2 prefers sntrup761x25519, which costs about ten times
# the CPU and which the libraries do not offer; -F /dev/null keeps any user config out.
SSH_OPTIONS = ["-F", "/dev/null", "-o", "KexAlgorithms=curve25519-sha256",
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"]


def start(host: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    command = ["ssh", *SSH_OPTIONS, "-o", f"ConnectTimeout={int(args['timeout'])}",
               "-i", args["pkey"], "-p", str(args["port"]), "-l", args["user"], host,
               args["command"]]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def start_copy(host: str, args: dict[str, Any]) -> subprocess.Popen[str]:
    spec = args["copy"]
    target = _common.destination(args, host)
    login = ["-i", args["pkey"], "-P", str(args["port"]),
             "-o", f"ConnectTimeout={int(args['timeout'])}"]
    remote = f"{args['user']}@{host}"
    if spec["protocol"] == "sftp":
        command = ["sftp", *SSH_OPTIONS, *login, "-b", "-", remote]
        batch = (f"put {spec['source']} {target}\n" if spec["direction"] == "up" else
                 f"get {spec['source']} {target}\n")
    else:
        batch = ""
        command = ["scp", "-O", *SSH_OPTIONS, *login,
                   *((spec["source"], f"{remote}:{target}") if spec["direction"] == "up"
                     else (f"{remote}:{spec['source']}", target))]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdin is not None
    process.stdin.write(batch)
    process.stdin.close()
    return process


def finish(process: subprocess.Popen[str]) -> tuple[int, int, str, int]:
    """Read stdout to the end; reap with wait4 for the process's own peak RSS."""
    assert process.stdout is not None and process.stderr is not None
    lines = 0
    for _line in process.stdout:
        lines += 1
    stderr = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    process.stderr.close()
    return process.returncode, lines, stderr.strip(), usage.ru_maxrss


def main() -> None:
    args = _common.read_args()
    version = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    bench = _common.Bench(args)
    copying = "copy" in args
    processes = [(start_copy if copying else start)(host, args) for host in args["hosts"]]
    rss_sum = 0
    for host, process in zip(args["hosts"], processes):
        exit_code, lines, stderr, rss = finish(process)
        rss_sum += rss
        if copying:
            bench.check_copy(host, f"exit {exit_code}: {stderr}" if exit_code else None)
        else:
            bench.check(host, exit_code, lines,
                        f"ssh: {stderr}" if exit_code == 255 else None)
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bench.report("openssh", version, "/usr/bin/ssh", rss_total_kb=own_rss + rss_sum)


if __name__ == "__main__":
    main()
