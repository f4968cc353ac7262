"""Fan-out over many hosts, engine-independent.

``run_command`` starts one greenlet per host in a gevent pool of ``pool_size``; each
connects its host position's client (made once, then reused) and starts the command.
It returns when every command has started, one :class:`~pssh.output.HostOutput` per
host position in host order. ``join`` then waits on all of them at once under one
deadline, reading their output as it arrives so no remote command stalls on a full
channel window; ``iter_completed`` does the same and hands each output over as it ends.

The module is longer than the house limit because ``BaseParallelSSHClient`` keeps
parallel-ssh's whole parallel API (its full constructor, shells, ``get_last_output``...)
besides the fan-out, the per-host settings and the checks made before connecting.
"""

from __future__ import annotations

import inspect
import logging

# gevent's AsyncResult.set_exception imports pickle inside the call, to keep the
# traceback. A process out of file descriptors cannot import it then, so the failure of a
# host would itself fail and its result never be set (run_command would never return).
# Imported here, recording a host's failure opens no file.
import pickle  # noqa: F401
import warnings
from collections.abc import Callable, Iterable
from dataclasses import fields
from functools import partial
from typing import Any

import gevent
from gevent import Greenlet, GreenletExit
from gevent.event import AsyncResult
from gevent.pool import Pool

from ..._commands import host_commands
from ..._deadline import check_timeout
from ..._known_hosts import DEFAULT_KNOWN_HOSTS, DEFAULT_POLICY, KnownHosts, KnownHostsSetting
from ..._ssh_settings import HostSettings, SSHConfigSetting, open_config
from ..._validate import (
    check_buffer_limit,
    check_command,
    check_count,
    check_encoding,
    check_hosts,
    check_pkey,
    check_port,
    check_seconds_or_none,
    check_text,
    read_key,
)
from ...config import HostConfig, configured_value
from ...constants import (
    DEFAULT_BUFFER_LIMIT,
    DEFAULT_HANDSHAKE_LIMIT,
    DEFAULT_RETRIES,
    RETRY_DELAY,
)
from ...exceptions import (
    HostConfigError,
    ShellError,
    SSHError,
    Timeout,
)
from ...output import HostOutput
from ._descriptors import make_room
from ._from_ssh_config import fill, log_engine_gaps, remember_explicit, resolve
from ._handshakes import HandshakeSlots, check_handshake_limit
from ._host_keys import check_host_key_settings
from ._seams import where
from ._waiting import OutputWaiting, check_items
from .shell import InteractiveShell
from .single import BaseSSHClient, check_keyboard_interactive, warn_agent_forwarding_ignored

__all__ = ["BaseParallelSSHClient", "HostResult", "spawn_with_result"]

logger = logging.getLogger("pssh.clients")


# HostConfig field name -> SSHClient keyword, where they differ.
_CLIENT_KEYWORD = {"private_key": "pkey", "auth_thread_pool": "_auth_thread_pool",
                   "hostname": "_hostname", "identity_files": "_identity_files"}


_SETTING_KEYWORDS = tuple(_CLIENT_KEYWORD.get(field.name, field.name)
                          for field in fields(HostConfig) if field.name != "alias")
"""The per-host settings, under the single-host client's keyword names."""


_KEYWORDS: dict[type, frozenset[str]] = {}


def _keywords_of(client_class: type) -> frozenset[str]:
    """The keyword arguments ``client_class`` takes."""
    keywords = _KEYWORDS.get(client_class)
    if keywords is None:
        keywords = _KEYWORDS[client_class] = frozenset(
            inspect.signature(client_class).parameters)
    return keywords


class BaseParallelSSHClient(OutputWaiting):
    """What every engine's ``ParallelSSHClient`` shares, with parallel-ssh's signature
    for classes that derive from it. An engine names its ``_client_class``; every
    setting here that the engine's ``SSHClient`` takes is passed on to each host's
    client (see :meth:`_host_settings`), the others are refused before connecting if
    asked for."""

    _client_class: type[BaseSSHClient] = BaseSSHClient

    @remember_explicit
    def __init__(self, hosts: Iterable[str], user: str | None = None,
                 password: str | None = None, port: int | None = None,
                 pkey: str | bytes | None = None, allow_agent: bool = True,
                 num_retries: int = DEFAULT_RETRIES, timeout: float | None = 120,
                 pool_size: int = 100, host_config: Any = None,
                 retry_delay: float = RETRY_DELAY, identity_auth: bool = True,
                 ipv6_only: bool = False, proxy_host: str | None = None,
                 proxy_port: int | None = None, proxy_user: str | None = None,
                 proxy_password: str | None = None, proxy_pkey: str | bytes | None = None,
                 keepalive_seconds: int | None = None, cert_file: str | None = None,
                 gssapi_auth: bool = False, gssapi_server_identity: str | None = None,
                 gssapi_client_identity: str | None = None,
                 gssapi_delegate_credentials: bool = False, forward_ssh_agent: bool = False,
                 compress: bool = False, keyboard_interactive: bool = False,
                 _auth_thread_pool: bool = True, *,
                 known_hosts: KnownHostsSetting = DEFAULT_KNOWN_HOSTS,
                 host_key_policy: str = DEFAULT_POLICY,
                 ssh_config: SSHConfigSetting = None,
                 handshake_limit: int | None = DEFAULT_HANDSHAKE_LIMIT) -> None:
        self.hosts = hosts
        self.user = check_text(user, "user")
        self.password = check_text(password, "password")
        self.port = check_port(22 if port is None else port)
        self.pkey = check_pkey(pkey)
        self.allow_agent = allow_agent
        self.num_retries = check_count(num_retries, "num_retries")
        # 0 means no limit, as in parallel-ssh and libssh2.
        self.timeout = check_timeout(timeout) or None
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be an integer >= 1, not {pool_size!r}")
        self.pool_size = pool_size
        self.pool = Pool(pool_size)
        self.handshake_limit = handshake_limit
        self.host_config = host_config
        self.retry_delay = check_timeout(retry_delay, "retry_delay")
        self.identity_auth = identity_auth
        self.ipv6_only = ipv6_only
        self.proxy_host = proxy_host
        self.proxy_port = check_port(22 if proxy_port is None else proxy_port, proxy_host)
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.proxy_pkey = check_pkey(proxy_pkey, proxy_host)
        self.keepalive_seconds = check_seconds_or_none(keepalive_seconds, "keepalive_seconds")
        self.cert_file = None if cert_file is None else check_pkey(cert_file)
        self.gssapi_auth = gssapi_auth
        self.gssapi_server_identity = gssapi_server_identity
        self.gssapi_client_identity = gssapi_client_identity
        self.gssapi_delegate_credentials = gssapi_delegate_credentials
        self.forward_ssh_agent = forward_ssh_agent
        self.compress = compress
        self.keyboard_interactive = keyboard_interactive
        self._auth_thread_pool = _auth_thread_pool
        self.ssh_config = ssh_config
        if ssh_config is not None and ssh_config is not False:
            open_config(ssh_config)  # a missing or bad file fails here, not per host
        self._file_settings: dict[tuple[str, Any, Any], HostSettings] = {}
        self.known_hosts = known_hosts
        self.host_key_policy = host_key_policy
        self._known_hosts_files: dict[tuple[str, ...], KnownHosts] = {}
        self.cmds: list[AsyncResult] | None = None
        self._last_output: list[HostOutput] | None = None
        self._keys: dict[str, bytes] = {}

    @property
    def hosts(self) -> list[str]:
        """The host list; assigning a new one keeps the clients of unchanged positions and
        drops the others (their outputs stay readable)."""
        return self._hosts

    @hosts.setter
    def hosts(self, hosts: Iterable[str]) -> None:
        # A client whose position changes is dropped, not disconnected: outputs it
        # returned stay readable (as in parallel-ssh), and its connection closes once
        # they are gone too.
        new_hosts = check_hosts(hosts)
        old_clients: dict[tuple[int, str], BaseSSHClient] = getattr(self, "_host_clients", {})
        self._host_clients = {key: client for key, client in old_clients.items()
                              if key[0] < len(new_hosts) and new_hosts[key[0]] == key[1]}
        self._hosts = new_hosts

    @property
    def handshake_limit(self) -> int | None:
        """Hosts at most between TCP connect and the end of authentication at once, per
        destination (address and port); ``None`` for no limit. Assigning applies to
        connections made afterwards."""
        return self._handshakes.limit

    @handshake_limit.setter
    def handshake_limit(self, limit: int | None) -> None:
        self._handshakes = HandshakeSlots(check_handshake_limit(limit))

    def __repr__(self) -> str:
        # Safe on an object whose __init__ failed part way (a traceback may show it).
        hosts, clients = getattr(self, "_hosts", []), getattr(self, "_host_clients", {})
        return (f"<{type(self).__name__} {len(hosts)} hosts, {len(clients)} connected, "
                f"pool_size={getattr(self, 'pool_size', None)}>")

    def __enter__(self) -> BaseParallelSSHClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def disconnect(self) -> None:
        """Close every host's connection."""
        clients, self._host_clients = self._host_clients, {}
        for client in clients.values():
            client.disconnect()

    # -- per-host clients ---------------------------------------------------------------

    def _make_client(self, position: int, host: str) -> BaseSSHClient:
        return self._client_class(host, **self._client_settings(position))

    def _read_keys(self, settings: dict[str, Any], host: str) -> None:
        """Read the key files ``settings`` name, once per client: connections then use
        the bytes and open no file (with thousands of hosts, descriptors run short)."""
        for name in ("pkey", "proxy_pkey"):
            path = settings.get(name)
            if isinstance(path, str) and path not in self._keys:
                key = read_key(path, host)
                assert key is not None
                self._keys[path] = key

    def _client_settings(self, position: int) -> dict[str, Any]:
        """:meth:`_host_settings` with key files replaced by the bytes read from them."""
        settings = self._host_settings(position)
        for name in ("pkey", "proxy_pkey"):
            path = settings.get(name)
            if isinstance(path, str) and path in self._keys:
                settings[name] = self._keys[path]
        if "known_hosts" in settings:
            settings["known_hosts"] = self._shared_known_hosts(settings, self.hosts[position])
        if self._handshakes.limit is not None and "_handshakes" in _keywords_of(
                self._client_class):
            settings["_handshakes"] = self._handshakes
        return settings

    def _shared_known_hosts(self, settings: dict[str, Any], host: str) -> KnownHosts | None:
        """The parsed known_hosts files of a host's ``settings``, parsed once for every
        host and proxy of this client that names the same files; ``None`` when its
        host key is not checked."""
        _, paths = check_host_key_settings(settings["known_hosts"],
                                           settings["host_key_policy"], f"host {host!r}")
        if paths is None:
            return None
        if isinstance(settings["known_hosts"], KnownHosts):
            return settings["known_hosts"]
        found = self._known_hosts_files.get(paths)
        if found is None:
            found = self._known_hosts_files[paths] = KnownHosts(paths)
        return found

    def _for_each_host(self, work: Callable[[int, str], Any], busy_descriptors: int = 0,
                       ) -> list[HostResult]:
        """Run ``work(position, host)`` for every host in the pool; one result per host,
        in host order.

        Every operation that connects hosts comes through here. Before anything connects,
        it makes sure the process may open a descriptor for each host not yet connected
        (more where the engine or a proxy needs them), plus ``busy_descriptors`` for each
        host ``work`` runs for at once (a local file a copy reads); see
        ``pssh.clients.base._descriptors``.

        :raises OpenFilesLimitError: the process's hard limit on open files is too low.
        """
        hosts = self._hosts
        waiting = [position for position, host in enumerate(hosts)
                   if not self._is_connected(position, host)]
        if waiting:
            busy = busy_descriptors * min(self.pool_size, len(hosts))
            make_room(self._descriptors_to_connect(waiting) + busy, len(waiting))
        pool = self.pool
        return [spawn_with_result(pool, work, position, host)
                for position, host in enumerate(hosts)]

    def _is_connected(self, position: int, host: str) -> bool:
        client = self._host_clients.get((position, host))
        return client is not None and client.is_connected()

    def _descriptors_to_connect(self, positions: list[int]) -> int:
        """The descriptors that connecting the hosts at ``positions`` keeps open."""
        return len(positions) * self._client_class._DESCRIPTORS

    def _client_for(self, position: int, host: str) -> BaseSSHClient:
        key = (position, host)
        client = self._host_clients.get(key)
        if client is None or not client.is_connected():
            client = self._make_client(position, host)
            self._host_clients[key] = client
        return client

    def _alias(self, position: int) -> str | None:
        alias: str | None = configured_value(self.host_config, position, "alias")
        return alias

    def _host_settings(self, position: int) -> dict[str, Any]:
        """The keyword arguments of the ``SSHClient`` at ``position``: this client's value
        of every per-host setting, overridden by the host's ``HostConfig`` values that are
        set (falsy ones included). Settings the engine's client does not take are left
        out; ``_check_host_settings`` has refused those that were asked for."""
        accepted = _keywords_of(self._client_class)
        settings = {keyword: getattr(self, keyword) for keyword in _SETTING_KEYWORDS
                    if keyword in accepted and hasattr(self, keyword)}
        file_settings = self._settings_from_file(position)
        if file_settings is not None:
            fill(settings, accepted, getattr(self, "_explicit", frozenset()), file_settings)
        if self.host_config is not None and position < len(self.host_config):
            overrides = self.host_config[position].overrides()
            settings.update((keyword, value) for name, value in overrides.items()
                            if (keyword := _CLIENT_KEYWORD.get(name, name)) in accepted)
        settings.setdefault("alias", self._alias(position))
        return settings

    def _settings_from_file(self, position: int) -> HostSettings | None:
        """What ``ssh_config`` says about the host at ``position`` (``None`` without
        one), looked up as ``ssh -l user -p port host`` would with the user and port the
        caller gave (this client's, or the host's ``HostConfig``)."""
        if self.ssh_config is None or self.ssh_config is False:
            return None
        explicit: frozenset[str] = getattr(self, "_explicit", frozenset())
        user = self.user if "user" in explicit else None
        port = self.port if "port" in explicit else None
        if self.host_config is not None and position < len(self.host_config):
            entry = self.host_config[position]
            user = entry.user if entry.user is not None else user
            port = entry.port if entry.port is not None else port
        key = (self._hosts[position], user, port)
        found = self._file_settings.get(key)
        if found is None:
            found = self._file_settings[key] = resolve(self.ssh_config, *key)
        return found

    def _check_host_settings(self) -> None:
        """Refuse, before anything connects, what no host's client could take: a
        ``host_config`` that does not fit, missing key files, agent forwarding, and what
        the engine refuses (:meth:`_check_engine_settings`)."""
        config = self.host_config
        if config is not None:
            if not isinstance(config, (list, tuple)) or not all(
                    isinstance(entry, HostConfig) for entry in config):
                raise HostConfigError("host_config must be a list of HostConfig, one per host")
            if len(config) != len(self.hosts):
                raise HostConfigError(f"host_config has {len(config)} entries for "
                                      f"{len(self.hosts)} hosts; give one per host")
        library = self._client_class._LIBRARY
        warn_agent_forwarding_ignored(self.forward_ssh_agent, "every host", library)
        # Without host_config (or ssh_config) every host has the same settings: check
        # the first host's.
        entries = config if config is not None else [HostConfig()][:len(self.hosts)]
        if config is None and self.ssh_config:
            entries = [HostConfig()] * len(self.hosts)
        if self.ssh_config:
            log_engine_gaps([self._settings_from_file(position)
                             for position in range(len(self.hosts))],
                            _keywords_of(self._client_class))
        for position, entry in enumerate(entries):
            host = self.hosts[position]
            check_pkey(entry.private_key, host)
            check_pkey(entry.proxy_pkey, host)
            warn_agent_forwarding_ignored(entry.forward_ssh_agent, f"host {host!r}", library)
            settings = self._host_settings(position)
            self._read_keys(settings, host)
            if "known_hosts" in settings:
                self._shared_known_hosts(settings, host)
            check_keyboard_interactive(settings.get("keyboard_interactive"),
                                       settings.get("password"), host)
            self._check_engine_settings(entry, settings, host)

    def _check_engine_settings(self, entry: HostConfig, settings: dict[str, Any],
                               host: str) -> None:
        """Refuse what this engine cannot do for ``host`` (its ``HostConfig`` ``entry``
        and its resulting ``settings``)."""

    # -- commands -----------------------------------------------------------------------

    def run_command(self, command: str, sudo: bool = False, user: str | None = None,
                    stop_on_errors: bool = True, use_pty: bool = False,
                    host_args: Any = None, shell: str | None = None, encoding: str = "utf-8",
                    read_timeout: float | None = None, return_list: Any = None, *,
                    buffer_limit: int | None = DEFAULT_BUFFER_LIMIT,
                    spool_to_disk: bool = True) -> list[HostOutput]:
        """Start ``command`` on every host; return one output per host, in host order.

        Returns once every command has started (or its host failed).

        :param command: the command line; with ``host_args``, a ``%`` format string.
        :param sudo: run it through ``sudo``.
        :param user: run it as this user through ``sudo -u``.
        :param stop_on_errors: raise the first host's failure; with ``False`` the failure
            is stored on that host's ``HostOutput.exception`` and the others carry on.
        :param use_pty: ask for a pseudo-terminal.
        :param host_args: one entry per host, filling the command's placeholders
            (a tuple for positional ones, a dict for named ones, else one value).
        :param shell: run it with this shell, e.g. ``'bash -c'``.
        :param encoding: how to decode output lines.
        :param read_timeout: seconds one iteration of a host's output may take.
        :param return_list: ignored; output is always a list (kept for old scripts).
        :param buffer_limit: bytes of unread output each stream of each host holds in
            memory (see :mod:`pssh.output`); ``None`` for no limit, as in parallel-ssh.
        :param spool_to_disk: what happens to unread output past ``buffer_limit``: with
            ``True`` it goes on into a temporary file per stream, deleted once read or
            released, so :meth:`join` then reading works whatever the output's size;
            with ``False`` pssh stops reading that stream and its command waits, so
            :meth:`join` raises :class:`~pssh.exceptions.BufferFullError` (a hard limit
            on memory without using the disk).
        :raises HostArgumentError: ``host_args`` has fewer entries than there are hosts.
        :raises ValueError: ``buffer_limit`` is not a positive integer or ``None``.
        :raises OpenFilesLimitError: this process may not open a descriptor for every
            host, even with its soft limit raised to the hard one (a soft limit that is
            too low is raised, and logged); raised before any host connects, whatever
            ``stop_on_errors`` says. See :doc:`/scaling`.
        :raises SSHError: with ``stop_on_errors``, the first host's failure.
        """
        if return_list is not None:
            warnings.warn("run_command's return_list does nothing: output is always a "
                          "list; drop the argument", DeprecationWarning, stacklevel=2)
        check_timeout(read_timeout, "read_timeout")
        check_buffer_limit(buffer_limit)
        command = check_command(command)
        check_encoding(encoding)
        commands = host_commands(command, host_args, self._hosts)

        def run(position: int, host: str) -> HostOutput:
            return self._run_on_host(position, host, commands[position], sudo, user,
                                     use_pty, shell, encoding, read_timeout, buffer_limit,
                                     bool(spool_to_disk))
        self.cmds = self._for_each_host(run)
        gevent.joinall(self.cmds, raise_error=False)
        output = [self._output_of(result, position, stop_on_errors, encoding, read_timeout)
                  for position, result in enumerate(self.cmds)]
        self._last_output = output
        return output

    def _run_on_host(self, position: int, host: str, command: str, sudo: bool,
                     user: str | None, use_pty: bool, shell: str | None, encoding: str,
                     read_timeout: float | None, buffer_limit: int | None,
                     spool_to_disk: bool) -> HostOutput:
        client = self._client_for(position, host)
        return client.run_command(command, sudo=sudo, user=user, use_pty=use_pty,
                                  shell=shell, encoding=encoding, read_timeout=read_timeout,
                                  buffer_limit=buffer_limit, spool_to_disk=spool_to_disk)

    def _output_of(self, result: AsyncResult, position: int, stop_on_errors: bool,
                   encoding: str, read_timeout: float | None) -> HostOutput:
        if result.successful():
            host_out: HostOutput = result.value
            return host_out
        error = result.exception
        if stop_on_errors or not isinstance(error, (SSHError, ValueError, TypeError)):
            raise error
        host = self._hosts[position]
        logger.error("Host %s failed: %s", self._alias(position) or host, error)
        client = self._host_clients.get((position, host))
        return HostOutput(host, None, None, client, alias=self._alias(position),
                          exception=error, encoding=encoding, read_timeout=read_timeout)

    def get_last_output(self, cmds: list[HostResult] | None = None,
                        ) -> list[HostOutput] | None:
        """The output of the last ``run_command``, or, given ``cmds`` (the ``cmds``
        attribute a ``run_command`` left behind), the outputs of those commands: one per
        host, a failed host's with its error on ``exception``."""
        if cmds is None:
            return self._last_output
        return [self._output_of(result, position, False, "utf-8", None)
                for position, result in enumerate(cmds)]

    def connect_auth(self) -> list[HostResult]:
        """Connect and authenticate every host now, in parallel.

        Returns one waitable result per host, in host order; errors surface through
        ``gevent.joinall(results, raise_error=True)`` or each result's ``get()``.

        :raises OpenFilesLimitError: at once, before any host connects: as for
            :meth:`run_command`.
        """
        return self._for_each_host(self._client_for)

    # -- interactive shells -------------------------------------------------------------

    def open_shell(self, encoding: str = "utf-8", read_timeout: float | None = None,
                   ) -> list[InteractiveShell]:
        """Start an interactive shell on every host; one shell per host, in host order.

        :raises SSHError: the first host whose shell could not be started.
        :raises ValueError: ``encoding`` or ``read_timeout`` is not usable (before any
            connection is made).
        :raises OpenFilesLimitError: as for :meth:`run_command`.
        """
        check_encoding(encoding)
        check_timeout(read_timeout, "read_timeout")
        results = self._for_each_host(partial(self._open_shell_on_host, encoding=encoding,
                                              read_timeout=read_timeout))
        gevent.joinall(results, raise_error=True)
        return [result.get() for result in results]

    def _open_shell_on_host(self, position: int, host: str, encoding: str,
                            read_timeout: float | None) -> InteractiveShell:
        return self._client_for(position, host).open_shell(encoding, read_timeout)

    def run_shell_commands(self, shells: list[InteractiveShell],
                           commands: str | list[str]) -> list[HostResult]:
        """Send ``commands`` (one string or a list) to every shell, in order.

        Returns once all are sent, one result per shell; they do not wait for the
        commands to finish (see :meth:`join_shells`).

        :raises ShellError: sending failed on a shell; the message names its host.
        """
        check_items(shells, InteractiveShell, "run_shell_commands' shells",
                     "the list open_shell returned")
        commands = [commands] if isinstance(commands, str) else list(commands)
        for command in commands:
            check_command(command, "each shell command")
        pool = self.pool
        results = [spawn_with_result(pool, _run_in_shell, shell, commands)
                   for shell in shells]
        gevent.joinall(results)
        for shell, result in zip(shells, results):
            if not result.successful():
                raise ShellError(f"sending commands to the shell on {where(shell.client)} "
                                 f"failed: {result.exception}", host=shell.client.host,
                                 port=shell.client.port) from result.exception
        return results

    def join_shells(self, shells: list[InteractiveShell], timeout: float | None = None,
                    ) -> None:
        """Close every shell (EOF on its stdin) and wait until each has exited.

        :param timeout: seconds to wait for all shells together; defaults to the
            client's ``timeout``, and ``None`` then means no limit.
        :raises Timeout: some shells were still running; ``finished_output`` and
            ``unfinished_output`` on the exception list the shells.
        """
        timeout = check_timeout(self.timeout if timeout is None else timeout,
                                "join_shells timeout")
        check_items(shells, InteractiveShell, "join_shells' shells",
                     "the list open_shell returned")
        pool = self.pool
        results = [spawn_with_result(pool, shell.close, timeout) for shell in shells]
        gevent.joinall(results)
        unfinished = [shell for shell, result in zip(shells, results)
                      if isinstance(result.exception, Timeout)]
        if unfinished:
            finished = [shell for shell in shells if shell not in unfinished]
            raise Timeout(f"join_shells timed out after {timeout}s with {len(unfinished)} of "
                          f"{len(shells)} shells still running", timeout=timeout,
                          finished_output=finished, unfinished_output=unfinished)
        for result in results:
            result.get()


class HostResult(AsyncResult):  # type: ignore[misc]
    """The outcome of one host's work, waitable like the greenlet that does it.

    It works with ``gevent.joinall`` and ``gevent.wait`` and has a greenlet's ``get()``,
    ``join()``, ``kill()``, ``ready()``, ``successful()``, ``value`` and ``exception``.
    The greenlet underneath never fails itself, so gevent's hub prints no traceback for
    an error the caller handles (parallel-ssh silenced the hub process-wide instead).
    """

    __slots__ = ("greenlet",)
    greenlet: Greenlet | None

    def join(self, timeout: float | None = None) -> None:
        """Wait until the work has ended, or ``timeout`` seconds; raises nothing."""
        self.wait(timeout)

    def kill(self, block: bool = True, timeout: float | None = None) -> None:
        """Stop the work; ``get()`` then raises ``gevent.GreenletExit``. Nothing to do
        once it has ended."""
        if self.greenlet is not None:
            self.greenlet.kill(block=block, timeout=timeout)


def spawn_with_result(pool: Pool, func: Any, *args: Any) -> HostResult:
    """Run ``func(*args)`` in ``pool``; its value or exception lands on the returned result."""
    result = HostResult()

    def run() -> None:
        try:
            result.set(func(*args))
        except BaseException as exc:
            result.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

    def ended(greenlet: Greenlet) -> None:
        # A greenlet killed before it ran never reached run(): its result says so.
        if not result.ready():
            result.set_exception(greenlet.exception or GreenletExit())
        result.greenlet = None  # its work is done; a kept output keeps no dead greenlet

    result.greenlet = pool.spawn(run)
    result.greenlet.link(ended)
    return result


def _run_in_shell(shell: InteractiveShell, commands: list[str]) -> None:
    for command in commands:
        shell.run(command)
