"""The worker side: the Dask task that runs one shard, and the clients each worker keeps.

Why one pssh thread per worker process
--------------------------------------
A gevent socket belongs to the hub of the thread that made it, and Dask runs tasks in a
thread pool: a cached ``ParallelSSHClient`` used from a second pool thread would wait on
a hub that nobody runs, and hang. So every use of pssh in a worker process, from making
a client to closing it, goes through one ``ThreadPoolExecutor`` with a single thread,
whose gevent hub owns every connection of that process. The Dask task thread only
hands the shard over and waits for its outcomes. Two shards on one worker therefore run
one after the other; the parallelism inside a shard is gevent's (``pool_size``).

The hub runs only while that thread works on a shard: between calls nothing reads the
idle connections, so no keepalive goes out. A connection the server dropped meanwhile is
made again on the next call (``ParallelSSHClient`` reconnects a host that is not
connected).

The cache
---------
Clients are kept per host settings: the shard's hosts with every client keyword, as an
HMAC-SHA-256 of their pickle under a key made at random in each worker process. Secrets
are part of it, so a changed password makes a new client; the random key means the
digest (logged at debug level, shortened) cannot be used to test guesses of a password.
A second call with the same hosts and settings reuses the connections; the least
recently used entry is closed once more than ``MAX_CACHED_CLIENTS`` are kept.

No shard runs twice
-------------------
When a worker dies, Dask gives its running tasks to another worker. A shard's command
may then have run in part, so the task first checks and sets a Dask ``Event`` named by
the shard: finding it set, the task returns a :class:`WorkerLostError` for each host
instead of running the command again.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from distributed import Event, get_worker

from ..clients.base.single import BaseSSHClient
from ..exceptions import SSHError, Timeout
from ..output import HostOutput
from ._outcome import HostOutcome, Shard, WorkerLostError

__all__ = ["MAX_CACHED_CLIENTS", "run_shard", "drop_clients"]

logger = logging.getLogger("pssh.distributed")

MAX_CACHED_CLIENTS = 16
"""Client sets (one per distinct hosts and settings) a worker process keeps connected."""

T = TypeVar("T")


class _ClientCache:
    """The worker process's pssh thread and the clients it owns.

    ``_clients`` is only touched on the pssh thread; the lock guards making the thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: ThreadPoolExecutor | None = None
        self._clients: OrderedDict[str, Any] = OrderedDict()

    def __repr__(self) -> str:
        return f"<_ClientCache {len(self._clients)} client sets>"

    def on_pssh_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on the pssh thread and wait for its value."""
        with self._lock:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="pssh-gevent")
            thread = self._thread
        return thread.submit(func, *args).result()

    def client_for(self, shard: Shard) -> Any:
        """The shard's ``ParallelSSHClient``: the cached one, or a new one."""
        engine = shard.settings.get("engine", "native")
        settings = {name: value for name, value in shard.settings.items() if name != "engine"}
        key = _digest(engine, shard.hosts, settings)
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        module = importlib.import_module(f"pssh.clients.{engine}")
        client = module.ParallelSSHClient(list(shard.hosts), **settings)
        logger.debug("new client %s for %d hosts", key[:12], len(shard.hosts))
        self._clients[key] = client
        while len(self._clients) > MAX_CACHED_CLIENTS:
            _, oldest = self._clients.popitem(last=False)
            oldest.disconnect()
        return client

    def clear(self) -> int:
        """Disconnect and forget every client; how many client sets there were."""
        clients, self._clients = self._clients, OrderedDict()
        for client in clients.values():
            client.disconnect()
        return len(clients)


_CACHE = _ClientCache()


_DIGEST_KEY = os.urandom(32)


def _digest(engine: str, hosts: tuple[str, ...], settings: dict[str, Any]) -> str:
    data = pickle.dumps((engine, hosts, sorted(settings.items())))
    return hmac.new(_DIGEST_KEY, data, hashlib.sha256).hexdigest()


def run_shard(shard: Shard) -> list[HostOutcome]:
    """The Dask task: run ``shard`` on this worker's pssh thread, once."""
    worker = get_worker().address
    started = Event(shard.guard)
    if started.is_set():
        return shard.failed(lambda host: WorkerLostError(
            f"The Dask worker running host {host!r} died after its {shard.operation} had "
            f"started; it may have run in part or to its end, so it was not started again",
            host=host), worker)
    started.set()
    return _CACHE.on_pssh_thread(_run_on_pssh_thread, shard, worker)


async def drop_clients() -> int:
    """Disconnect this worker's cached clients (run by ``Client.run``, in the worker's
    event loop, which must not block: the pssh thread may be busy with a shard)."""
    import asyncio

    return await asyncio.to_thread(_CACHE.on_pssh_thread, _CACHE.clear)


def _run_on_pssh_thread(shard: Shard, worker: str) -> list[HostOutcome]:
    try:
        client = _CACHE.client_for(shard)
        if shard.operation == "run_command":
            return _run_command(client, shard, worker)
        return _copy(client, shard, worker)
    except Exception as exc:
        # An error for the whole shard (a missing local file to upload, settings the
        # worker cannot use): every host carries it.
        error = exc
        return shard.failed(lambda host: error, worker)


def _run_command(client: Any, shard: Shard, worker: str) -> list[HostOutcome]:
    arguments = dict(shard.arguments)
    join_timeout = arguments.pop("join_timeout")
    output: list[HostOutput] = client.run_command(stop_on_errors=False, **arguments)
    unfinished: list[HostOutput] = []
    try:
        client.join(output, timeout=join_timeout)
    except Timeout as exc:
        unfinished = exc.unfinished_output
    return [_outcome_of(host_out, shard.start + offset, worker,
                        any(host_out is late for late in unfinished), join_timeout)
            for offset, host_out in enumerate(output)]


def _outcome_of(host_out: HostOutput, position: int, worker: str, late: bool,
                join_timeout: float | None) -> HostOutcome:
    if not late:
        stdout, stderr = _read_all(host_out)
        return HostOutcome(host_out.host, position, host_out.exit_code, stdout, stderr,
                           host_out.exception, worker)
    # Still running: keep the complete lines read so far, and disconnect the host (closing
    # only the channel would wait for the command to end: sshd closes a channel when its
    # command has exited). The cached client connects it again on the next call.
    assert host_out.buffers is not None and host_out.client is not None
    encoding = host_out.encoding
    stdout, stderr = (
        [raw.decode(encoding, "replace") for raw in stream.rw_buffer.drain()]
        for stream in (host_out.buffers.stdout, host_out.buffers.stderr))
    cast(BaseSSHClient, host_out.client).disconnect()
    error = Timeout(f"The command on host {host_out.host!r} was still running after "
                    f"join_timeout={join_timeout}s; its output so far is kept and the host "
                    f"disconnected", host=host_out.host, timeout=join_timeout)
    return HostOutcome(host_out.host, position, None, stdout, stderr, error, worker)


def _read_all(host_out: HostOutput) -> tuple[list[str], list[str]]:
    """A finished host's stdout and stderr lines. If its connection fails while they are
    read, the lines read so far are kept and the error lands on ``exception``."""
    stdout: list[str] = []
    stderr: list[str] = []
    try:
        stdout.extend(host_out.stdout)
        stderr.extend(host_out.stderr)
    except SSHError as exc:
        if host_out.exception is None:
            host_out.exception = exc
    return stdout, stderr


def _copy(client: Any, shard: Shard, worker: str) -> list[HostOutcome]:
    import gevent

    results = getattr(client, shard.operation)(**shard.arguments)
    gevent.joinall(results, raise_error=False)
    return [HostOutcome(host, shard.start + offset, exception=result.exception,
                        worker=worker)
            for offset, (host, result) in enumerate(zip(shard.hosts, results))]
