"""Where one held-open connection's memory goes, on both of pssh's engines.

Two measurements, each in a fresh child process on one local sshd, each the difference
between ``--hosts`` connections and none, divided by ``--hosts``:

- ``libssh2 stages``: ssh2-python's calls one by one (blocking, on plain sockets, no pssh
  code): the socket, ``Session()``, the handshake, authentication, a channel, the
  command and reading its output. For each, the C heap it added (glibc's ``mallinfo2``)
  and the anonymous memory (``/proc/self/smaps_rollup``) the process gained.
- ``pssh``: ``ParallelSSHClient.run_command`` on every host (``pssh.clients.native``
  and ``pssh.clients.ssh``), output read and joined, connections still open: anonymous
  memory and the C heap per connection, and the Python objects among them
  (``tracemalloc``, run separately because tracing costs memory of its own).

    python benchmarks/connection_memory.py --hosts 200
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from pssh.testing import LocalSSHD  # noqa: E402  (needs the checkout on sys.path)

ENGINES = {"native (libssh2)": "pssh.clients.native", "ssh (libssh)": "pssh.clients.ssh"}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def heap_bytes() -> int:
    """Bytes glibc's malloc has handed out and not got back (small and mmapped blocks)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def anonymous_kb() -> int:
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Anonymous:"):
                return int(line.split()[1])
    raise RuntimeError("no Anonymous line in /proc/self/smaps_rollup")


def libssh2_stages(args: dict[str, Any]) -> dict[str, Any]:
    """Child: ssh2-python's calls one by one over every host; KB per connection each."""
    import socket

    from ssh2.session import Session

    hosts = args["hosts"]
    with open(args["pkey"], "rb") as key_file:
        key = key_file.read()
    held: dict[str, list[Any]] = {}
    steps = [
        ("socket", lambda host: socket.create_connection((host, args["port"]))),
        ("Session()", lambda host: Session()),
        ("handshake", lambda index: held["Session()"][index].handshake(
            held["socket"][index])),
        ("authentication", lambda index: held["Session()"][index]
         .userauth_publickey_frommemory(args["user"], key)),
        ("channel", lambda index: held["Session()"][index].open_session()),
        ("command", lambda index: held["channel"][index].execute("echo hello")),
        ("output read", lambda index: _read_all(held["channel"][index])),
    ]
    result: dict[str, Any] = {}
    for name, step in steps:
        heap, anon = heap_bytes(), anonymous_kb()
        items = hosts if name in ("socket", "Session()") else range(len(hosts))
        held[name] = [step(item) for item in items]
        result[name] = {"heap_kb": (heap_bytes() - heap) / 1024 / len(hosts),
                        "anon_kb": (anonymous_kb() - anon) / len(hosts)}
    return result


def _read_all(channel: Any) -> None:
    while channel.read()[0] > 0:
        pass
    channel.wait_eof()


def pssh_connections(args: dict[str, Any]) -> dict[str, Any]:
    """Child: every host connected with one engine's ParallelSSHClient, output read."""
    import importlib
    import tracemalloc

    if args["trace"]:
        tracemalloc.start()
    engine = importlib.import_module(args["engine"])
    heap, anon = heap_bytes(), anonymous_kb()
    traced = tracemalloc.get_traced_memory()[0]
    client = engine.ParallelSSHClient(args["hosts"], user=args["user"], pkey=args["pkey"],
                                      port=args["port"], num_retries=0, timeout=60)
    output = client.run_command("echo hello", stop_on_errors=False)
    client.join(output, consume_output=True)
    if any(host_out.exit_code != 0 for host_out in output):
        raise SystemExit("a host failed")
    count = len(args["hosts"])
    return {"heap_kb": (heap_bytes() - heap) / 1024 / count,
            "anon_kb": (anonymous_kb() - anon) / count,
            "python_kb": (tracemalloc.get_traced_memory()[0] - traced) / 1024 / count}


def in_child(function: str, args: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": REPO}
    child = subprocess.run([sys.executable, __file__, "--child", function, json.dumps(args)],
                           capture_output=True, text=True, env=env, check=False)
    if child.returncode != 0:
        raise SystemExit(f"{function} failed: {child.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(child.stdout.splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        function = {"stages": libssh2_stages, "pssh": pssh_connections}[argv[1]]
        print(json.dumps(function(json.loads(argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    args = parser.parse_args(argv)
    with LocalSSHD(num_hosts=args.hosts, start_timeout=120) as server:
        base = {"hosts": server.hosts, "port": server.port, "user": server.user,
                "pkey": server.pkey}
        print(f"KB per connection, {args.hosts} connections held open\n")
        print("| libssh2 (ssh2-python), step | C heap KB | anonymous memory KB |\n"
              "|---|---:|---:|")
        for name, step in in_child("stages", base).items():
            print(f"| {name} | {step['heap_kb']:.1f} | {step['anon_kb']:.1f} |")
        print("\n| pssh engine | anonymous memory KB | C heap KB | Python objects KB "
              "(tracemalloc) |\n|---|---:|---:|---:|")
        for label, module in ENGINES.items():
            plain = in_child("pssh", {**base, "engine": module, "trace": False})
            traced = in_child("pssh", {**base, "engine": module, "trace": True})
            print(f"| {label} | {plain['anon_kb']:.1f} | {plain['heap_kb']:.1f} | "
                  f"{traced['python_kb']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
