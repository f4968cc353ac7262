"""OpenSSH key blobs and host certificates, read without any crypto library.

Theory of operation
-------------------
A server's host key reaches us as its wire blob: SSH strings (a 4-byte length, then the
bytes), the first one naming the key type. A host *certificate* (``*-cert-v01@openssh.com``,
PROTOCOL.certkeys in OpenSSH's sources) is such a blob too: the certified key's fields,
then serial, type (1 user, 2 host), key id, the principals, a validity window, options,
the certificate authority's public key, and last the CA's signature over everything
before it.

A ``@cert-authority`` line in known_hosts vouches for a host only if that signature is
genuine: a certificate is just bytes the server sends, so anyone can write one that
*names* a listed CA. pssh depends on no crypto library, so the signature is checked here
with the standard library's integers and hashes: Ed25519 (RFC 8032) and RSA (PKCS #1
v1.5 with SHA-1, SHA-256 or SHA-512) CA keys. A certificate signed by any other CA key
type (ECDSA, DSA) is not accepted; the host key is then looked up as a plain key.
These checks run once per connection, off the fan-out's hot path; an Ed25519
verification costs about a millisecond of CPU.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

__all__ = ["Certificate", "CertificateError", "certified_key", "fingerprint", "key_type_of",
           "parse_certificate", "verify_signature"]

CERT_SUFFIX = "-cert-v01@openssh.com"
HOST_CERTIFICATE = 2


class CertificateError(ValueError):
    """A key blob or certificate is malformed."""


def fingerprint(blob: bytes) -> str:
    """The key's SHA256 fingerprint as OpenSSH prints it: ``SHA256:`` and unpadded
    base64."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii")
    return "SHA256:" + digest.rstrip("=")


def key_type_of(blob: bytes) -> str:
    """The key type a key blob names (its first string), e.g. ``ssh-ed25519``.

    :raises CertificateError: the blob does not start with a string.
    """
    name = _Reader(blob).string()
    try:
        return name.decode("ascii")
    except UnicodeDecodeError:
        raise CertificateError("the key type is not ASCII") from None


class _Reader:
    """Reads SSH wire fields from a blob, front to back."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise CertificateError("the key blob is truncated")
        chunk = self.data[self.at:self.at + size]
        self.at += size
        return chunk

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def uint64(self) -> int:
        value: int = struct.unpack(">Q", self.take(8))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)


# Public fields of each certified key type, as a list of readers' method names.
_KEY_FIELDS = {
    "ssh-ed25519": ("string",),
    "ssh-rsa": ("mpint", "mpint"),
    "ecdsa-sha2-nistp256": ("string", "string"),
    "ecdsa-sha2-nistp384": ("string", "string"),
    "ecdsa-sha2-nistp521": ("string", "string"),
    "ssh-dss": ("mpint", "mpint", "mpint", "mpint"),
}


@dataclass(frozen=True)
class Certificate:
    """What pssh checks of an OpenSSH certificate."""

    key_type: str
    cert_type: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    signature_key: bytes
    signature: bytes
    signed_data: bytes


def parse_certificate(blob: bytes) -> Certificate:
    """Read a certificate blob (``*-cert-v01@openssh.com``).

    :raises CertificateError: it is not a certificate pssh can read.
    """
    reader = _Reader(blob)
    name = reader.string().decode("ascii", "replace")
    if not name.endswith(CERT_SUFFIX):
        raise CertificateError(f"{name} is not a certificate type")
    base = name[:-len(CERT_SUFFIX)]
    if base not in _KEY_FIELDS:
        raise CertificateError(f"unknown certificate type {name}")
    reader.string()  # nonce
    for field in _KEY_FIELDS[base]:
        getattr(reader, field)()
    reader.uint64()  # serial
    cert_type = reader.uint32()
    key_id = reader.string().decode("utf-8", "replace")
    principals = _Reader(reader.string())
    names = []
    while principals.at < len(principals.data):
        names.append(principals.string().decode("utf-8", "replace"))
    valid_after, valid_before = reader.uint64(), reader.uint64()
    for _ in range(3):  # critical options, extensions, reserved
        reader.string()
    signature_key = reader.string()
    signed_end = reader.at
    signature = reader.string()
    return Certificate(base, cert_type, key_id, tuple(names), valid_after, valid_before,
                       signature_key, signature, blob[:signed_end])


def certified_key(blob: bytes) -> bytes:
    """The plain key blob of the key a certificate blob certifies.

    :raises CertificateError: ``blob`` is not a certificate pssh can read.
    """
    reader = _Reader(blob)
    name = reader.string().decode("ascii", "replace")
    base = name[:-len(CERT_SUFFIX)] if name.endswith(CERT_SUFFIX) else ""
    if base not in _KEY_FIELDS:
        raise CertificateError(f"{name} is not a certificate type")
    reader.string()  # nonce
    start = reader.at
    for field in _KEY_FIELDS[base]:
        getattr(reader, field)()
    return struct.pack(">I", len(base)) + base.encode() + blob[start:reader.at]


def verify_signature(key_blob: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (an SSH signature blob) by ``key_blob`` over ``data`` is
    genuine. Ed25519 and RSA keys only; any other key type gives False."""
    try:
        key = _Reader(key_blob)
        key_type = key.string()
        sig = _Reader(signature)
        sig_type, sig_bytes = sig.string(), sig.string()
        if key_type == b"ssh-ed25519" and sig_type == b"ssh-ed25519":
            return _ed25519_verify(key.string(), sig_bytes, data)
        if key_type == b"ssh-rsa" and sig_type in _RSA_DIGESTS:
            exponent, modulus = key.mpint(), key.mpint()
            return _rsa_verify(exponent, modulus, sig_type, sig_bytes, data)
    except CertificateError:
        return False
    return False


# -- RSA, PKCS #1 v1.5 (RFC 8017 section 8.2.2) --------------------------------------------

_RSA_DIGESTS = {
    b"ssh-rsa": ("sha1", "3021300906052b0e03021a05000414"),
    b"rsa-sha2-256": ("sha256", "3031300d060960864801650304020105000420"),
    b"rsa-sha2-512": ("sha512", "3051300d060960864801650304020305000440"),
}


def _rsa_verify(exponent: int, modulus: int, sig_type: bytes, sig: bytes,
                data: bytes) -> bool:
    size = (modulus.bit_length() + 7) // 8
    value = int.from_bytes(sig, "big")
    if modulus <= 0 or len(sig) > size or value >= modulus:
        return False
    digest_name, prefix = _RSA_DIGESTS[sig_type]
    info = bytes.fromhex(prefix) + hashlib.new(digest_name, data).digest()
    if size < len(info) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (size - len(info) - 3) + b"\x00" + info
    return pow(value, exponent, modulus).to_bytes(size, "big") == expected


# -- Ed25519 (RFC 8032 section 5.1.7), extended coordinates --------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_Point = tuple[int, int, int, int]


def _add(a: _Point, b: _Point) -> _Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa, bb = (y1 - x1) * (y2 - x2) % _P, (y1 + x1) * (y2 + x2) % _P
    cc, dd = 2 * _D * t1 * t2 % _P, 2 * z1 * z2 % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _times(scalar: int, point: _Point) -> _Point:
    result: _Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _decode(encoded: bytes) -> _Point | None:
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & (2**255 - 1)
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P or (x == 0 and sign):
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, x * y % _P


def _same(a: _Point, b: _Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


_BASE = _decode((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))


def _ed25519_verify(public: bytes, sig: bytes, data: bytes) -> bool:
    if len(sig) != 64 or _BASE is None:
        return False
    a, r = _decode(public), _decode(sig[:32])
    s = int.from_bytes(sig[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + data).digest(), "little") % _L
    return _same(_times(s, _BASE), _add(r, _times(h, a)))
