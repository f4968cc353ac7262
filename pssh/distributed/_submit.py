"""The caller's side: check the arguments, cut the hosts into shards, submit one Dask
task per shard and hand back each host's outcome as its shard finishes."""

from __future__ import annotations

import dataclasses
import importlib
import os
import uuid
import weakref
from collections.abc import Generator, Iterable, Iterator
from typing import Any, Union

from distributed import Client, Event, Future, KilledWorker, as_completed

from .._commands import per_host_entries
from .._shards import share, split
from .._validate import check_command, check_hosts, check_pkey, read_key
from ..config import HostConfig
from ..constants import DEFAULT_HANDSHAKE_LIMIT
from ._outcome import HostOutcome, Shard, ShardError, WorkerLostError
from ._worker import drop_clients, run_shard

__all__ = ["run_command", "copy_file", "copy_remote_file", "scp_send", "scp_recv",
           "disconnect"]

ClientOrAddress = Union[Client, str]
_KEY_SETTINGS = ("pkey", "proxy_pkey")
_ENGINES = ("native", "ssh")


def run_command(client_or_address: ClientOrAddress, hosts: Iterable[str], command: str, *,
                shards: int | None = None, host_args: Iterable[Any] | None = None,
                sudo: bool = False, use_pty: bool = False, shell: str | None = None,
                encoding: str = "utf-8", join_timeout: float | None = None,
                engine: str = "native", **client_kwargs: Any) -> Outcomes:
    """Run ``command`` on every host, from the workers of a Dask cluster.

    The hosts are cut into ``shards`` contiguous runs, each run by one Dask task with a
    ``ParallelSSHClient`` that the worker keeps for the next call with the same hosts and
    settings. The tasks are submitted before this returns; the iterator then yields one
    :class:`HostOutcome` per host as each shard finishes, every host exactly once, in no
    set order (``position`` tells where a host was in ``hosts``). Closing the iterator
    after leaving the loop early (or letting it be collected) cancels the shards not
    started yet; a shard already running goes on to its end, and its outcomes are
    dropped.

    :param client_or_address: a ``distributed.Client``, or a scheduler's address for a
        client made for this call and closed when the iteration ends.
    :param hosts: the host names; a host may appear more than once.
    :param command: the command line; with ``host_args``, a ``%`` format string.
    :param shards: how many tasks; default one per worker of the cluster.
    :param host_args: one entry per host filling the command's placeholders.
    :param sudo: run the command through ``sudo``.
    :param use_pty: ask for a pseudo-terminal.
    :param shell: run the command with this shell, e.g. ``'bash -c'``.
    :param encoding: how output lines are decoded.
    :param join_timeout: seconds each shard waits for its commands; a host still running
        then has a :class:`~pssh.exceptions.Timeout` and the lines read so far, and is
        disconnected (the next call connects it again). ``None`` waits as long as the commands run.
    :param engine: ``'native'`` (libssh2) or ``'ssh'`` (libssh).
    :param client_kwargs: ``ParallelSSHClient`` keywords (``user``, ``port``, ``pkey``,
        ``timeout``, ``num_retries``, ``pool_size``, ``host_config`` with one entry per
        host...). A key given by path is read here, and its bytes sent to the workers.
    :raises TypeError: ``hosts`` is not a list of names, or a keyword is unknown.
    :raises ValueError: a setting (or ``shards``) is out of range.
    :raises HostArgumentError: ``host_args`` has fewer entries than there are hosts.
    :raises HostConfigError: ``host_config`` does not fit ``hosts``.
    :raises PKeyFileError: a key file cannot be read.
    """
    command = check_command(command)
    hosts = check_hosts(hosts)
    per_host = {"host_args": per_host_entries(host_args, hosts, "host_args")}
    arguments = {"command": command, "sudo": sudo, "use_pty": use_pty, "shell": shell,
                 "encoding": encoding, "join_timeout": join_timeout}
    return _submit(client_or_address, "run_command", hosts, shards, engine, client_kwargs,
                   arguments, per_host)


def copy_file(client_or_address: ClientOrAddress, hosts: Iterable[str], local_file: str,
              remote_file: str, *, recurse: bool = False,
              copy_args: Iterable[Any] | None = None, shards: int | None = None,
              **client_kwargs: Any) -> Outcomes:
    """Upload ``local_file`` to every host with SFTP, from the workers: the file must
    exist at that path on every worker (a shared file system, or copied there first).
    Outcomes come as in :func:`run_command`, without exit code or output; a failed
    host's ``exception`` is its :class:`~pssh.exceptions.SFTPError` (or connection
    error). See ``ParallelSSHClient.copy_file`` for ``recurse`` and ``copy_args``."""
    return _copy("copy_file", client_or_address, hosts, shards, client_kwargs, copy_args,
                 local_file=local_file, remote_file=remote_file, recurse=recurse)


def copy_remote_file(client_or_address: ClientOrAddress, hosts: Iterable[str],
                     remote_file: str, local_file: str, *, recurse: bool = False,
                     suffix_separator: str = "_", copy_args: Iterable[Any] | None = None,
                     encoding: str = "utf-8", shards: int | None = None,
                     **client_kwargs: Any) -> Outcomes:
    """Download ``remote_file`` from every host with SFTP to
    ``<local_file><suffix_separator><host>`` on the disk of the worker that ran the
    host's shard (``HostOutcome.worker`` names it). Outcomes as for :func:`copy_file`."""
    return _copy("copy_remote_file", client_or_address, hosts, shards, client_kwargs,
                 copy_args, remote_file=remote_file, local_file=local_file, recurse=recurse,
                 suffix_separator=suffix_separator, encoding=encoding)


def scp_send(client_or_address: ClientOrAddress, hosts: Iterable[str], local_file: str,
             remote_file: str, *, recurse: bool = False,
             copy_args: Iterable[Any] | None = None, shards: int | None = None,
             **client_kwargs: Any) -> Outcomes:
    """:func:`copy_file` with SCP."""
    return _copy("scp_send", client_or_address, hosts, shards, client_kwargs, copy_args,
                 local_file=local_file, remote_file=remote_file, recurse=recurse)


def scp_recv(client_or_address: ClientOrAddress, hosts: Iterable[str], remote_file: str,
             local_file: str, *, recurse: bool = False, suffix_separator: str = "_",
             copy_args: Iterable[Any] | None = None, shards: int | None = None,
             **client_kwargs: Any) -> Outcomes:
    """:func:`copy_remote_file` with SCP."""
    return _copy("scp_recv", client_or_address, hosts, shards, client_kwargs, copy_args,
                 remote_file=remote_file, local_file=local_file, recurse=recurse,
                 suffix_separator=suffix_separator)


def disconnect(client_or_address: ClientOrAddress) -> int:
    """Close the SSH connections every worker of the cluster keeps; the number of
    client sets (distinct hosts and settings) closed, over all workers. A worker busy
    with a shard closes its connections once that shard has finished."""
    client, owned = _client(client_or_address)
    try:
        closed: dict[str, int] = client.run(drop_clients)
    finally:
        if owned:
            client.close()
    return sum(closed.values())


def _copy(operation: str, client_or_address: ClientOrAddress, hosts: Iterable[str],
          shards: int | None, client_kwargs: dict[str, Any],
          copy_args: Iterable[Any] | None, **arguments: Any) -> Outcomes:
    checked = check_hosts(hosts)
    per_host = {"copy_args": per_host_entries(copy_args, checked, "copy_args")}
    return _submit(client_or_address, operation, checked, shards, "native", client_kwargs,
                   arguments, per_host)


def _submit(client_or_address: ClientOrAddress, operation: str, hosts: list[str],
            shards: int | None, engine: str, client_kwargs: dict[str, Any],
            arguments: dict[str, Any], per_host: dict[str, list[Any] | None],
            ) -> Outcomes:
    if shards is not None and (isinstance(shards, bool) or not isinstance(shards, int)
                               or shards < 1):
        raise ValueError(f"shards must be an integer >= 1 or None, not {shards!r}")
    settings = _checked_settings(engine, hosts, client_kwargs)
    client, owned = _client(client_or_address)
    try:
        workers = sorted(client.nthreads())
        count = shards if shards is not None else max(1, len(workers))
        # Shards may reach the same servers at once: they share the handshake limit.
        # (0 and None both mean no limit; the value was checked by _checked_settings.)
        settings = {**settings, "handshake_limit": share(
            settings.get("handshake_limit", DEFAULT_HANDSHAKE_LIMIT) or None, count)}
        token = uuid.uuid4().hex
        futures = {}
        for index, positions in enumerate(split(len(hosts), count)):
            shard = _shard(operation, hosts, positions, settings, arguments, per_host,
                           f"pssh-{operation}-{token}-{index}")
            # A shard goes to the same worker each call (while the workers stay), where
            # its connections are; anywhere else if that worker is gone.
            preferred = [workers[index % len(workers)]] if workers else None
            future = client.submit(run_shard, shard, key=shard.guard, workers=preferred,
                                   allow_other_workers=True, pure=False)
            futures[future] = shard
    except BaseException:
        if owned:
            client.close()
        raise
    return Outcomes(client, futures, owned)


def _shard(operation: str, hosts: list[str], positions: range, settings: dict[str, Any],
           arguments: dict[str, Any], per_host: dict[str, list[Any] | None],
           guard: str) -> Shard:
    cut = slice(positions.start, positions.stop)
    settings = dict(settings)
    if settings.get("host_config") is not None:
        settings["host_config"] = settings["host_config"][cut]
    arguments = dict(arguments)
    arguments.update((name, None if values is None else values[cut])
                     for name, values in per_host.items())
    return Shard(operation, positions.start, tuple(hosts[cut]), settings, arguments, guard)


class Outcomes(Iterator[HostOutcome]):
    """One call's per-host outcomes, each shard's as soon as it finishes.

    Iterate it, or ``close()`` it (a ``with`` block does) to cancel the shards not
    finished yet: Dask cannot stop one that is already running. An ``Outcomes`` that is
    dropped, read or not, is closed too, so a scheduler connection made for the call
    never outlives it.
    """

    def __init__(self, client: Client, futures: dict[Future[list[HostOutcome]], Shard],
                 owned: bool) -> None:
        self._stream = _stream(client, futures)
        self._closer = weakref.finalize(self, _finish, client, futures, owned)

    def __next__(self) -> HostOutcome:
        try:
            return next(self._stream)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Cancel the shards not finished yet and let go of the scheduler connection."""
        self._stream.close()
        self._closer()

    def __enter__(self) -> Outcomes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _stream(client: Client, futures: dict[Future[list[HostOutcome]], Shard],
            ) -> Generator[HostOutcome, None, None]:
    """Yield the outcomes of each shard as it finishes, taking it out of ``futures``."""
    for future in as_completed(list(futures), loop=client.loop):
        shard = futures.pop(future)
        outcomes = _outcomes_of(future, shard)
        # Released first: Dask recomputes a result that is lost while a client still
        # wants it, and with its guard cleared that rerun would run the command again.
        future.release()
        Event(shard.guard, client).clear()
        yield from outcomes


def _finish(client: Client, futures: dict[Future[list[HostOutcome]], Shard],
            owned: bool) -> None:
    """Cancel the shards still in ``futures``; close ``client`` if it was made here."""
    try:
        if futures:
            client.cancel(list(futures))
            for shard in futures.values():
                Event(shard.guard, client).clear()
            futures.clear()
    finally:
        if owned:
            client.close()


def _outcomes_of(future: Future[list[HostOutcome]], shard: Shard) -> list[HostOutcome]:
    try:
        outcomes: list[HostOutcome] = future.result()
        return outcomes
    except KilledWorker as exc:
        cause: BaseException = exc

        def lost(host: str) -> BaseException:
            error = WorkerLostError(
                f"Dask workers kept dying while running host {host!r}'s "
                f"{shard.operation} ({cause}); it may have run in part", host=host)
            error.__cause__ = cause
            return error
        return shard.failed(lost)
    except Exception as exc:
        failure: BaseException = exc

        def failed(host: str) -> BaseException:
            error = ShardError(f"The Dask task running host {host!r}'s {shard.operation} "
                               f"failed: {failure!r}", host=host)
            error.__cause__ = failure
            return error
        return shard.failed(failed)


def _client(client_or_address: ClientOrAddress) -> tuple[Client, bool]:
    """The Dask client to use, and whether it was made here (and must be closed here)."""
    if isinstance(client_or_address, Client):
        return client_or_address, False
    if isinstance(client_or_address, str):
        return Client(client_or_address, set_as_default=False), True
    raise TypeError(f"client_or_address must be a distributed.Client or a scheduler "
                    f"address, not {client_or_address!r:.100}")


def _checked_settings(engine: str, hosts: list[str], client_kwargs: dict[str, Any],
                      ) -> dict[str, Any]:
    """``client_kwargs`` checked by making (not connecting) a ``ParallelSSHClient`` here,
    with key files read into bytes: the workers need not have them."""
    if engine not in _ENGINES:
        raise ValueError(f"engine must be one of {', '.join(_ENGINES)}, not {engine!r}")
    module = importlib.import_module(f"pssh.clients.{engine}")
    module.ParallelSSHClient(hosts, **client_kwargs)
    settings = {**client_kwargs, "engine": engine}
    keys: dict[str, bytes | None] = {}
    for name in _KEY_SETTINGS:
        if name in settings:
            settings[name] = _key_bytes(settings[name], keys)
    config = settings.get("host_config")
    if config is not None:
        settings["host_config"] = [_with_key_bytes(entry, keys) for entry in config]
    return settings


def _with_key_bytes(entry: HostConfig, keys: dict[str, bytes | None]) -> HostConfig:
    """``entry``, or a copy of it with its key paths replaced by the keys' bytes."""
    private_key = _key_bytes(entry.private_key, keys)
    proxy_pkey = _key_bytes(entry.proxy_pkey, keys)
    if private_key is entry.private_key and proxy_pkey is entry.proxy_pkey:
        return entry
    return dataclasses.replace(entry, private_key=private_key, proxy_pkey=proxy_pkey)


def _key_bytes(pkey: Any, keys: dict[str, bytes | None]) -> Any:
    """A private key's bytes for a key path (each file read once), else ``pkey``."""
    if not isinstance(pkey, (str, os.PathLike)):
        return pkey
    pkey = os.fspath(pkey)
    if pkey not in keys:
        keys[pkey] = read_key(check_pkey(pkey))
    return keys[pkey]

