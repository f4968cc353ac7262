"""asyncssh: connect and start every host under a semaphore (the size of our pool), then
read each host's stdout line by line, in host order. Copies connect and copy every host
at once under the same semaphore, with asyncssh's SFTP client or its ``scp``."""

from __future__ import annotations

import asyncio
from typing import Any

import _common
import asyncssh


async def start(host: str, args: dict[str, Any], slots: asyncio.Semaphore) -> Any:
    async with slots:
        conn = await asyncssh.connect(host, port=args["port"], username=args["user"],
                                      client_keys=[args["pkey"]], known_hosts=None,
                                      agent_path=None, connect_timeout=args["timeout"])
        try:
            return conn, await conn.create_process(args["command"])
        except BaseException:
            conn.close()
            raise


async def copy_one(host: str, args: dict[str, Any], slots: asyncio.Semaphore) -> None:
    spec = args["copy"]
    source, target = spec["source"], _common.destination(args, host)
    async with slots, asyncssh.connect(
            host, port=args["port"], username=args["user"], client_keys=[args["pkey"]],
            known_hosts=None, agent_path=None, connect_timeout=args["timeout"]) as conn:
        if spec["protocol"] == "sftp":
            async with conn.start_sftp_client() as sftp:
                if spec["direction"] == "up":
                    await sftp.put(source, target)
                else:
                    await sftp.get(source, target)
        elif spec["direction"] == "up":
            await asyncssh.scp(source, (conn, target))
        else:
            await asyncssh.scp((conn, source), target)


async def copy(args: dict[str, Any], bench: _common.Bench) -> None:
    slots = asyncio.Semaphore(args["pool_size"])
    outcomes = await asyncio.gather(*(copy_one(host, args, slots) for host in args["hosts"]),
                                    return_exceptions=True)
    for host, outcome in zip(args["hosts"], outcomes):
        bench.check_copy(host, outcome if isinstance(outcome, BaseException) else None)


async def read(conn: Any, process: Any) -> tuple[Any, int]:
    lines = 0
    # readline() returns '' only at EOF; `async for` over the reader sometimes yields
    # that '' as a last line, which would count one line too many.
    while await process.stdout.readline():
        lines += 1
    await process.wait()
    conn.close()
    return process.exit_status, lines


async def run(args: dict[str, Any], bench: _common.Bench) -> None:
    slots = asyncio.Semaphore(args["pool_size"])
    hosts = args["hosts"]
    started = await asyncio.gather(*(start(host, args, slots) for host in hosts),
                                   return_exceptions=True)
    for host, item in zip(hosts, started):
        if isinstance(item, BaseException):
            bench.check(host, None, 0, item)
            continue
        try:
            exit_code, lines = await read(*item)
        except Exception as exc:
            bench.check(host, None, 0, exc)
            continue
        bench.check(host, exit_code, lines)
    await asyncio.gather(*(item[0].wait_closed() for item in started
                           if not isinstance(item, BaseException)))


def main() -> None:
    args = _common.read_args()
    bench = _common.Bench(args)
    asyncio.run(copy(args, bench) if "copy" in args else run(args, bench))
    bench.report("asyncssh", asyncssh.__version__, asyncssh.__file__)


if __name__ == "__main__":
    main()
