"""The parallel-ssh 2.x API, as a user writes it. Ours and the published parallel-ssh both
run this code: they share the API, and which ``pssh`` is imported depends only on the
interpreter and ``PYTHONPATH`` that run.py gives the child."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import _common
import gevent

import pssh
from pssh.clients import ParallelSSHClient


def main(library: str, client_class: Any = ParallelSSHClient) -> None:
    args = _common.read_args()
    bench = _common.Bench(args)
    client = client_class(args["hosts"], user=args["user"], pkey=args["pkey"],
                          port=args["port"], num_retries=0, timeout=args["timeout"],
                          pool_size=args["pool_size"])
    if "copy" in args:
        copy(client, args, bench)
    else:
        run(client, args, bench)
    # The published package's own __version__ asks git, so it is read from its metadata.
    version = metadata.version(library) if library == "parallel-ssh" else pssh.__version__
    bench.report(library, version, pssh.__file__)


def run(client: Any, args: dict[str, Any], bench: _common.Bench) -> None:
    output = client.run_command(args["command"], stop_on_errors=False)
    if args["phases"]:  # the pool workload: wait for every command, then read
        bench.phase("started")
        client.join(output)
        bench.phase("finished")
    counts = [_read_lines(host_out) for host_out in output]
    client.join(output, consume_output=True)
    bench.phase("read")
    for host_out, (lines, error) in zip(output, counts):
        bench.check(host_out.host, host_out.exit_code, lines, error or host_out.exception)


COPY_METHODS = {("sftp", "up"): "copy_file", ("sftp", "down"): "copy_remote_file",
                ("scp", "up"): "scp_send", ("scp", "down"): "scp_recv"}


def copy(client: Any, args: dict[str, Any], bench: _common.Bench) -> None:
    """Copy to or from every host at once; downloads get the API's own ``_<host>`` suffix,
    uploads a per-host remote path through ``copy_args``."""
    spec = args["copy"]
    method = getattr(client, COPY_METHODS[(spec["protocol"], spec["direction"])])
    if spec["direction"] == "up":
        # Keys that parallel-ssh's scp_send requires; its copy_file formats with them too.
        paths = [{"local_file": spec["source"],
                  "remote_file": _common.destination(args, host)} for host in args["hosts"]]
        results = method("%(local_file)s", "%(remote_file)s", copy_args=paths)
    else:
        results = method(spec["source"], spec["destination"])
    gevent.joinall(results)
    for host, result in zip(args["hosts"], results):
        bench.check_copy(host, result.exception)


def _read_lines(host_out: Any) -> tuple[int, BaseException | None]:
    """Lines of one host's stdout, read to the end; the error that stopped it, if any."""
    lines = 0
    if host_out.exception is not None or host_out.stdout is None:
        return lines, None
    try:
        for _line in host_out.stdout:
            lines += 1
    except Exception as exc:  # a read timeout or a dropped connection fails this host
        return lines, exc
    return lines, None
