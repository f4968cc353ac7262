"""pssh's view of what an ssh_config file says about a host.

:func:`host_settings` turns a lookup of :mod:`pssh._ssh_config` into
:class:`HostSettings`: the values the file set (OpenSSH's defaults dropped), tokens in
``IdentityFile`` and ``CertificateFile`` expanded, and the keywords pssh cannot honour
listed. :func:`client_keywords` maps those onto the clients' keyword arguments.
:func:`open_config` keeps parsed files for every client of the process, and
:func:`log_unsupported` says, once per keyword and host, what is not honoured.

Pure: no SSH library, no gevent.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from ._ssh_config import (
    _DEFAULT_IDENTITIES,
    _DEFAULTS,
    DEFAULT_FILES,
    HONOURED,
    SSHConfig,
    SSHConfigError,
    _expand_path,
    _token_map,
)

__all__ = ["HostSettings", "SSHConfigSetting", "client_keywords", "host_settings",
           "log_unsupported", "open_config"]

logger = logging.getLogger("pssh.ssh_config")

SSHConfigSetting = Union[bool, str, "os.PathLike[str]", Sequence[str], None]
"""What ``ssh_config=`` takes: ``True`` for the user's and the system's files, a path,
or a list of paths; ``None`` or ``False`` for none."""

_STRUCTURE = frozenset({"host", "match", "include", "ignoreunknown"})


@dataclass(frozen=True)
class HostSettings:
    """What the configuration says about one host, as pssh can use it. ``None`` (or an
    empty tuple) where the file left OpenSSH's default."""

    host: str
    hostname: str
    user: str
    port: int
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    identity_agent: str | None = None
    cert_files: tuple[str, ...] = ()
    proxy_jump: tuple[str, ...] = ()
    proxy_identity_files: tuple[str, ...] = ()
    connect_timeout: int | None = None
    server_alive_interval: int | None = None
    server_alive_count_max: int | None = None
    compression: bool | None = None
    address_family: str | None = None
    user_known_hosts: tuple[str, ...] | None = None
    global_known_hosts: tuple[str, ...] | None = None
    strict_host_key_checking: str | None = None
    password_authentication: bool | None = None
    kbd_interactive_authentication: bool | None = None
    batch_mode: bool | None = None
    unsupported: tuple[str, ...] = ()


def _first(report: dict[str, list[str]], keyword: str) -> str | None:
    values = report.get(keyword)
    if not values or values[0] == _DEFAULTS.get(keyword):
        return None
    return values[0]


def _flag(report: dict[str, list[str]], keyword: str) -> bool | None:
    value = _first(report, keyword)
    return None if value is None else value == "yes"


def _number(report: dict[str, list[str]], keyword: str) -> int | None:
    value = _first(report, keyword)
    return None if value is None or value == "none" else int(value)


def host_settings(report: dict[str, list[str]]) -> HostSettings:
    """pssh's settings from a lookup (``SSHConfig.lookup`` or ``lookup_with_ssh``)."""
    host, hostname = report["host"][0], report["hostname"][0]
    user, port = report["user"][0], int(report["port"][0])
    jump = report.get("proxyjump", [""])[0]
    tokens = _token_map(hostname, host, user, str(port), jump)
    identities = tuple(report.get("identityfile", ()))
    identities = () if identities == _DEFAULT_IDENTITIES else identities
    user_known = _first(report, "userknownhostsfile")
    default_user_known = " ".join(_expand_path(value, tokens) for value in
                                  _DEFAULTS["userknownhostsfile"].split())
    global_known = _first(report, "globalknownhostsfile")
    unsupported = [keyword for keyword in report.get("_set", ())
                   if keyword not in HONOURED and keyword not in _STRUCTURE]
    if "proxycommand" in report and "proxycommand" not in unsupported:
        unsupported.append("proxycommand")
    return HostSettings(
        host=host, hostname=hostname, user=user, port=port,
        identity_files=tuple(_expand_path(value, tokens) for value in identities
                             if value != "none"),
        identities_only=_flag(report, "identitiesonly") or False,
        identity_agent=report.get("identityagent", [None])[0],
        cert_files=tuple(_expand_path(value, tokens)
                         for value in report.get("certificatefile", ())),
        proxy_jump=tuple(jump.split(",")) if jump else (),
        connect_timeout=_number(report, "connecttimeout"),
        server_alive_interval=_number(report, "serveraliveinterval"),
        server_alive_count_max=_number(report, "serveralivecountmax"),
        compression=_flag(report, "compression"),
        address_family=_first(report, "addressfamily"),
        user_known_hosts=None if user_known in (None, default_user_known) else tuple(
            user_known.split()),
        global_known_hosts=None if global_known is None else tuple(
            _expand_path(value, tokens) for value in global_known.split()),
        strict_host_key_checking=_first(report, "stricthostkeychecking"),
        password_authentication=_flag(report, "passwordauthentication"),
        kbd_interactive_authentication=_flag(report, "kbdinteractiveauthentication"),
        batch_mode=_flag(report, "batchmode"),
        unsupported=tuple(unsupported))


_POLICIES = {"true": "strict", "accept-new": "accept-new", "false": "warn"}
"""StrictHostKeyChecking -> host_key_policy. OpenSSH's ``no`` connects whatever the key,
warning on a changed one: ``'warn'``. ``ask`` (the default) cannot prompt in a library
and leaves pssh's default policy."""

def client_keywords(settings: HostSettings) -> tuple[dict[str, Any], set[str]]:
    """The ``SSHClient`` keyword arguments ``settings`` asks for, and the ssh_config
    keywords whose values pssh has no setting for (beyond ``settings.unsupported``)."""
    keywords: dict[str, Any] = {"_hostname": settings.hostname, "user": settings.user,
                                "port": settings.port}
    gaps: set[str] = set()
    if settings.identity_files:
        keywords["_identity_files"] = settings.identity_files
    if settings.identities_only or settings.identity_agent == "none":
        # No agent-key filtering in pssh: IdentitiesOnly means the files only.
        keywords["allow_agent"] = False
    elif settings.identity_agent not in (None, "SSH_AUTH_SOCK") and os.environ.get(
            "SSH_AUTH_SOCK") != settings.identity_agent:
        gaps.add("identityagent")
    if settings.cert_files:
        keywords["cert_file"] = settings.cert_files[0]
        if settings.identity_files:
            # A certificate signs one key: libssh needs that key given as pkey.
            keywords["pkey"] = settings.identity_files[0]
    if settings.proxy_jump:
        keywords.update(_proxy_keywords(settings.proxy_jump))
        if settings.proxy_identity_files:
            keywords["proxy_pkey"] = settings.proxy_identity_files[0]
    if settings.connect_timeout is not None:
        keywords["timeout"] = settings.connect_timeout
    if settings.server_alive_interval is not None:
        keywords["keepalive_seconds"] = settings.server_alive_interval
    if settings.server_alive_count_max is not None:
        gaps.add("serveralivecountmax")
    if settings.compression is not None:
        keywords["compress"] = settings.compression
    if settings.address_family == "inet6":
        keywords["ipv6_only"] = True
    elif settings.address_family == "inet":
        gaps.add("addressfamily")
    known = [path for path in (settings.user_known_hosts or ()) + (
        settings.global_known_hosts or ()) if path != "none"]
    if settings.user_known_hosts is not None or settings.global_known_hosts is not None:
        keywords["known_hosts"] = known or None
    policy = _POLICIES.get(settings.strict_host_key_checking or "")
    if policy is not None:
        keywords["host_key_policy"] = policy
    return keywords, gaps


def _proxy_keywords(hops: tuple[str, ...]) -> dict[str, Any]:
    """``ProxyJump``: one hop as proxy_host/port/user; a chain as a ``proxy_host`` chain
    (the native engine parses ``[user@]host[:port]`` hops itself)."""
    if len(hops) > 1:
        return {"proxy_host": ",".join(hops)}
    user, host, port = _split_hop(hops[0])
    keywords: dict[str, Any] = {"proxy_host": host}
    if port:
        keywords["proxy_port"] = port
    if user:
        keywords["proxy_user"] = user
    return keywords


def _split_hop(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` (an IPv6 address in brackets) as (user, host, port)."""
    user, _, address = spec.rpartition("@")
    host, port = address, ""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.removeprefix(":")
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    return user or None, host, int(port) if port else None


# -- what callers share ----------------------------------------------------------------

_CACHE: dict[tuple[tuple[str, ...], bool], tuple[tuple[float, ...], SSHConfig]] = {}


def open_config(ssh_config: bool | str | os.PathLike[str] | Sequence[str],
                allow_exec: bool = False) -> SSHConfig:
    """The :class:`SSHConfig` for an ``ssh_config=`` argument: ``True`` for
    ``DEFAULT_FILES``, else a path (or a list of paths). Parsed once while the files are
    unchanged.

    :raises TypeError: ``ssh_config`` is none of those.
    :raises SSHConfigError: a named file is missing or has a line OpenSSH would refuse.
    """
    paths: tuple[str, ...]
    if ssh_config is True:
        paths = DEFAULT_FILES
    elif isinstance(ssh_config, (str, os.PathLike)):
        paths = (os.fspath(ssh_config),)
        if not os.path.isfile(os.path.expanduser(paths[0])):
            raise SSHConfigError("no such file", paths[0])
    elif isinstance(ssh_config, (list, tuple)) and all(
            isinstance(path, (str, os.PathLike)) for path in ssh_config):
        paths = tuple(os.fspath(path) for path in ssh_config)
    else:
        raise TypeError(f"ssh_config must be True, a file path or a list of paths, not "
                        f"{ssh_config!r}")
    key = (tuple(os.path.expanduser(path) for path in paths), allow_exec)
    stamps = tuple(_mtime(path) for path in key[0])
    cached = _CACHE.get(key)
    if cached is None or cached[0] != stamps:
        cached = _CACHE[key] = (stamps, SSHConfig(paths, allow_exec=allow_exec))
    return cached[1]


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return -1.0


_LOGGED: set[tuple[str, str]] = set()


def log_unsupported(settings: Iterable[HostSettings], also: dict[str, set[str]] | None = None,
                    ) -> None:
    """Log, once per process for each keyword and host, the keywords that apply to a
    host but that pssh cannot honour: one warning per keyword, naming the hosts.
    ``also`` adds keywords the engine at hand cannot honour, by host."""
    hosts_by_keyword: dict[str, list[str]] = {}
    for entry in settings:
        keywords = set(entry.unsupported) | (also or {}).get(entry.host, set())
        for keyword in sorted(keywords):
            if (keyword, entry.host) not in _LOGGED:
                _LOGGED.add((keyword, entry.host))
                hosts_by_keyword.setdefault(keyword, []).append(entry.host)
    for keyword, hosts in hosts_by_keyword.items():
        shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5
                                        else "")
        logger.warning("ssh_config: %s applies to %s but pssh cannot honour it; ignored",
                       keyword, shown)


def resolve_jumps(config: SSHConfig, settings: HostSettings) -> HostSettings:
    """``settings`` with each ``ProxyJump`` hop looked up in ``config`` as OpenSSH does
    (an alias becomes its HostName, with its Port and User, as ``user@host:port``), and
    the first hop's first IdentityFile as the key for the hops: pssh authenticates every
    hop of a chain with one ``proxy_pkey``."""
    if not settings.proxy_jump:
        return settings
    hops: list[str] = []
    identities: tuple[str, ...] = ()
    for spec in settings.proxy_jump:
        user, host, port = _split_hop(spec)
        hop = host_settings(config.lookup(host, user=user, port=port))
        name = f"[{hop.hostname}]" if ":" in hop.hostname else hop.hostname
        hops.append(f"{hop.user}@{name}:{hop.port}")
        identities = identities or hop.identity_files
    return dataclasses.replace(settings, proxy_jump=tuple(hops),
                               proxy_identity_files=identities)
