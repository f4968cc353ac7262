"""Checks on constructor arguments, run before any connection is made."""

from __future__ import annotations

import os
from typing import Any

from .exceptions import PKeyFileError

__all__ = ["check_port", "check_pkey", "check_hosts", "check_count", "check_buffer_limit"]


def check_port(port: Any, host: str | None = None) -> int:
    """Return ``port`` if it is a TCP port number, else raise ``ValueError``."""
    where = f" for host {host!r}" if host else ""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port{where} must be an integer from 1 to 65535, not {port!r}")
    return port


def check_count(value: Any, name: str) -> int:
    """Return ``value`` if it is a non-negative integer, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
    return value


def check_buffer_limit(limit: Any) -> int | None:
    """Return ``limit`` if it is a positive integer or ``None``, else raise ``ValueError``."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"buffer_limit must be a number of bytes >= 1, or None for no "
                         f"limit, not {limit!r}")
    return limit


def check_pkey(pkey: str | bytes | os.PathLike[str] | None,
               host: str | None = None) -> str | bytes | None:
    """Expand a private key path (``~`` allowed) and check the file is readable.

    Key bytes (the key file's contents) are returned as they are.

    :raises PKeyFileError: the path does not name a readable file.
    """
    if pkey is None or isinstance(pkey, bytes):
        return pkey
    path = os.path.expanduser(os.fspath(pkey))
    where = f" for host {host!r}" if host else ""
    if not os.path.isfile(path):
        raise PKeyFileError(f"Private key file {path!r}{where} does not exist; pass the path "
                            f"of an existing key file or the key's bytes", host=host)
    if not os.access(path, os.R_OK):
        raise PKeyFileError(f"Private key file {path!r}{where} is not readable by this user",
                            host=host)
    return path


def check_hosts(hosts: Any) -> list[str]:
    """Return ``hosts`` as a list, rejecting a single string and other non-lists."""
    if isinstance(hosts, (str, bytes)):
        raise TypeError(f"hosts must be a list of host names, not the string {hosts!r}; "
                        f"for one host write [{hosts!r}]")
    if hosts is None or not hasattr(hosts, "__iter__"):
        raise TypeError(f"hosts must be a list of host names, not {hosts!r}")
    host_list = list(hosts)
    for position, host in enumerate(host_list):
        if not isinstance(host, str) or not host:
            raise TypeError(f"hosts[{position}] must be a non-empty host name string, "
                            f"not {host!r}")
    return host_list
