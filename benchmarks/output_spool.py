"""Big output that is waited for before it is read, and the per-line cost of reading.

Two measurements, each in a fresh child process that reports its own figures::

    .venv/bin/python benchmarks/output_spool.py [--hosts 5] [--size-mb 200] [--engine native]
    .venv/bin/python benchmarks/output_spool.py --lines-only --size-mb 200
    .venv/bin/python benchmarks/output_spool.py --buffer-limit-mb 0   # no limit: all in memory
    .venv/bin/python benchmarks/output_spool.py --loop-only   # the line loop alone, no sshd

``join-read``: every host prints ``size-mb`` MB of 100-byte lines (``fold -w 100`` over a
stream of ``x``), the client calls ``join`` and only then reads every line of every
host. Past ``buffer_limit`` (32 MiB by default) each stream's lines go to a temporary
file, so the figures are the process's peak RSS, the wall time of join and of the
reading, and the disk the temporary files held once join returned (the sum of the sizes
of the deleted files the process still had open).

``lines``: one host, the same stream read line by line as it arrives; client CPU (user +
sys from ``getrusage``) after the imports. This is the hot loop of ``HostOutput``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from pssh.testing import LocalSSHD  # noqa: E402  (needs the checkout on sys.path)

LINE = 100  # bytes per line, newline included: fold -w 99 plus its newline


def _command(size_mb: int) -> str:
    return f"head -c {size_mb * 1_000_000 // LINE * (LINE - 1)} /dev/zero | tr '\\0' x " \
           f"| fold -w {LINE - 1}"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _deleted_files_size() -> int:
    """Bytes held by files this process has open but that are deleted (temp files)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)"):
                total += os.fstat(int(fd)).st_size
        except OSError:
            continue
    return total


def line_loop(size_mb: int) -> float:
    """Best CPU seconds of five passes of ``HostOutput``'s line loop over ``size_mb`` MB of
    100-byte lines, fed by a fake reader in 64 KiB chunks: no network, no sshd."""
    from pssh import output as pssh_output

    chunk = (b"x" * (LINE - 1) + b"\n") * (64 * 1024 // LINE)
    chunks = size_mb * 1_000_000 // len(chunk)

    class FakeReader:
        def __init__(self) -> None:
            self.stdout = pssh_output.LineBuffer()
            self.stderr = pssh_output.LineBuffer()
            self.sent = 0

        def is_done(self) -> bool:
            return self.sent >= chunks

        def fill(self, deadline: float | None) -> None:
            for _ in range(16):  # about FILL_LIMIT per fill, as the engines take
                if self.sent < chunks:
                    self.stdout.feed(chunk)
                    self.sent += 1

        def poll_exit_code(self) -> int:
            return 0

    best = float("inf")
    for _ in range(5):
        reader = FakeReader()
        # buffers in this version's shape, or the reader itself in the older one
        buffers = reader if not hasattr(pssh_output, "HostOutputBuffers") else (
            pssh_output.HostOutputBuffers(pssh_output.BufferData(reader, reader.stdout),
                                          pssh_output.BufferData(reader, reader.stderr)))
        host_out = pssh_output.HostOutput("host", None, None, None, buffers=buffers)
        started = time.process_time()
        count = sum(1 for _ in host_out.stdout)
        best = min(best, time.process_time() - started)
        assert count == chunks * len(chunk) // LINE
    return best


def child(args: dict) -> None:
    """Run one measurement with pssh and print its figures as JSON."""
    module = "pssh.clients.native" if args["engine"] == "native" else "pssh.clients.ssh"
    client_class = __import__(module, fromlist=["ParallelSSHClient"]).ParallelSSHClient
    client = client_class(args["hosts"], user=args["user"], pkey=args["pkey"],
                          port=args["port"], num_retries=0, timeout=60)
    lines_each = args["size_mb"] * 1_000_000 // LINE
    cpu_before = _cpu()
    started = time.perf_counter()
    limit = args["buffer_limit_mb"]
    output = client.run_command(_command(args["size_mb"]),
                                buffer_limit=None if limit == 0 else limit * 1024 * 1024)
    result: dict = {}
    if args["mode"] == "join-read":
        client.join(output)
        result["join_wall"] = time.perf_counter() - started
        result["disk_mb"] = _deleted_files_size() / 1e6
    counts = [sum(1 for _ in host_out.stdout) for host_out in output]
    assert counts == [lines_each] * len(output), counts
    assert [host_out.exit_code for host_out in output] == [0] * len(output)
    result["wall"] = time.perf_counter() - started
    result["cpu"] = _cpu() - cpu_before
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    del output
    result["disk_mb_after"] = _deleted_files_size() / 1e6
    print(json.dumps(result))


def measure(server: LocalSSHD, hosts: int, size_mb: int, engine: str, mode: str,
            buffer_limit_mb: int = 32) -> dict:
    args = {"hosts": server.hosts[:hosts], "user": server.user, "pkey": server.pkey,
            "port": server.port, "size_mb": size_mb, "engine": engine, "mode": mode,
            "buffer_limit_mb": buffer_limit_mb}
    env = {**os.environ, "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {mode} child failed:\n{done.stderr}")
    result: dict = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="output per host, MB")
    parser.add_argument("--hosts", type=int, default=5, help="hosts for join-read")
    parser.add_argument("--engine", choices=["native", "ssh"], default="native")
    parser.add_argument("--buffer-limit-mb", type=int, default=32,
                        help="run_command's buffer_limit in MiB for join-read; 0 for None")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--lines-only", action="store_true",
                        help="only the one-host line-reading measurement")
    parser.add_argument("--loop-only", action="store_true",
                        help="only HostOutput's line loop over a fake reader (no sshd)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(json.loads(options.child))
        return 0
    if options.loop_only:
        print(f"line loop, {options.size_mb} MB of {LINE}-byte lines from a fake reader: "
              f"best CPU {line_loop(options.size_mb):.2f} s")
        return 0
    with LocalSSHD(num_hosts=options.hosts) as server:
        for _ in range(options.repeat):
            lines = measure(server, 1, options.size_mb, options.engine, "lines")
            print(f"lines ({options.engine}), 1 host x {options.size_mb} MB read as it "
                  f"arrives: client CPU {lines['cpu']:.2f} s, wall {lines['wall']:.2f} s, "
                  f"peak RSS {lines['rss_mb']:.0f} MB")
            if options.lines_only:
                continue
            big = measure(server, options.hosts, options.size_mb, options.engine,
                          "join-read", options.buffer_limit_mb)
            print(f"join-read ({options.engine}, buffer_limit "
                  f"{options.buffer_limit_mb or 'None'} MiB), {options.hosts} hosts x "
                  f"{options.size_mb} MB: join {big['join_wall']:.1f} s, join + read "
                  f"{big['wall']:.1f} s, client CPU {big['cpu']:.1f} s, peak RSS "
                  f"{big['rss_mb']:.0f} MB, temp files after join {big['disk_mb']:.0f} MB, "
                  f"after release {big['disk_mb_after']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
