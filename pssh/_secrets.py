"""How passwords, passphrases and private keys appear in text pssh writes.

A ``repr``, an error message or a log record is one copy-paste away from a bug report,
so none of them carries a secret: a password or passphrase shows as ``'***'``, and a
private key given as bytes as its key type and the SHA256 fingerprint of its public
half (what ``ssh-keygen -l`` prints), never its contents. The fingerprint is read from
the OpenSSH key format's header, which holds the public key in the clear even when the
private part is encrypted, so it costs a base64 decode and a hash and never needs the
passphrase. A PEM key has no such header: it shows as its length only. A key file's
path is not a secret and shows as it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import Any

__all__ = ["MASK", "SECRET_NAMES", "KEY_NAMES", "describe_key", "is_key_text", "masked"]

MASK = "***"
"""What a password or passphrase shows as."""

SECRET_NAMES = frozenset({"password", "proxy_password", "passphrase"})
"""Settings whose value is a password or passphrase."""

KEY_NAMES = frozenset({"pkey", "private_key", "proxy_pkey"})
"""Settings whose value is a private key: a file's path, or the key's bytes."""

_OPENSSH_MAGIC = b"openssh-key-v1\0"


def masked(name: str, value: Any) -> str:
    """``repr(value)`` for the setting ``name``, with secrets masked: ``'***'`` for a
    password, :func:`describe_key` for a private key that is not a path."""
    if value is None:
        return "None"
    if name in SECRET_NAMES:
        return repr(MASK)
    if name in KEY_NAMES and isinstance(value, str) and is_key_text(value):
        return describe_key(value.encode("utf-8", "replace"))
    if name in KEY_NAMES and not isinstance(value, (str, os.PathLike)):
        return describe_key(value)
    return repr(value)


def is_key_text(value: str) -> bool:
    """Whether ``value``, given where a key file's path goes, is a key's text instead (a
    common slip: ``pkey=open(path).read()``), which must not be echoed as a path."""
    return "PRIVATE KEY" in value or "\n" in value


def describe_key(key: Any) -> str:
    """What a private key given as bytes shows as: ``<private key bytes: ssh-ed25519
    SHA256:...>`` when its public half is in the clear (OpenSSH's format), else ``<N
    bytes of private key>``. Anything else that is not a path shows as its type only."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        return f"<{type(key).__name__} (not shown)>"
    data = bytes(key)
    public = _public_blob(data)
    if public is None:
        return f"<{len(data)} bytes of private key>"
    key_type = _read_string(public, 0)
    digest = base64.b64encode(hashlib.sha256(public).digest()).decode().rstrip("=")
    label = f"{key_type[0].decode('ascii', 'replace')} " if key_type else ""
    return f"<private key bytes: {label}SHA256:{digest}>"


def _public_blob(data: bytes) -> bytes | None:
    """The public key blob in the header of an OpenSSH private key, or ``None``."""
    if b"BEGIN OPENSSH PRIVATE KEY" not in data[:200]:
        return None
    body = b"".join(line.strip() for line in data.splitlines()
                    if line.strip() and not line.startswith(b"-"))
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_OPENSSH_MAGIC):
        return None
    offset = len(_OPENSSH_MAGIC)
    for _ in range(3):  # cipher name, KDF name, KDF options
        field = _read_string(raw, offset)
        if field is None:
            return None
        offset = field[1]
    if len(raw) < offset + 4 or int.from_bytes(raw[offset:offset + 4], "big") < 1:
        return None
    public = _read_string(raw, offset + 4)
    return None if public is None else public[0]


def _read_string(data: bytes, offset: int) -> tuple[bytes, int] | None:
    """An SSH wire-format string at ``offset`` and the offset after it, or ``None``."""
    if len(data) < offset + 4:
        return None
    end = offset + 4 + int.from_bytes(data[offset:offset + 4], "big")
    if end > len(data):
        return None
    return data[offset + 4:end], end
