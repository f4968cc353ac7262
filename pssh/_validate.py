"""Checks on constructor arguments, run before any connection is made."""

from __future__ import annotations

import codecs
import os
from typing import Any

from ._secrets import describe_key, is_key_text, masked, openssh_key_header
from .exceptions import PKeyFileError

__all__ = ["check_port", "check_pkey", "check_hosts", "check_count", "check_buffer_limit",
           "check_command", "check_encoding", "check_text", "check_seconds_or_none", "read_key",
           "is_encrypted_key"]

_KEY_MARKERS = (b"-----BEGIN OPENSSH PRIVATE KEY-----", b"PRIVATE KEY-----")
"""What every private key file libssh2 and libssh read starts with: OpenSSH's own format,
or PEM (PKCS#1 RSA/DSA/EC, PKCS#8, encrypted or not)."""


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
    if pkey is None:
        return None
    if isinstance(pkey, bytes):
        if not _is_private_key(pkey):
            where = f" for host {host!r}" if host else ""
            raise PKeyFileError(
                f"The private key bytes{where} are not a private key: give the contents of "
                f"an OpenSSH or PEM private key file (it starts with '-----BEGIN ... "
                f"PRIVATE KEY-----'), or the file's path", host=host)
        return pkey
    if not isinstance(pkey, (str, os.PathLike)):
        raise TypeError(f"pkey{' for host ' + repr(host) if host else ''} must be a key "
                        f"file's path or the key's bytes, not {describe_key(pkey)}")
    path = os.path.expanduser(os.fspath(pkey))
    where = f" for host {host!r}" if host else ""
    if is_key_text(path) and not os.path.isfile(path):
        raise PKeyFileError(f"The private key{where} was given as text, which is taken for "
                            f"a file's path: give the key file's path, or its contents as "
                            f"bytes", host=host)
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


def check_command(command: Any, name: str = "command") -> str:
    """Return ``command`` as a string if it is a non-empty ``str`` or UTF-8 ``bytes``.

    :raises TypeError: it is neither.
    :raises ValueError: it is empty or only white space.
    """
    if isinstance(command, bytes):
        command = command.decode("utf-8", "surrogateescape")
    if not isinstance(command, str):
        raise TypeError(f"{name} must be a string (the command line to run), not "
                        f"{type(command).__name__} {command!r}")
    if not command.strip():
        raise ValueError(f"{name} is empty: give the command line to run")
    return command


def check_encoding(encoding: Any, name: str = "encoding") -> str:
    """Return ``encoding`` if Python knows the codec, else raise ``ValueError``."""
    if not isinstance(encoding, str):
        raise TypeError(f"{name} must be a codec name such as 'utf-8', not {encoding!r}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"{name} {encoding!r} is not a codec Python knows; use a name "
                         f"such as 'utf-8' or 'latin-1'") from None
    return encoding


def check_text(value: Any, name: str, host: str | None = None) -> str | None:
    """Return ``value`` if it is a string or ``None``, else raise ``TypeError``."""
    if value is not None and not isinstance(value, str):
        where = f" for host {host!r}" if host else ""
        raise TypeError(f"{name}{where} must be a string or None, not "
                        f"{type(value).__name__} {masked(name, value)}")
    return value


def check_seconds_or_none(value: Any, name: str) -> Any:
    """Return ``value`` if it is ``None`` or a number >= 0, else raise ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0 (0 or None to turn it "
                         f"off), not {value!r}")
    return value


_KEY_FILE_LIMIT = 1024 * 1024
"""Bytes read of a key file at most; private keys are a few kilobytes."""


def read_key(pkey: str | bytes | None, host: str | None = None) -> bytes | None:
    """The private key's bytes: ``pkey`` itself if it is bytes, else the contents of the
    file it names, read once here so that connections need not open it again (checked
    first with :func:`check_pkey`).

    :raises PKeyFileError: the file cannot be read, or does not hold a private key.
    """
    if pkey is None or isinstance(pkey, bytes):
        return pkey
    where = f" for host {host!r}" if host else ""
    try:
        with open(pkey, "rb") as key_file:
            data = key_file.read(_KEY_FILE_LIMIT)
    except OSError as exc:
        raise PKeyFileError(f"Cannot read private key file {pkey!r}{where}: "
                            f"{exc.strerror or exc}", host=host) from exc
    if not _is_private_key(data):
        hint = " (it looks like a public key: give the file without .pub)" if (
            data.startswith((b"ssh-", b"ecdsa-")) or pkey.endswith(".pub")) else ""
        raise PKeyFileError(f"{pkey!r}{where} is not a private key file{hint}; give the "
                            f"path of an OpenSSH or PEM private key", host=host)
    return data


def _is_private_key(data: bytes) -> bool:
    return any(marker in data[:200] for marker in _KEY_MARKERS)


def is_encrypted_key(data: bytes) -> bool:
    """Whether the private key ``data`` needs a passphrase: a PEM key marked encrypted,
    or an OpenSSH key whose cipher is not ``none``."""
    if b"ENCRYPTED" in data[:400]:  # PEM: "Proc-Type: 4,ENCRYPTED" or "BEGIN ENCRYPTED ..."
        return True
    header = openssh_key_header(data)
    return header is not None and header.cipher != b"none"
