"""Per-host settings for ``ParallelSSHClient(host_config=[...])``.

A field left at ``None`` falls back to the client's value. Any other value, falsy ones
included (``allow_agent=False``, ``keepalive_seconds=0``, ``num_retries=0``), overrides
it; parallel-ssh silently ignored falsy overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["HostConfig"]


@dataclass
class HostConfig:
    """Settings for one host; ``None`` means "use the client's"."""

    user: str | None = None
    port: int | None = None
    password: str | None = None
    private_key: str | bytes | None = None
    allow_agent: bool | None = None
    alias: str | None = None
    num_retries: int | None = None
    retry_delay: float | None = None
    timeout: float | None = None
    identity_auth: bool | None = None
    proxy_host: str | None = None
    proxy_port: int | None = None
    proxy_user: str | None = None
    proxy_password: str | None = None
    proxy_pkey: str | bytes | None = None
    keepalive_seconds: int | None = None
    ipv6_only: bool | None = None
    cert_file: str | None = None
    auth_thread_pool: bool | None = None
    gssapi_auth: bool | None = None
    gssapi_server_identity: str | None = None
    gssapi_client_identity: str | None = None
    gssapi_delegate_credentials: bool | None = None
    forward_ssh_agent: bool | None = None
    compress: bool | None = None
    keyboard_interactive: bool | None = None

    def overrides(self) -> dict[str, Any]:
        """The fields that were set, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}
