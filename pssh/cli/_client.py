"""From a :class:`~pssh.cli._usage.Plan` to a ``ParallelSSHClient``, without connecting.

``-O Key=Value`` takes the ``ssh -o`` keywords that map onto the clients' arguments;
anything else is refused by name rather than ignored, so a script never believes an
option took effect when it did not. Keyword arguments that a client may not have yet
(``ssh_config=``, ``known_hosts=``, ``host_key_policy=``) are looked up in its signature:
a release without them refuses the option that needs them.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

from ..config import HostConfig
from ..exceptions import SSHError
from ._hosts import Target, UsageError
from ._usage import DEFAULT_SSH_CONFIG, Plan

__all__ = ["make_client", "client_settings", "DEFAULT_CONNECT_TIMEOUT"]

# Without -t or ConnectTimeout, an address that never answers fails after this long
# instead of after the system's TCP timeout (minutes).
DEFAULT_CONNECT_TIMEOUT = 30.0

_YES = {"yes": True, "true": True, "no": False, "false": False}
_HOST_KEY_CHECKING = {"yes": "strict", "accept-new": "accept-new", "no": "accept-unknown",
                      "off": "off", "ask": "strict"}


def _yes_no(value: str) -> bool:
    if value.lower() not in _YES:
        raise ValueError("expected yes or no")
    return _YES[value.lower()]


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError("expected a port number")
    return port


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds >= 0:
        raise ValueError("expected seconds >= 0")
    return seconds


def _attempts(value: str) -> int:
    if int(value) < 1:
        raise ValueError("expected a number >= 1")
    return int(value) - 1


def _policy(value: str) -> str:
    if value.lower() not in _HOST_KEY_CHECKING:
        raise ValueError(f"expected one of {', '.join(_HOST_KEY_CHECKING)}")
    return _HOST_KEY_CHECKING[value.lower()]


def _family(value: str) -> bool:
    if value.lower() not in ("any", "inet", "inet6"):
        raise ValueError("expected any, inet or inet6")
    return value.lower() == "inet6"


def _key_path(value: str) -> str:
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        raise ValueError(f"key file {value!r} does not exist")
    return path


# ssh -o keyword (lower case) -> (client keyword, conversion). IdentitiesOnly and BatchMode
# are handled apart: one sets two keywords, the other none (pssh never prompts).
SSH_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "port": ("port", _port),
    "user": ("user", str),
    "identityfile": ("pkey", _key_path),
    "connecttimeout": ("timeout", _seconds),
    "connectionattempts": ("num_retries", _attempts),
    "serveraliveinterval": ("keepalive_seconds", int),
    "compression": ("compress", _yes_no),
    "proxyjump": ("proxy_host", str),
    "stricthostkeychecking": ("host_key_policy", _policy),
    "userknownhostsfile": ("known_hosts", lambda value: value.split()),
    "addressfamily": ("ipv6_only", _family),
}
_SPELLING = {"port": "Port", "user": "User", "identityfile": "IdentityFile",
             "connecttimeout": "ConnectTimeout", "connectionattempts": "ConnectionAttempts",
             "serveraliveinterval": "ServerAliveInterval", "compression": "Compression",
             "proxyjump": "ProxyJump", "stricthostkeychecking": "StrictHostKeyChecking",
             "userknownhostsfile": "UserKnownHostsFile", "addressfamily": "AddressFamily",
             "identitiesonly": "IdentitiesOnly", "batchmode": "BatchMode"}


def _ssh_option(text: str) -> dict[str, Any]:
    """The client keywords of one ``-O Key=Value`` (or ``-O "Key Value"``)."""
    key, sep, value = text.partition("=")
    if not sep:
        key, _, value = text.strip().partition(" ")
    key, value = key.strip(), value.strip()
    name = key.lower()
    if name not in _SPELLING:
        raise UsageError(f"-O {key}: not an option pssh takes; it takes "
                         f"{', '.join(sorted(_SPELLING.values()))}")
    if not value:
        raise UsageError(f"-O {key} needs a value: -O {_SPELLING[name]}=VALUE")
    try:
        if name == "identitiesonly":
            only = _yes_no(value)
            return {"allow_agent": not only, "identity_auth": not only}
        if name == "batchmode":
            _yes_no(value)
            return {}
        keyword, convert = SSH_OPTIONS[name]
        return {keyword: convert(value)}
    except ValueError as exc:
        raise UsageError(f"-O {_SPELLING[name]}={value}: {exc}") from None


def client_settings(plan: Plan) -> dict[str, Any]:
    """The keyword arguments of the client, from ``-O`` then the dedicated options."""
    settings: dict[str, Any] = {"num_retries": 0, "timeout": DEFAULT_CONNECT_TIMEOUT}
    for text in plan.ssh_options:
        settings.update(_ssh_option(text))
    if plan.timeout is not None:
        settings["timeout"] = plan.timeout or None
    if plan.user is not None:
        settings["user"] = plan.user
    if plan.key_file is not None:
        settings["pkey"] = plan.key_file
    if plan.host_key_policy is not None:
        settings["host_key_policy"] = plan.host_key_policy
    if plan.ssh_config is not None:
        settings["ssh_config"] = (True if plan.ssh_config == DEFAULT_SSH_CONFIG
                                  else os.path.expanduser(plan.ssh_config))
    settings["pool_size"] = plan.parallelism
    return settings


_OPTION_OF = {"ssh_config": "--ssh-config", "host_key_policy": "--host-key-policy",
              "known_hosts": "-O UserKnownHostsFile"}


def _check_available(client_class: type, settings: dict[str, Any]) -> None:
    accepted = inspect.signature(client_class).parameters
    for keyword, option in _OPTION_OF.items():
        if keyword in settings and keyword not in accepted:
            raise UsageError(f"{option} is not available yet in this version of pssh's "
                             f"clients")


def _host_config(targets: list[Target]) -> list[HostConfig] | None:
    """Per-host users and ports from ``user@host:port`` entries; ``None`` if none has."""
    if all(target.user is None and target.port is None for target in targets):
        return None
    return [HostConfig(user=target.user, port=target.port) for target in targets]


def make_client(plan: Plan) -> Any:
    """The engine's ``ParallelSSHClient`` for the plan's hosts, not connected yet.

    :raises UsageError: an option or a setting the client refuses before connecting.
    """
    settings = client_settings(plan)
    module = importlib.import_module(f"pssh.clients.{plan.engine}")
    client_class = module.ParallelSSHClient
    _check_available(client_class, settings)
    if plan.action != "run" and plan.engine != "native":
        raise UsageError(f"pssh {plan.action} needs the libssh2 engine: the libssh "
                         f"client has no file copies yet")
    if plan.processes is not None:
        if plan.engine != "native":
            raise UsageError("--processes needs the libssh2 engine: the sharded client's "
                             "workers run libssh2")
        client_class = importlib.import_module("pssh.clients.sharded").ShardedSSHClient
        settings["processes"] = plan.processes
    try:
        return client_class([target.host for target in plan.targets],
                            host_config=_host_config(plan.targets), **settings)
    except (SSHError, ValueError, TypeError, NotImplementedError, OSError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
