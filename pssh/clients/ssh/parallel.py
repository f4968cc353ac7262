"""The parallel client on libssh: the base parallel client making libssh clients."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..._known_hosts import DEFAULT_KNOWN_HOSTS, DEFAULT_POLICY, KnownHostsSetting
from ..._ssh_settings import SSHConfigSetting
from ..._validate import check_pkey
from ...config import HostConfig
from ...constants import DEFAULT_HANDSHAKE_LIMIT, DEFAULT_RETRIES, RETRY_DELAY
from ..base._from_ssh_config import remember_explicit
from ..base.parallel import BaseParallelSSHClient
from ._limits import WithoutCopies, check_cert_file, check_no_proxy
from .single import SSHClient

__all__ = ["ParallelSSHClient"]

logger = logging.getLogger("pssh.clients.ssh")


class ParallelSSHClient(WithoutCopies, BaseParallelSSHClient):
    """Run commands on many hosts at once over libssh.

    Each host position gets one :class:`~pssh.clients.ssh.single.SSHClient`, made when first
    needed and reused by later commands. Running commands, reading output, ``join`` and
    shells work as with the native ``ParallelSSHClient``; the file copy methods raise
    ``NotImplementedError``. The parameters are those of ``SSHClient``
    (applied to every host) plus:

    :param hosts: the host names, one entry per host; a host may appear more than once.
    :param pool_size: how many hosts are connected and started at once.
    :param host_config: a list of :class:`~pssh.config.HostConfig`, one per host. Every
        field is honoured, ``cert_file`` and the ``gssapi_*`` ones included, except that
        ``proxy_host`` raises ``NotImplementedError``.
    :param known_hosts: as for ``SSHClient``; the files are read once, here, and shared
        by every host.
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
    :raises TypeError: ``hosts`` is a string or not a list.
    :raises ValueError: a numeric argument is out of range, or a host has ``cert_file``
        without a private key.
    :raises PKeyFileError: ``pkey`` or ``cert_file`` names a missing file.
    :raises HostConfigError: ``host_config`` does not fit ``hosts``.
    :raises NotImplementedError: a proxy was asked for, for any host.
    """

    _client_class = SSHClient

    @remember_explicit
    def __init__(self, hosts: Iterable[str], user: str | None = None,
                 password: str | None = None, port: int = 22,
                 pkey: str | bytes | None = None, cert_file: str | None = None,
                 num_retries: int = DEFAULT_RETRIES, timeout: float | None = None,
                 pool_size: int = 100, allow_agent: bool = True,
                 host_config: list[HostConfig] | None = None,
                 retry_delay: float = RETRY_DELAY, forward_ssh_agent: bool = False,
                 gssapi_auth: bool = False, gssapi_server_identity: str | None = None,
                 gssapi_client_identity: str | None = None,
                 gssapi_delegate_credentials: bool = False, identity_auth: bool = True,
                 ipv6_only: bool = False, compress: bool = False, *,
                 keepalive_seconds: int | None = 60, keyboard_interactive: bool = False,
                 proxy_host: str | None = None, proxy_port: int | None = None,
                 proxy_user: str | None = None, proxy_password: str | None = None,
                 proxy_pkey: str | bytes | None = None,
                 known_hosts: KnownHostsSetting = DEFAULT_KNOWN_HOSTS,
                 host_key_policy: str = DEFAULT_POLICY,
                 ssh_config: SSHConfigSetting = None,
                 handshake_limit: int | None = DEFAULT_HANDSHAKE_LIMIT) -> None:
        check_no_proxy(proxy_host, "every host")
        super().__init__(hosts, user=user, password=password, port=port, pkey=pkey,
                         allow_agent=allow_agent, num_retries=num_retries, timeout=timeout,
                         pool_size=pool_size, host_config=host_config,
                         retry_delay=retry_delay, identity_auth=identity_auth,
                         ipv6_only=ipv6_only, proxy_host=proxy_host, proxy_port=proxy_port,
                         proxy_user=proxy_user, proxy_password=proxy_password,
                         proxy_pkey=proxy_pkey, keepalive_seconds=keepalive_seconds,
                         cert_file=cert_file, gssapi_auth=gssapi_auth,
                         gssapi_server_identity=gssapi_server_identity,
                         gssapi_client_identity=gssapi_client_identity,
                         gssapi_delegate_credentials=gssapi_delegate_credentials,
                         forward_ssh_agent=forward_ssh_agent, compress=compress,
                         keyboard_interactive=keyboard_interactive,
                         known_hosts=known_hosts, host_key_policy=host_key_policy,
                         ssh_config=ssh_config, handshake_limit=handshake_limit)
        self._check_host_settings()

    def _check_engine_settings(self, entry: HostConfig, settings: dict[str, Any],
                               host: str) -> None:
        check_no_proxy(settings["proxy_host"], f"host {host!r}")
        check_cert_file(settings["cert_file"], check_pkey(settings["pkey"], host), host)
