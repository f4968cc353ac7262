"""asyncssh: connect and start every host under a semaphore (the size of our pool), then
read each host's stdout line by line, in host order."""

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
    asyncio.run(run(args, bench))
    bench.report("asyncssh", asyncssh.__version__, asyncssh.__file__)


if __name__ == "__main__":
    main()
