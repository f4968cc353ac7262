"""Per-host settings for ``ParallelSSHClient(host_config=[...])``.

A field left at ``None`` falls back to the client's value. Any other value, falsy ones
included (``allow_agent=False``, ``keepalive_seconds=0``, ``num_retries=0``), overrides
it; parallel-ssh silently ignored falsy overrides.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ._known_hosts import POLICIES
from ._secrets import masked
from ._ssh_settings import (
    client_keywords,
    host_settings,
    log_unsupported,
    open_config,
    resolve_jumps,
)

__all__ = ["HostConfig"]

_STRINGS = ("user", "password", "alias", "proxy_host", "proxy_user", "proxy_password",
            "cert_file", "gssapi_server_identity", "gssapi_client_identity", "hostname")
_FLAGS = ("allow_agent", "identity_auth", "ipv6_only", "auth_thread_pool", "gssapi_auth",
          "gssapi_delegate_credentials", "forward_ssh_agent", "compress",
          "keyboard_interactive")
_COUNTS = ("num_retries", "keepalive_seconds")
_SECONDS = ("retry_delay", "timeout")
_PORTS = ("port", "proxy_port")
_KEYS = ("private_key", "proxy_pkey")
# Client keyword -> HostConfig field, where they differ.
_FIELD = {"pkey": "private_key", "_hostname": "hostname", "_identity_files": "identity_files"}


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
    # From ssh_config (see from_ssh_config): the address connected to instead of the host
    # name, and the IdentityFile entries tried instead of the default identity files.
    hostname: str | None = None
    identity_files: tuple[str, ...] | None = None
    # Host key checking (see doc/security.rst): known_hosts files (a path or a list),
    # and the policy; host_key_policy='off' turns checking off for this host.
    known_hosts: str | list[str] | None = None
    host_key_policy: str | None = None

    def __post_init__(self) -> None:
        for name in _STRINGS:
            _check(self, name, lambda value: isinstance(value, str), "a string")
        for name in _FLAGS:
            _check(self, name, lambda value: isinstance(value, bool), "True or False")
        for name in _COUNTS:
            _check(self, name, _is_count, "an integer >= 0")
        for name in _SECONDS:
            _check(self, name, _is_seconds, "a number of seconds >= 0")
        for name in _PORTS:
            _check(self, name, lambda value: _is_count(value) and 0 < value < 65536,
                   "an integer from 1 to 65535")
        for name in _KEYS:
            _check(self, name, lambda value: isinstance(value, (str, bytes, os.PathLike)),
                   "a key file path or the key's bytes")
        _check(self, "identity_files", _is_key_paths, "a tuple of key file paths")
        _check(self, "known_hosts", _is_paths, "a known_hosts file path or a list of them")
        _check(self, "host_key_policy", lambda value: value in POLICIES,
               f"one of {', '.join(POLICIES)}")

    def __repr__(self) -> str:
        # Replaces the dataclass's repr, which printed passwords and key bytes: only the
        # fields that are set, secrets masked (see pssh._secrets).
        shown = ", ".join(f"{name}={masked(name, value)}"
                          for name, value in self.overrides().items())
        return f"{type(self).__name__}({shown})"

    @classmethod
    def from_ssh_config(cls, host: str, path: str | os.PathLike[str] | None = None,
                        ) -> HostConfig:
        """The settings OpenSSH's client configuration gives ``host``, as a HostConfig
        for that host's position in ``host_config`` (see :doc:`/ssh_config`).

        :param host: the name as it would be given to ``ssh``.
        :param path: the file to read; by default ``~/.ssh/config`` then
            ``/etc/ssh/ssh_config``, as ``ssh`` reads them.
        :raises ValueError: ``path`` is missing, or a line of the file is one OpenSSH
            would refuse (an ``SSHConfigError`` naming the file and line).
        """
        config = open_config(True if path is None else path)
        report = config.lookup(host)
        settings = resolve_jumps(config, host_settings(report))
        found, gaps = client_keywords(settings)
        if settings.hostname == host.lower():
            found.pop("_hostname")
        for name in ("user", "port"):
            if name not in report["_set"]:
                found.pop(name)  # OpenSSH's default, not the file's word
        log_unsupported([settings], {settings.host: gaps})
        names = {field.name for field in fields(cls)}
        values = {_FIELD.get(name, name): value for name, value in found.items()}
        return cls(**{name: value for name, value in values.items() if name in names})

    def overrides(self) -> dict[str, Any]:
        """The fields that were set, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


def configured_value(host_config: Sequence[HostConfig] | None, position: int,
                     name: str) -> Any:
    """The ``HostConfig`` value of setting ``name`` for the host at ``position``, or
    ``None`` where there is no ``host_config``, no entry for that host, or no value set
    (then the client's own value applies)."""
    if host_config is None or position >= len(host_config):
        return None
    return getattr(host_config[position], name)


def _check(config: HostConfig, name: str, valid: Any, expected: str) -> None:
    value = getattr(config, name)
    if value is not None and not valid(value):
        raise ValueError(f"HostConfig {name} must be {expected} (or None for the client's "
                         f"value), not {type(value).__name__} {masked(name, value)}")


def _is_paths(value: Any) -> bool:
    if isinstance(value, (str, os.PathLike)):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(path, (str, os.PathLike)) for path in value)


def _is_key_paths(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(path, (str, os.PathLike)) for path in value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_seconds(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and not math.isnan(value) and value >= 0)
