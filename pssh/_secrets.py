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
import os
from typing import Any, NamedTuple

from ._ssh_certs import CertificateError, fingerprint, key_type_of

__all__ = ["MASK", "SECRET_NAMES", "KEY_NAMES", "OpenSSHKeyHeader", "describe_key",
           "is_key_text", "masked", "openssh_key_header", "openssh_public_key_line"]

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
    header = openssh_key_header(data)
    if header is None or header.public is None:
        return f"<{len(data)} bytes of private key>"
    try:
        label = f"{key_type_of(header.public)} "
    except CertificateError:
        label = ""
    return f"<private key bytes: {label}{fingerprint(header.public)}>"


class OpenSSHKeyHeader(NamedTuple):
    """The clear part of an OpenSSH private key file: its cipher (``b"none"`` when not
    encrypted) and its first public key blob (``None`` if the file is cut short)."""

    cipher: bytes
    public: bytes | None


def openssh_key_header(data: bytes) -> OpenSSHKeyHeader | None:
    """The header of an OpenSSH-format private key, or ``None`` for any other format."""
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
    cipher = _read_string(raw, len(_OPENSSH_MAGIC))
    if cipher is None:
        return None
    offset = cipher[1]
    for _ in range(2):  # KDF name, KDF options
        field = _read_string(raw, offset)
        if field is None:
            return OpenSSHKeyHeader(cipher[0], None)
        offset = field[1]
    if len(raw) < offset + 4 or int.from_bytes(raw[offset:offset + 4], "big") < 1:
        return OpenSSHKeyHeader(cipher[0], None)
    public = _read_string(raw, offset + 4)
    return OpenSSHKeyHeader(cipher[0], None if public is None else public[0])


def openssh_public_key_line(data: bytes) -> bytes | None:
    """The public half of an OpenSSH-format private key as a ``.pub`` file's line
    (``ssh-ed25519 AAAA...``), read from the key's clear header; ``None`` for any other
    format or a header without a public key."""
    header = openssh_key_header(data)
    if header is None or header.public is None:
        return None
    try:
        key_type = key_type_of(header.public)
    except CertificateError:
        return None
    return key_type.encode("ascii") + b" " + base64.b64encode(header.public)


def _read_string(data: bytes, offset: int) -> tuple[bytes, int] | None:
    """An SSH wire-format string at ``offset`` and the offset after it, or ``None``."""
    if len(data) < offset + 4:
        return None
    end = offset + 4 + int.from_bytes(data[offset:offset + 4], "big")
    if end > len(data):
        return None
    return data[offset + 4:end], end
