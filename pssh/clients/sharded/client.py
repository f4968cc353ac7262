"""The sharded client: the native parallel client's API over several worker processes.

Theory of operation
-------------------
One gevent hub is one core: past a few hundred hosts a
:class:`~pssh.clients.native.parallel.ParallelSSHClient` spends its time in key exchanges and
in moving bytes, on one core. :class:`ShardedSSHClient` splits the host list into
contiguous slices (:func:`pssh._shards.split`, as ``pssh.distributed`` does) and
gives each to a worker process running its own hub and its own ``ParallelSSHClient``
(see ``_worker``). The caller keeps one socket and one message loop per worker
(``_shard``), in its own hub, so it never blocks while workers work.

What the caller gets back are the real objects: ``run_command`` returns
:class:`~pssh.output.HostOutput`\\ s in host order, whose buffers the message loops
fill as frames arrive, so lines stream, ``buffer_limit`` and spooling to disk hold in
the caller, and ``join``, ``iter_completed`` and ``finished`` are the base client's.
Copies return :class:`~pssh.clients.base.parallel.HostResult`\\ s. Errors cross the
process boundary pickled, as the worker raised them, naming their host.

Everything is checked in the caller before any worker is asked: the constructor
builds (and never connects) a ``ParallelSSHClient`` over all the hosts, so bad
arguments fail exactly as they do there, and commands and copy paths are formatted
per host here, so a bad ``host_args`` entry fails the call before any host starts.
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Iterable
from functools import partial
from typing import Any

import gevent

from ..._commands import host_commands
from ..._deadline import check_timeout
from ..._known_hosts import DEFAULT_KNOWN_HOSTS, DEFAULT_POLICY, KnownHostsSetting
from ..._shards import share, split
from ..._ssh_settings import SSHConfigSetting
from ..._validate import check_buffer_limit, check_command, check_encoding
from ...config import HostConfig, configured_value
from ...constants import (
    DEFAULT_BUFFER_LIMIT,
    DEFAULT_HANDSHAKE_LIMIT,
    DEFAULT_RETRIES,
    RETRY_DELAY,
)
from ...exceptions import ShardError
from ...output import HostOutput
from ..base._from_ssh_config import remember_explicit
from ..base._waiting import OutputWaiting
from ..base.parallel import HostResult
from ..native import ParallelSSHClient
from ..native._local_files import Progress, check_local_source, copy_paths
from ._remote import RemoteStdin, failed_host
from ._shard import Shard, logger

__all__ = ["ShardedSSHClient"]

# Arguments the caller's checking client and each worker's client take differently.
_OWN = frozenset({"self", "hosts", "processes", "pool_size", "host_config",
                  "handshake_limit"})


class ShardedSSHClient(OutputWaiting):
    """Run commands and copy files on many hosts from several processes.

    The hosts are split in order into ``processes`` contiguous shards; each shard is
    served by a worker process with its own gevent hub and its own
    :class:`~pssh.clients.native.parallel.ParallelSSHClient`, so the client can use
    every core. The methods and what they return are those of ``ParallelSSHClient``: outputs in host
    order, streamed as the workers read them; copies as waitable per-host results.

    The parameters are ``ParallelSSHClient``'s, plus:

    :param processes: how many worker processes; by default one per core this process
        may run on, never more than there are hosts.
    :param pool_size: how many hosts are connected and started at once, in all: each
        worker gets its share (at least one).
    :param handshake_limit: connection set-ups at once per destination, in all: each
        worker gets its share, ``handshake_limit // processes`` but at least one, so
        the servers see no more than with one process unless there are more workers
        than the limit.

    Workers start at once, in the background (about 0.4 s of CPU each, in parallel;
    the first call waits for them). Stop them with :meth:`disconnect` or a ``with``
    block. A worker that dies fails only its own hosts' work, each with a
    :class:`~pssh.exceptions.WorkerLostError`; the next call starts a new one.

    Workers are started with multiprocessing's *spawn* method, so a script using this
    client must keep its top level under ``if __name__ == "__main__":``.

    :raises ValueError: ``processes`` is not a positive integer; or as
        ``ParallelSSHClient`` raises, for the same arguments.
    """

    _explicit: frozenset[str]  # the arguments the caller named, set by remember_explicit

    @remember_explicit
    def __init__(self, hosts: Iterable[str], user: str | None = None,
                 password: str | None = None, port: int = 22,
                 pkey: str | bytes | None = None, num_retries: int = DEFAULT_RETRIES,
                 timeout: float | None = None, pool_size: int = 100,
                 allow_agent: bool = True, host_config: list[HostConfig] | None = None,
                 retry_delay: float = RETRY_DELAY, proxy_host: str | None = None,
                 proxy_port: int | None = None, proxy_user: str | None = None,
                 proxy_password: str | None = None, proxy_pkey: str | bytes | None = None,
                 forward_ssh_agent: bool = False, keepalive_seconds: int | None = 60,
                 identity_auth: bool = True, ipv6_only: bool = False,
                 compress: bool = False, keyboard_interactive: bool = False, *,
                 known_hosts: KnownHostsSetting = DEFAULT_KNOWN_HOSTS,
                 host_key_policy: str = DEFAULT_POLICY,
                 ssh_config: SSHConfigSetting = None,
                 handshake_limit: int | None = DEFAULT_HANDSHAKE_LIMIT,
                 processes: int | None = None) -> None:
        given = dict(locals())
        settings = {name: given[name] for name in self._explicit if name not in _OWN}
        self._checked = ParallelSSHClient(hosts, pool_size=pool_size,
                                          host_config=host_config,
                                          handshake_limit=handshake_limit, **settings)
        self.handshake_limit = self._checked.handshake_limit
        self._hosts: list[str] = list(self._checked.hosts)
        self.host_config = host_config
        self.port = port
        self.timeout = self._checked.timeout
        self.pool_size = pool_size
        self.processes = _check_processes(processes, len(self._hosts))
        self._last_output: list[HostOutput] | None = None
        self._shards = self._make_shards(settings)
        self._closer = weakref.finalize(self, _abandon, self._shards)
        for shard in self._shards:
            shard.start()

    def _make_shards(self, settings: dict[str, Any]) -> list[Shard]:
        ranges = split(len(self._hosts), self.processes)
        pools = [len(share) for share in split(self.pool_size, len(ranges))]
        pools += [1] * (len(ranges) - len(pools))  # fewer pool slots than workers
        shards = []
        for index, positions in enumerate(ranges):
            worker_settings = dict(settings, pool_size=pools[index],
                                   handshake_limit=share(self.handshake_limit, len(ranges)))
            if self.host_config is not None:
                worker_settings["host_config"] = list(self.host_config[positions.start:
                                                                       positions.stop])
            shards.append(Shard(index, positions, self._hosts[positions.start:positions.stop],
                                [self._port_of(position) for position in positions],
                                worker_settings))
        return shards

    def _port_of(self, position: int) -> int:
        port: int | None = configured_value(self.host_config, position, "port")
        return self.port if port is None else port

    def _alias(self, position: int) -> str | None:
        alias: str | None = configured_value(self.host_config, position, "alias")
        return alias

    @property
    def hosts(self) -> list[str]:
        """The host list (a copy: the shards are fixed when the client is made)."""
        return list(self._hosts)

    def __repr__(self) -> str:
        running = sum(shard.is_alive() for shard in getattr(self, "_shards", []))
        return (f"<{type(self).__name__} {len(getattr(self, '_hosts', []))} hosts, "
                f"{running} of {getattr(self, 'processes', 0)} workers running>")

    def __enter__(self) -> ShardedSSHClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def disconnect(self) -> None:
        """Close every host's connection and stop the workers (each is reaped; one that
        has not exited after 10 seconds is killed). Outputs stay readable; the next call
        starts new workers."""
        gevent.joinall([gevent.spawn(shard.stop) for shard in self._shards],
                       raise_error=True)

    def worker_pids(self) -> list[int | None]:
        """The process id of each shard's worker, ``None`` for one not running."""
        return [shard.pid if shard.is_alive() else None for shard in self._shards]

    # -- commands -----------------------------------------------------------------------

    def run_command(self, command: str, sudo: bool = False, user: str | None = None,
                    stop_on_errors: bool = True, use_pty: bool = False,
                    host_args: Any = None, shell: str | None = None, encoding: str = "utf-8",
                    read_timeout: float | None = None, return_list: Any = None, *,
                    buffer_limit: int | None = DEFAULT_BUFFER_LIMIT,
                    spool_to_disk: bool = True) -> list[HostOutput]:
        """Start ``command`` on every host; one output per host, in host order, once
        every command has started. The parameters are
        :meth:`ParallelSSHClient.run_command
        <pssh.clients.native.parallel.ParallelSSHClient.run_command>`'s.

        Output lines arrive as the workers read them. ``buffer_limit`` and
        ``spool_to_disk`` apply in this process; with ``spool_to_disk=False`` a host
        whose unread output reaches the limit is not read any more until lines are
        taken (a few MiB already on their way still arrive).

        :raises HostArgumentError: ``host_args`` does not fit the hosts (before any host
            starts).
        :raises SSHError: with ``stop_on_errors``, the first failed host's error in host
            order; a :class:`~pssh.exceptions.WorkerLostError` if its worker died.
        """
        if return_list is not None:
            warnings.warn("run_command's return_list does nothing: output is always a "
                          "list; drop the argument", DeprecationWarning, stacklevel=2)
        check_timeout(read_timeout, "read_timeout")
        check_buffer_limit(buffer_limit)
        check_encoding(encoding)
        commands = host_commands(check_command(command), host_args, self._hosts)
        options = {"sudo": sudo, "user": user, "use_pty": use_pty, "shell": shell}
        calls = [(shard, *shard.run(commands[shard.positions.start:shard.positions.stop],
                                    options, buffer_limit, bool(spool_to_disk)))
                 for shard in self._shards]
        gevent.joinall([started for _, _, started in calls])
        output = []
        for shard, call_id, started in calls:
            for index, (error, command_line, reader) in enumerate(
                    self._started(shard, started, stop_on_errors)):
                position = shard.positions[index]
                host, alias = self._hosts[position], self._alias(position)
                if reader is None:
                    assert error is not None
                    if stop_on_errors:
                        raise error
                    logger.error("Host %s failed: %s", alias or host, error)
                    output.append(failed_host(host, shard.ports[index], error, alias,
                                              encoding, read_timeout))
                    continue
                stdin = RemoteStdin(reader.host, partial(shard.stdin, call_id, index))
                host_out = HostOutput(host, None, stdin, reader.host, alias=alias,
                                      exception=reader.error, encoding=encoding,
                                      read_timeout=read_timeout,
                                      buffers=reader.host_buffers(),
                                      fully_qualified_command=command_line)
                reader.output = weakref.ref(host_out)
                if not reader.is_done():
                    reader.owner = self
                output.append(host_out)
        self._last_output = output
        return output

    def _started(self, shard: Shard, started: Any, stop_on_errors: bool) -> list[Any]:
        """What the shard's worker started; if it could not run the command at all,
        each of its hosts failed with a :class:`~pssh.exceptions.ShardError` (raised,
        with ``stop_on_errors``)."""
        try:
            return list(started.get())
        except Exception as exc:
            if stop_on_errors:
                raise
            cause = exc
        failures = []
        for position in shard.positions:
            host = self._hosts[position]
            failure = ShardError(f"The worker process for host {host!r} could not run the "
                                 f"command: {cause}", host=host, port=self._port_of(position))
            failure.__cause__ = cause
            failures.append((failure, None, None))
        return failures

    # finished, join and iter_completed are OutputWaiting's, over ``_last_output``; a
    # host whose worker died meanwhile has a WorkerLostError on ``exception``.

    def get_last_output(self) -> list[HostOutput] | None:
        """The output of the last ``run_command``."""
        return self._last_output

    # -- file copies --------------------------------------------------------------------

    def copy_file(self, local_file: str, remote_file: str, recurse: bool = False,
                  copy_args: Any = None, *, progress: Progress | None = None,
                  ) -> list[HostResult]:
        """Upload ``local_file`` to every host with SFTP; as
        :meth:`ParallelSSHClient.copy_file
        <pssh.clients.native.parallel.ParallelSSHClient.copy_file>`. ``progress`` is called in
        this process, from the message loop."""
        return self._copy("copy_file", local_file, remote_file, True, copy_args, None,
                          {"recurse": recurse}, progress)

    def copy_remote_file(self, remote_file: str, local_file: str, recurse: bool = False,
                         suffix_separator: str = "_", copy_args: Any = None,
                         encoding: str = "utf-8", *, progress: Progress | None = None,
                         ) -> list[HostResult]:
        """Download ``remote_file`` from every host with SFTP; as
        :meth:`ParallelSSHClient.copy_remote_file
        <pssh.clients.native.parallel.ParallelSSHClient.copy_remote_file>`."""
        check_encoding(encoding)
        return self._copy("copy_remote_file", remote_file, local_file, False, copy_args,
                          suffix_separator, {"recurse": recurse, "encoding": encoding},
                          progress)

    def scp_send(self, local_file: str, remote_file: str, recurse: bool = False,
                 copy_args: Any = None, *, progress: Progress | None = None,
                 ) -> list[HostResult]:
        """Upload ``local_file`` to every host with SCP; as :meth:`ParallelSSHClient.scp_send
        <pssh.clients.native.parallel.ParallelSSHClient.scp_send>`."""
        return self._copy("scp_send", local_file, remote_file, True, copy_args, None,
                          {"recurse": recurse}, progress)

    def scp_recv(self, remote_file: str, local_file: str, recurse: bool = False,
                 copy_args: Any = None, suffix_separator: str = "_", *,
                 progress: Progress | None = None) -> list[HostResult]:
        """Download ``remote_file`` from every host with SCP; as
        :meth:`ParallelSSHClient.scp_recv
        <pssh.clients.native.parallel.ParallelSSHClient.scp_recv>`."""
        return self._copy("scp_recv", remote_file, local_file, False, copy_args,
                          suffix_separator, {"recurse": recurse}, progress)

    def _copy(self, method: str, source: str, destination: str, upload: bool,
              copy_args: Any, suffix_separator: str | None, options: dict[str, Any],
              progress: Progress | None) -> list[HostResult]:
        """Work out every host's paths here, as the native client does (so a bad
        ``copy_args`` entry fails the call before any host starts), then hand each
        shard its hosts' paths."""
        if method.startswith("scp"):
            source, destination = _scp_paths(source, destination, upload, copy_args)
        paths = copy_paths(self._hosts, source, destination, copy_args,
                           suffix_separator)
        if upload and len({each for each, _ in paths}) == 1:
            check_local_source(paths[0][0], options["recurse"], "any host")
        local, remote = ("%(local_file)s", "%(remote_file)s")
        templates = (local, remote) if upload else (remote, local)
        per_host = [{"local_file": path[0] if upload else path[1],
                     "remote_file": path[1] if upload else path[0]} for path in paths]
        results: list[HostResult] = []
        for shard in self._shards:
            results.extend(shard.copy(method, templates,
                                      per_host[shard.positions.start:shard.positions.stop],
                                      options, progress))
        return results

    # -- not offered --------------------------------------------------------------------

    def open_shell(self, *args: Any, **kwargs: Any) -> Any:
        """Not offered: an interactive shell belongs to one process. Use
        :class:`~pssh.clients.native.parallel.ParallelSSHClient` for shells.

        :raises NotImplementedError: always.
        """
        raise NotImplementedError("ShardedSSHClient runs no interactive shells; use "
                                  "pssh.clients.ParallelSSHClient for open_shell")


def _check_processes(processes: int | None, host_count: int) -> int:
    if processes is None:
        processes = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
    elif isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be an integer >= 1, not {processes!r}")
    return max(1, min(processes, host_count))


def _scp_paths(source: str, destination: str, upload: bool,
               copy_args: Any) -> tuple[str, str]:
    """parallel-ssh's SCP ``copy_args`` form (dicts with ``local_file`` and
    ``remote_file``) names both paths; in the order ``copy_paths`` takes them."""
    if copy_args and all(isinstance(entry, dict) and
                         {"local_file", "remote_file"} <= entry.keys() for entry in copy_args):
        local, remote = "%(local_file)s", "%(remote_file)s"
        return (local, remote) if upload else (remote, local)
    return source, destination


def _abandon(shards: list[Shard]) -> None:
    for shard in shards:
        shard.abandon()
