"""The parallel client on libssh2: the base parallel client making native clients, with
shared connections to proxies and file copies on every host."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from ..._known_hosts import DEFAULT_KNOWN_HOSTS, DEFAULT_POLICY, KnownHostsSetting
from ..._ssh_settings import SSHConfigSetting
from ..._validate import check_encoding
from ...config import HostConfig
from ...constants import DEFAULT_HANDSHAKE_LIMIT, DEFAULT_RETRIES, RETRY_DELAY
from ..base._from_ssh_config import remember_explicit
from ..base.parallel import BaseParallelSSHClient, HostResult
from ._local_files import Progress, check_local_source, copy_paths
from ._proxy import Bastion, Hop, bastion_chain, parse_jump_chain
from .single import PROXY_SETTINGS, SSHClient, connect_hop
from .tunnel import PortForwards, check_target

__all__ = ["ParallelSSHClient"]

logger = logging.getLogger("pssh.clients.native")

# HostConfig fields this engine does not take (libssh-only options).
_NOT_NATIVE = {"cert_file", "gssapi_auth", "gssapi_server_identity",
               "gssapi_client_identity", "gssapi_delegate_credentials"}


class ParallelSSHClient(BaseParallelSSHClient):
    """Run commands and copy files on many hosts at once over libssh2.

    Each host position gets one :class:`~pssh.clients.native.single.SSHClient`, made when first
    needed and reused by later commands. The parameters are those of ``SSHClient``
    (applied to every host) plus:

    :param hosts: the host names, one entry per host; a host may appear more than once.
    :param pool_size: how many hosts are connected and started at once.
    :param host_config: a list of :class:`~pssh.config.HostConfig`, one per host.
    :param known_hosts: as for ``SSHClient``; the files are read once, here, and shared
        by every host and proxy.
    :param host_key_policy: as for ``SSHClient``; a refused key fails that host only,
        with a :class:`~pssh.exceptions.HostKeyError`.
    :param ssh_config: read OpenSSH client configuration for every host: ``True`` for
        ``~/.ssh/config`` and ``/etc/ssh/ssh_config``, or a file's path. A host name
        connects to its ``HostName``; the file fills the settings this call did not
        pass, and ``host_config`` entries win over it (see :doc:`/ssh_config`).
    :param handshake_limit: how many hosts with the same address and port may be
        between TCP connect and the end of authentication at once (8 by default);
        ``None`` or ``0`` for no limit. OpenSSH's sshd drops new connections past its
        ``MaxStartups`` (10 at once by default); the others wait for a slot, and the
        wait does not count against ``timeout``. See :doc:`/scaling`.
    :raises OpenFilesLimitError: (from the methods that connect hosts) this process may
        not open a file descriptor for every host even with its soft limit raised to
        the hard one; nothing was connected. A soft limit that is too low is raised.
    :raises NotImplementedError: a libssh-only ``HostConfig`` setting (certificates,
        GSS-API) was asked for.
    :raises TypeError: ``hosts`` is a string or not a list.
    :raises ValueError: a numeric argument is out of range.
    :raises PKeyFileError: ``pkey`` names a missing file.
    :raises HostConfigError: ``host_config`` does not fit ``hosts``.
    """

    _client_class = SSHClient

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
                 handshake_limit: int | None = DEFAULT_HANDSHAKE_LIMIT) -> None:
        self._bastions: dict[tuple[Any, ...], Bastion] = {}
        super().__init__(hosts, user=user, password=password, port=port, pkey=pkey,
                         allow_agent=allow_agent, num_retries=num_retries, timeout=timeout,
                         pool_size=pool_size, host_config=host_config,
                         retry_delay=retry_delay, identity_auth=identity_auth,
                         ipv6_only=ipv6_only, proxy_host=proxy_host, proxy_port=proxy_port,
                         proxy_user=proxy_user, proxy_password=proxy_password,
                         proxy_pkey=proxy_pkey, keepalive_seconds=keepalive_seconds,
                         forward_ssh_agent=forward_ssh_agent, compress=compress,
                         keyboard_interactive=keyboard_interactive,
                         known_hosts=known_hosts, host_key_policy=host_key_policy,
                         ssh_config=ssh_config, handshake_limit=handshake_limit)
        self._check_host_settings()

    def _check_engine_settings(self, entry: HostConfig, settings: dict[str, Any],
                               host: str) -> None:
        _check_native_only(entry, host)
        if settings["proxy_host"] is not None:
            parse_jump_chain(settings["proxy_host"], settings["proxy_port"])

    def _make_client(self, position: int, host: str) -> SSHClient:
        settings = self._client_settings(position)
        if settings["proxy_host"] is not None:
            settings["_bastion"] = self._bastion_for(settings)
        return SSHClient(host, **settings)

    def _descriptors_to_connect(self, positions: list[int]) -> int:
        """One socket per host, and for a host behind a proxy the tunnel's end of its
        socket pair too; plus the proxies' own connections not made yet (a first hop
        has one socket, a later hop a socket pair to the hop before it)."""
        count = super()._descriptors_to_connect(positions)
        if self.proxy_host is None and self.host_config is None and not self.ssh_config:
            return count
        hops_to_make: set[tuple[tuple[Hop, ...], tuple[Any, ...]]] = set()
        for position in positions:
            settings = self._client_settings(position)
            if settings["proxy_host"] is None:
                continue
            count += 1
            hops = parse_jump_chain(settings["proxy_host"], settings["proxy_port"])
            credentials = tuple(settings[name] for name in PROXY_SETTINGS)
            hops_to_make.update((hops[:depth], credentials) for depth in range(1, len(hops) + 1))
        return count + sum(1 if len(chain) == 1 else 2
                           for chain, credentials in hops_to_make
                           if (chain, credentials) not in self._bastions)

    def _bastion_for(self, settings: dict[str, Any]) -> Bastion:
        """The shared connection to a host's proxy (the last hop of its chain), made on
        first use; hosts with the same chain and proxy credentials share every hop."""
        hops = parse_jump_chain(settings["proxy_host"], settings["proxy_port"])
        credentials = tuple(settings[name] for name in PROXY_SETTINGS)
        return bastion_chain(hops, partial(connect_hop, settings), self._bastions,
                             auth_key=credentials)

    def disconnect(self) -> None:
        """Close every host's connection, then the connections to proxies."""
        super().disconnect()
        bastions, self._bastions = self._bastions, {}
        for bastion in bastions.values():
            bastion.close()

    # -- port forwarding ----------------------------------------------------------------

    def forward_ports(self, remote_host: str, remote_port: int,
                      bind_address: str = "127.0.0.1") -> PortForwards:
        """Forward a local port to ``remote_host:remote_port`` through every host, as
        ``ssh -L`` does: one local port per host, in host order.

        Every host is connected first (``pool_size`` at a time). Then each host gets a
        :class:`~pssh.clients.native.tunnel.TunnelServer` listening on
        ``bind_address`` at a port the system picks; a connection to it reaches
        ``remote_host:remote_port`` as that host resolves it (``"127.0.0.1"`` is the
        host itself). All of a host's connections share its SSH connection. The
        forwarding runs in this thread's gevent hub, see :mod:`pssh.clients.native.tunnel`.

        Close the result (or use it in a ``with`` block) to stop listening and close every
        forwarded connection; the hosts stay connected for commands.

        :raises ValueError: ``remote_host`` or ``remote_port`` is not an address.
        :raises SSHError: a host could not be connected; the error names it, and no port
            is forwarded.
        :raises OSError: a local port could not be opened; none stays open.
        """
        check_target(remote_host, remote_port)
        connecting = self.connect_auth()
        for result in connecting:
            result.wait()  # every host's attempt ends before any error is raised
        clients = [result.get() for result in connecting]
        return PortForwards.start(clients, remote_host, remote_port, bind_address)

    # -- file copies --------------------------------------------------------------------

    def copy_file(self, local_file: str, remote_file: str, recurse: bool = False,
                  copy_args: Any = None, *, progress: Progress | None = None,
                  ) -> list[HostResult]:
        """Upload ``local_file`` to ``remote_file`` on every host with SFTP.

        Returns at once with one :class:`~pssh.clients.base.parallel.HostResult` per
        host, in host order. Wait with ``gevent.joinall(results, raise_error=True)``, or
        call each result's ``get()``: that is where a host's error is raised, named after
        its host. One host failing does not stop the copies to the others.

        Missing remote parent directories are created and the file's permission bits are
        kept (parallel-ssh 2.x forced 0644). See
        :meth:`SSHClient.copy_file <pssh.clients.native.single.SSHClient.copy_file>`.

        :param recurse: copy a directory and everything under it.
        :param copy_args: one entry per host filling ``%`` placeholders in the paths
            (a tuple for positional ones, a dict for named ones); a path without
            placeholders is used as it is.
        :param progress: called as ``progress(host, remote_path, bytes_done,
            bytes_total)`` when each file starts and after each chunk, for every host;
            it runs in the copying greenlet and must not block.
        :raises HostArgumentError: ``copy_args`` is shorter than the host list, or an
            entry does not fit a path.
        """
        paths = copy_paths(self._hosts, local_file, remote_file, copy_args)
        return self._spawn_uploads("copy_file", paths, recurse=recurse, progress=progress)

    def copy_remote_file(self, remote_file: str, local_file: str, recurse: bool = False,
                         suffix_separator: str = "_", copy_args: Any = None,
                         encoding: str = "utf-8", *, progress: Progress | None = None,
                         ) -> list[HostResult]:
        """Download ``remote_file`` from every host with SFTP.

        Each host's copy goes to ``<local_file><suffix_separator><host>`` (or to the
        paths ``copy_args`` gives); missing local directories are created. Returns one
        :class:`~pssh.clients.base.parallel.HostResult` per host, as :meth:`copy_file` does.

        :param encoding: how remote file names are encoded.
        """
        check_encoding(encoding)
        paths = copy_paths(self._hosts, remote_file, local_file, copy_args, suffix_separator)
        return self._spawn_copies("copy_remote_file", paths, recurse=recurse, progress=progress,
                                  encoding=encoding)

    def scp_send(self, local_file: str, remote_file: str, recurse: bool = False,
                 copy_args: Any = None, *, progress: Progress | None = None,
                 ) -> list[HostResult]:
        """Upload ``local_file`` to ``remote_file`` on every host with SCP, keeping mode
        and times. Returns one :class:`~pssh.clients.base.parallel.HostResult` per host,
        as :meth:`copy_file` does. See
        :meth:`SSHClient.scp_send <pssh.clients.native.single.SSHClient.scp_send>`.
        """
        local_file, remote_file = _scp_templates(local_file, remote_file, copy_args)
        paths = copy_paths(self._hosts, local_file, remote_file, copy_args)
        return self._spawn_uploads("scp_send", paths, recurse=recurse, progress=progress)

    def scp_recv(self, remote_file: str, local_file: str, recurse: bool = False,
                 copy_args: Any = None, suffix_separator: str = "_", *,
                 progress: Progress | None = None) -> list[HostResult]:
        """Download ``remote_file`` from every host with SCP, to
        ``<local_file><suffix_separator><host>`` (or the paths ``copy_args`` gives).
        Returns one :class:`~pssh.clients.base.parallel.HostResult` per host, as
        :meth:`copy_file` does.
        """
        local_file, remote_file = _scp_templates(local_file, remote_file, copy_args)
        paths = copy_paths(self._hosts, remote_file, local_file, copy_args, suffix_separator)
        return self._spawn_copies("scp_recv", paths, recurse=recurse, progress=progress)

    def _spawn_uploads(self, method: str, paths: list[tuple[str, str]],
                       **kwargs: Any) -> list[HostResult]:
        """Spawn an upload, its local file checked before any connection is made: once,
        here, when every host gets the same file; else per host, before that host
        connects, so that a missing one (from ``copy_args``) fails that host only."""
        sources = {source for source, _ in paths}
        if len(sources) == 1:
            check_local_source(next(iter(sources)), kwargs["recurse"], "any host")
        return self._spawn_copies(method, paths, check_source=len(sources) > 1, **kwargs)

    def _spawn_copies(self, method: str, paths: list[tuple[str, str]],
                      check_source: bool = False, **kwargs: Any) -> list[HostResult]:
        def copy(position: int, host: str) -> None:
            self._copy_on_host(position, host, method, *paths[position], check_source,
                               kwargs)
        # Each copy running has a local file open.
        return self._for_each_host(copy, busy_descriptors=1)

    def _copy_on_host(self, position: int, host: str, method: str, source: str,
                      destination: str, check_source: bool, kwargs: dict[str, Any]) -> None:
        if check_source:
            check_local_source(source, kwargs["recurse"], host)
        client = self._client_for(position, host)
        getattr(client, method)(source, destination, **kwargs)


def _check_native_only(entry: HostConfig, host: str) -> None:
    """Refuse libssh-only settings instead of dropping them (parallel-ssh dropped them)."""
    asked = sorted(name for name in _NOT_NATIVE if getattr(entry, name) not in (None, False))
    if asked:
        raise NotImplementedError(
            f"HostConfig for host {host!r} sets {', '.join(asked)}, which this client "
            f"(libssh2) cannot do: certificate and GSS-API authentication need "
            f"pssh.clients.ssh.ParallelSSHClient, which takes the same arguments")


def _scp_templates(local_file: str, remote_file: str, copy_args: Any) -> tuple[str, str]:
    """The path templates for ``scp_send``/``scp_recv``.

    parallel-ssh's SCP methods took both paths from ``copy_args`` entries, dicts with
    ``local_file`` and ``remote_file`` keys, ignoring the paths given; entries of that
    form keep that meaning. Any other ``copy_args`` fill the given paths as for
    ``copy_file``.
    """
    if copy_args and all(isinstance(entry, Mapping) and
                         {"local_file", "remote_file"} <= entry.keys() for entry in copy_args):
        return "%(local_file)s", "%(remote_file)s"
    return local_file, remote_file
