"""``ssh_config=``: filling a client's settings from OpenSSH configuration files.

What the caller says wins over the file. "Says" means *passed*: a decorator on each
public constructor records which arguments the call named (:func:`remember_explicit`
for the parallel clients, :func:`apply_ssh_config` for the single-host ones), so
``port=22`` given explicitly beats a file's ``Port 2222`` while an omitted ``port``
takes it. Per-host ``HostConfig`` values win over both (the parallel client applies
them last). A subclass whose ``__init__`` passes every argument on to ours counts as
having named them all: only the outermost constructor call is recorded.

The file's ``HostName`` becomes the address connected to (``_hostname``); the client's
``host`` stays the name the caller gave, so outputs and logs show that.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..._ssh_settings import (
    HostSettings,
    client_keywords,
    host_settings,
    log_unsupported,
    open_config,
    resolve_jumps,
)

__all__ = ["apply_ssh_config", "engine_keywords", "fill", "log_engine_gaps", "remember_explicit",
           "resolve"]

_Init = TypeVar("_Init", bound=Callable[..., None])

# SSHClient keyword -> the ssh_config keyword it comes from (for engine-level gaps).
_SOURCE = {"cert_file": "certificatefile", "proxy_host": "proxyjump",
           "known_hosts": "userknownhostsfile", "host_key_policy": "stricthostkeychecking",
           "_identity_files": "identityfile"}


def resolve(ssh_config: Any, host: str, user: str | None = None, port: int | None = None,
            ) -> HostSettings:
    """The settings ``ssh_config`` (as the clients take it) gives ``host``, with ``user``
    and ``port`` as given on the command line (``ssh -l``/``-p``)."""
    config = open_config(ssh_config)
    return resolve_jumps(config, host_settings(config.lookup(host, user=user, port=port)))


def engine_keywords(settings: HostSettings, accepted: frozenset[str] | set[str],
                    ) -> tuple[dict[str, Any], set[str]]:
    """The keyword arguments ``settings`` gives an engine's client that takes
    ``accepted``, and the ssh_config keywords it cannot honour."""
    found, gaps = client_keywords(settings)
    if "cert_file" not in accepted:
        found.pop("pkey", None)  # the key was for the certificate only
    for name in [name for name in found if name not in accepted]:
        gaps.add(_SOURCE.get(name, name))
        del found[name]
    return found, gaps


def fill(keywords: dict[str, Any], accepted: frozenset[str] | set[str],
         explicit: frozenset[str] | set[str], settings: HostSettings) -> None:
    """Put into ``keywords`` the file's values for those not in ``explicit``; log what
    the engine cannot honour (once per keyword and host)."""
    found, gaps = engine_keywords(settings, accepted)
    keywords.update((name, value) for name, value in found.items() if name not in explicit)
    log_unsupported([settings], {settings.host: gaps})


def log_engine_gaps(all_settings: Iterable[HostSettings | None],
                    accepted: frozenset[str] | set[str]) -> None:
    """Log for many hosts at once, one warning per keyword naming its hosts."""
    present = [settings for settings in all_settings if settings is not None]
    gaps = {settings.host: engine_keywords(settings, accepted)[1] for settings in present}
    log_unsupported(present, gaps)


def remember_explicit(init: _Init) -> _Init:
    """Record on ``self._explicit`` the arguments the outermost constructor call named."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if "_explicit" not in self.__dict__:
            self._explicit = frozenset(signature.bind(self, *args, **kwargs).arguments)
        init(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


def apply_ssh_config(init: _Init) -> _Init:
    """For a single-host client: with ``ssh_config=``, fill the arguments the call did
    not name from the file's settings for ``host``."""
    signature = inspect.signature(init)
    accepted = frozenset(signature.parameters)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        ssh_config = kwargs.get("ssh_config")
        if ssh_config is not None and ssh_config is not False:
            named = signature.bind(self, *args, **kwargs).arguments
            if isinstance(named.get("host"), str):  # else the constructor refuses it
                settings = resolve(ssh_config, named["host"], named.get("user"),
                                   named.get("port"))
                fill(kwargs, accepted, set(named), settings)
        init(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]
