"""paramiko: connect and start every host from a thread pool (the size of our pool), then
read each host's stdout line by line, in host order, from the main thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import _common
import paramiko


def start(host: str, args: dict[str, Any]) -> Any:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(host, port=args["port"], username=args["user"],
                       key_filename=args["pkey"], timeout=args["timeout"],
                       allow_agent=False, look_for_keys=False)
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


def main() -> None:
    args = _common.read_args()
    bench = _common.Bench(args)
    with ThreadPoolExecutor(max_workers=args["pool_size"]) as pool:
        futures = [pool.submit(start, host, args) for host in args["hosts"]]
    for host, future in zip(args["hosts"], futures):
        try:
            exit_code, lines = read(*future.result())
        except Exception as exc:
            bench.check(host, None, 0, exc)
            continue
        bench.check(host, exit_code, lines)
    bench.report("paramiko", paramiko.__version__, paramiko.__file__)


if __name__ == "__main__":
    main()
