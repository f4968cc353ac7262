"""The parallel client on libssh2: :class:`BaseParallelSSHClient` making native clients."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from ..._validate import check_pkey, check_port
from ...config import HostConfig
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ..base.parallel import BaseParallelSSHClient
from ._proxy import Bastion
from .single import SSHClient, check_no_agent_forwarding

__all__ = ["ParallelSSHClient"]

# HostConfig fields this engine does not take (libssh-only options).
_NOT_NATIVE = {"cert_file", "gssapi_auth", "gssapi_server_identity",
               "gssapi_client_identity", "gssapi_delegate_credentials"}


class ParallelSSHClient(BaseParallelSSHClient):
    """Run commands on many hosts at once over libssh2.

    Each host position gets one :class:`~pssh.clients.native.SSHClient`, made when first
    needed and reused by later commands. The parameters are those of ``SSHClient``
    (applied to every host) plus:

    :param hosts: the host names, one entry per host; a host may appear more than once.
    :param pool_size: how many hosts are connected and started at once.
    :param host_config: a list of :class:`~pssh.config.HostConfig`, one per host.
    :raises TypeError: ``hosts`` is a string or not a list.
    :raises ValueError: a numeric argument is out of range.
    :raises PKeyFileError: ``pkey`` names a missing file.
    :raises HostConfigError: ``host_config`` does not fit ``hosts``.
    """

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
                 compress: bool = False, keyboard_interactive: bool = False) -> None:
        super().__init__(hosts, user=user, password=password, port=port, pkey=pkey,
                         num_retries=num_retries, timeout=timeout, pool_size=pool_size,
                         allow_agent=allow_agent, host_config=host_config,
                         retry_delay=retry_delay, identity_auth=identity_auth,
                         ipv6_only=ipv6_only)
        self.proxy_host = proxy_host
        self.proxy_port = check_port(22 if proxy_port is None else proxy_port, proxy_host)
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.proxy_pkey = check_pkey(proxy_pkey, proxy_host)
        self._bastions: dict[tuple[Any, ...], Bastion] = {}
        check_no_agent_forwarding(forward_ssh_agent, "every host")
        self.forward_ssh_agent = forward_ssh_agent
        self.keepalive_seconds = keepalive_seconds
        self.compress = compress
        self.keyboard_interactive = keyboard_interactive
        self._check_host_config()

    def _check_host_config(self) -> None:
        super()._check_host_config()
        for position, entry in enumerate(self.host_config or []):
            check_pkey(entry.private_key, self.hosts[position])
            check_pkey(entry.proxy_pkey, self.hosts[position])
            check_no_agent_forwarding(entry.forward_ssh_agent, self.hosts[position])
            _check_native_only(entry, self.hosts[position])

    def _host_settings(self, position: int) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "user": self.user, "password": self.password, "port": self.port,
            "pkey": self.pkey, "num_retries": self.num_retries,
            "retry_delay": self.retry_delay, "allow_agent": self.allow_agent,
            "timeout": self.timeout, "forward_ssh_agent": self.forward_ssh_agent,
            "keepalive_seconds": self.keepalive_seconds,
            "identity_auth": self.identity_auth, "ipv6_only": self.ipv6_only,
            "compress": self.compress, "keyboard_interactive": self.keyboard_interactive,
            "proxy_host": self.proxy_host, "proxy_port": self.proxy_port,
            "proxy_user": self.proxy_user, "proxy_password": self.proxy_password,
            "proxy_pkey": self.proxy_pkey,
        }
        settings.update((name, value) for name, value in self._overrides(position).items()
                        if name not in _NOT_NATIVE)
        return settings

    def _make_client(self, position: int, host: str) -> SSHClient:
        settings = self._host_settings(position)
        settings.setdefault("alias", self._alias(position))
        if settings["proxy_host"] is not None:
            settings["_bastion"] = self._bastion_for(settings)
        return SSHClient(host, **settings)

    def _bastion_for(self, settings: dict[str, Any]) -> Bastion:
        """The one shared connection to a host's proxy, made on first use."""
        proxy = {name: settings[name] for name in
                 ("proxy_host", "proxy_port", "proxy_user", "proxy_password", "proxy_pkey")}
        key = tuple(proxy.values())
        bastion = self._bastions.get(key)
        if bastion is None:
            connect = partial(SSHClient, proxy["proxy_host"], user=proxy["proxy_user"],
                              password=proxy["proxy_password"], port=proxy["proxy_port"],
                              pkey=proxy["proxy_pkey"], num_retries=settings["num_retries"],
                              retry_delay=settings["retry_delay"],
                              allow_agent=settings["allow_agent"], timeout=settings["timeout"],
                              keepalive_seconds=settings["keepalive_seconds"],
                              identity_auth=settings["identity_auth"],
                              ipv6_only=settings["ipv6_only"])
            where = f"{proxy['proxy_host']}:{proxy['proxy_port']}"
            bastion = self._bastions[key] = Bastion(connect, where)
        return bastion

    def disconnect(self) -> None:
        """Close every host's connection, then the connections to proxies."""
        super().disconnect()
        bastions, self._bastions = self._bastions, {}
        for bastion in bastions.values():
            bastion.close()


def _check_native_only(entry: HostConfig, host: str) -> None:
    """Refuse libssh-only settings instead of dropping them (parallel-ssh dropped them)."""
    asked = sorted(name for name in _NOT_NATIVE if getattr(entry, name) not in (None, False))
    if asked:
        raise NotImplementedError(
            f"HostConfig for host {host!r} sets {', '.join(asked)}, which this client "
            f"(libssh2) cannot do: certificate and GSS-API authentication need "
            f"pssh.clients.ssh.ParallelSSHClient, which takes the same arguments")
