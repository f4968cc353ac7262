"""The parallel client on libssh: :class:`BaseParallelSSHClient` making libssh clients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..._validate import check_pkey
from ...config import HostConfig
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ..base.parallel import BaseParallelSSHClient, HostResult
from ._limits import check_cert_file, check_libssh_options, not_supported
from .single import SSHClient

__all__ = ["ParallelSSHClient"]


class ParallelSSHClient(BaseParallelSSHClient):
    """Run commands on many hosts at once over libssh.

    Each host position gets one :class:`~pssh.clients.ssh.SSHClient`, made when first
    needed and reused by later commands. Running commands, reading output, ``join`` and
    shells work as with :class:`pssh.clients.native.ParallelSSHClient`; the file copy
    methods raise ``NotImplementedError``. The parameters are those of ``SSHClient``
    (applied to every host) plus:

    :param hosts: the host names, one entry per host; a host may appear more than once.
    :param pool_size: how many hosts are connected and started at once.
    :param host_config: a list of :class:`~pssh.config.HostConfig`, one per host. Every
        field is honoured, ``cert_file`` and the ``gssapi_*`` ones included, except that
        ``proxy_host`` and ``forward_ssh_agent=True`` raise ``NotImplementedError``.
    :raises TypeError: ``hosts`` is a string or not a list.
    :raises ValueError: a numeric argument is out of range, or a host has ``cert_file``
        without a private key.
    :raises PKeyFileError: ``pkey`` or ``cert_file`` names a missing file.
    :raises HostConfigError: ``host_config`` does not fit ``hosts``.
    :raises NotImplementedError: a proxy or agent forwarding was asked for, for any host.
    """

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
                 proxy_pkey: str | bytes | None = None) -> None:
        check_libssh_options("every host", proxy_host, forward_ssh_agent)
        super().__init__(hosts, user=user, password=password, port=port, pkey=pkey,
                         num_retries=num_retries, timeout=timeout, pool_size=pool_size,
                         allow_agent=allow_agent, host_config=host_config,
                         retry_delay=retry_delay, identity_auth=identity_auth,
                         ipv6_only=ipv6_only)
        self.cert_file = None if cert_file is None else check_pkey(cert_file)
        self.forward_ssh_agent = forward_ssh_agent
        self.gssapi_auth = gssapi_auth
        self.gssapi_server_identity = gssapi_server_identity
        self.gssapi_client_identity = gssapi_client_identity
        self.gssapi_delegate_credentials = gssapi_delegate_credentials
        self.compress = compress
        self.keepalive_seconds = keepalive_seconds
        self.keyboard_interactive = keyboard_interactive
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.proxy_pkey = proxy_pkey
        self._check_host_config()
        self._check_hosts_settings()

    def _check_hosts_settings(self) -> None:
        """Refuse, before anything connects, what no host's client could take."""
        positions = range(len(self.hosts)) if self.host_config is not None else [0]
        for position in positions[:len(self.hosts)]:
            host = self.hosts[position]
            settings = self._host_settings(position)
            check_libssh_options(f"host {host!r}", settings["proxy_host"],
                                 settings["forward_ssh_agent"])
            settings["pkey"] = check_pkey(settings["pkey"], host)
            check_cert_file(settings["cert_file"], settings["pkey"], host)

    def _host_settings(self, position: int) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "user": self.user, "password": self.password, "port": self.port,
            "pkey": self.pkey, "cert_file": self.cert_file, "num_retries": self.num_retries,
            "retry_delay": self.retry_delay, "allow_agent": self.allow_agent,
            "timeout": self.timeout, "identity_auth": self.identity_auth,
            "gssapi_auth": self.gssapi_auth,
            "gssapi_server_identity": self.gssapi_server_identity,
            "gssapi_client_identity": self.gssapi_client_identity,
            "gssapi_delegate_credentials": self.gssapi_delegate_credentials,
            "ipv6_only": self.ipv6_only, "compress": self.compress,
            "keepalive_seconds": self.keepalive_seconds,
            "keyboard_interactive": self.keyboard_interactive,
            "forward_ssh_agent": self.forward_ssh_agent, "proxy_host": self.proxy_host,
            "proxy_port": self.proxy_port, "proxy_user": self.proxy_user,
            "proxy_password": self.proxy_password, "proxy_pkey": self.proxy_pkey,
        }
        settings.update(self._overrides(position))
        return settings

    def _make_client(self, position: int, host: str) -> SSHClient:
        settings = self._host_settings(position)
        settings.setdefault("alias", self._alias(position))
        return SSHClient(host, **settings)

    # -- what this engine does not do -------------------------------------------------------

    def copy_file(self, *args: Any, **kwargs: Any) -> list[HostResult]:
        """Not supported: raises ``NotImplementedError`` at once (use
        ``pssh.clients.native`` to copy files)."""
        raise not_supported("copy_file", "every host")

    def copy_remote_file(self, *args: Any, **kwargs: Any) -> list[HostResult]:
        """Not supported: raises ``NotImplementedError`` at once."""
        raise not_supported("copy_remote_file", "every host")

    def scp_send(self, *args: Any, **kwargs: Any) -> list[HostResult]:
        """Not supported: raises ``NotImplementedError`` at once."""
        raise not_supported("scp_send", "every host")

    def scp_recv(self, *args: Any, **kwargs: Any) -> list[HostResult]:
        """Not supported: raises ``NotImplementedError`` at once."""
        raise not_supported("scp_recv", "every host")
