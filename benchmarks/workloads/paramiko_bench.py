"""paramiko: connect and start every host from a thread pool (the size of our pool), then
read each host's stdout line by line, in host order, from the main thread. Copies run
one thread per host with paramiko's SFTP client (paramiko has no SCP)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _common
import paramiko


def connect(host: str, args: dict[str, Any]) -> Any:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(host, port=args["port"], username=args["user"],
                   key_filename=args["pkey"], timeout=args["timeout"],
                   allow_agent=False, look_for_keys=False)
    return client


def copy_one(host: str, args: dict[str, Any]) -> None:
    spec = args["copy"]
    if spec["protocol"] != "sftp":
        raise NotImplementedError("paramiko has no SCP")
    client = connect(host, args)
    try:
        with client.open_sftp() as sftp:
            if spec["direction"] == "up":
                sftp.put(spec["source"], _common.destination(args, host))
            else:
                sftp.get(spec["source"], _common.destination(args, host))
    finally:
        client.close()


def start(host: str, args: dict[str, Any]) -> Any:
    client = connect(host, args)
    try:
        _stdin, stdout, _stderr = client.exec_command(args["command"])
    except BaseException:
        client.close()
        raise
    return client, stdout


def read(client: Any, stdout: Any) -> tuple[int, int]:
    lines = 0
    for _line in stdout:
        lines += 1
    exit_code = stdout.channel.recv_exit_status()
    client.close()
    return exit_code, lines


def copy(args: dict[str, Any], bench: _common.Bench) -> None:
    with ThreadPoolExecutor(max_workers=args["pool_size"]) as pool:
        copies = [pool.submit(copy_one, host, args) for host in args["hosts"]]
    for host, future in zip(args["hosts"], copies):
        bench.check_copy(host, future.exception())


def run(args: dict[str, Any], bench: _common.Bench) -> None:
    with ThreadPoolExecutor(max_workers=args["pool_size"]) as pool:
        futures = [pool.submit(start, host, args) for host in args["hosts"]]
    if args["phases"]:  # the pool workload: wait for every command, then read
        bench.phase("started")
        for future in futures:
            if future.exception() is None:
                future.result()[1].channel.recv_exit_status()
        bench.phase("finished")
    for host, future in zip(args["hosts"], futures):
        try:
            exit_code, lines = read(*future.result())
        except Exception as exc:
            bench.check(host, None, 0, exc)
            continue
        bench.check(host, exit_code, lines)
    bench.phase("read")


def main() -> None:
    args = _common.read_args()
    bench = _common.Bench(args)
    if "copy" in args:
        copy(args, bench)
    else:
        run(args, bench)
    bench.report("paramiko", paramiko.__version__, paramiko.__file__)


if __name__ == "__main__":
    main()
