"""OpenSSH known_hosts files: parsed once, looked up per host, appended to safely.

Theory of operation
-------------------
A known_hosts line is ``[@marker] patterns keytype base64-key [comment]``. ``patterns`` is
either a comma-separated list of host patterns (``host``, ``[host]:port``, wildcards
``*`` and ``?``, negations ``!pattern``) or one hashed name ``|1|salt|hash``, where hash is
HMAC-SHA1(salt, name). The name looked up is the host as given, lower-cased, or
``[host]:port`` when the port is not 22, as OpenSSH's ``ssh`` does.

:class:`KnownHosts` reads its files once (a ``ParallelSSHClient`` shares one with every
host and bastion) and indexes the lines by what a lookup needs:

- lines whose patterns are plain names go in a dict by name: a lookup costs the same for
  a 10-line file and a 100,000-line one;
- lines with a wildcard are few in practice and are matched one by one;
- hashed lines cannot be indexed, since each has its own salt: a lookup computes one
  HMAC-SHA1 per hashed line. Parsing keeps each line's HMAC half-way (the SHA-1 states
  after the salted pads), so a lookup costs two state copies and two short updates per
  hashed line, about 2.5 microseconds (``hmac.digest`` from scratch costs 5): a host
  costs about 25 ms of CPU against 10,000 hashed lines, linear in their number. The
  answer is cached per name.

:meth:`KnownHosts.check` answers ``known``, ``unknown``, ``changed`` (the host is listed,
with other keys: the disagreeing line is named) or ``revoked`` (a ``@revoked`` line
lists the key). A host certificate is accepted when a ``@cert-authority`` line for the
host lists the key that signed it and the signature, principals, certificate type and
validity check out (see :mod:`pssh._ssh_certs`).

:meth:`KnownHosts.add` appends one line in OpenSSH's format for the ``accept-new``
policy. Writers may be greenlets of this process or other processes: each line is one
``write`` on a descriptor opened with ``O_APPEND``, under an exclusive ``flock`` of the
file, so lines never interleave; a host this object has already added is not added twice.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from ._ssh_certs import (
    CERT_SUFFIX,
    HOST_CERTIFICATE,
    Certificate,
    CertificateError,
    certified_key,
    fingerprint,
    key_type_of,
    parse_certificate,
    verify_signature,
)

__all__ = ["DEFAULT_KNOWN_HOSTS", "DEFAULT_POLICY", "POLICIES", "KnownHosts", "KnownLine",
           "Verdict", "check_known_hosts", "check_policy", "host_key_name", "load"]

logger = logging.getLogger("pssh.known_hosts")

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
"""The files read when ``known_hosts`` is not given; new keys go to the first."""

DEFAULT_POLICY = "accept-unknown"
POLICIES = ("strict", "accept-new", DEFAULT_POLICY, "warn", "off")
"""``host_key_policy`` values: what happens to a host whose key is not listed.
``strict`` refuses it, ``accept-new`` records it in the first known_hosts file,
``accept-unknown`` (the default) and ``warn`` accept it without writing anything (``warn``
logs a warning). All of these refuse a changed or revoked key. ``off`` checks nothing."""

KnownHostsSetting = Union[str, "os.PathLike[str]", Sequence[str], "KnownHosts", None]

KNOWN, UNKNOWN, CHANGED, REVOKED = "known", "unknown", "changed", "revoked"
_SHA1_BLOCK = 64
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))
_WILDCARDS = frozenset("*?")


def check_policy(policy: object, where: str = "") -> str:
    """``policy`` if it is one of :data:`POLICIES`.

    :raises ValueError: it is not.
    """
    if not isinstance(policy, str) or policy not in POLICIES:
        suffix = f" for {where}" if where else ""
        raise ValueError(f"host_key_policy{suffix} must be one of "
                         f"{', '.join(map(repr, POLICIES))}, not {policy!r}")
    return policy


def check_known_hosts(value: object, where: str = "") -> tuple[str, ...] | None:
    """The known_hosts paths ``value`` names (``~`` expanded), or ``None`` for none.

    :raises TypeError: ``value`` is not a path, a list of paths or ``None``.
    """
    if value is None:
        return None
    if isinstance(value, KnownHosts):
        return value.paths
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(path, (str, os.PathLike)) and os.fspath(path) for path in value):
        suffix = f" for {where}" if where else ""
        raise TypeError(f"known_hosts{suffix} must be a file path, a list of paths or None "
                        f"(no checking), not {value!r:.200}")
    return tuple(os.path.expanduser(os.fspath(path)) for path in value)


def host_key_name(host: str, port: int) -> str:
    """The name known_hosts lists a host under: ``host`` for port 22, else
    ``[host]:port``; lower-cased."""
    host = host.lower()
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class KnownLine:
    """One key line of a known_hosts file."""

    path: str
    line: int
    marker: str | None  # "cert-authority", "revoked" or None
    patterns: tuple[str, ...]  # empty for a hashed line
    hashed: tuple[bytes, bytes] | None  # (salt, hash)
    key_type: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    @property
    def where(self) -> str:
        return f"{self.path} line {self.line}"

    def matches(self, name: str) -> bool:
        """Whether the line's host patterns take in ``name`` (lower-cased)."""
        if self.hashed is not None:
            salt, digest = self.hashed
            return hmac.compare_digest(hmac.digest(salt, name.encode(), "sha1"), digest)
        return _match_list(self.patterns, name)


@dataclass(frozen=True)
class Verdict:
    """The answer of :meth:`KnownHosts.check`."""

    status: str  # KNOWN, UNKNOWN, CHANGED or REVOKED
    name: str  # the name looked up
    key_type: str
    fingerprint: str
    line: KnownLine | None = None  # the line that agreed or disagreed
    note: str = ""  # why a certificate was not accepted, if one was offered


class KnownHosts:
    """The key lines of some known_hosts files, indexed for lookups.

    :param paths: the files, in order; new keys are written to the first. A missing file
        counts as empty.
    :raises OSError: a file exists but cannot be read.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self.paths = tuple(os.path.expanduser(os.fspath(path)) for path in paths)
        self._by_name: dict[str, list[KnownLine]] = {}
        self._wild: list[KnownLine] = []
        self._hashed: list[tuple[Any, Any, bytes, KnownLine]] = []
        self._cache: dict[str, list[KnownLine]] = {}
        self._added: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()
        self.lines = 0
        self.skipped = 0
        for path in self.paths:
            self._read(path)

    def __repr__(self) -> str:
        return f"<KnownHosts {list(self.paths)} {self.lines} keys>"

    def __reduce__(self) -> tuple[type[KnownHosts], tuple[tuple[str, ...]]]:
        # Sent to another process (a sharded client's worker, a Dask task), the files
        # are read again there: what accept-new wrote meanwhile is in them.
        return KnownHosts, (self.paths,)

    def _read(self, path: str) -> None:
        try:
            with open(path, "rb") as source:
                data = source.read()
        except FileNotFoundError:
            return
        for number, raw in enumerate(data.splitlines(), 1):
            entry = parse_line(raw, path, number)
            if entry is None:
                self.skipped += raw.strip() != b"" and not raw.lstrip().startswith(b"#")
            else:
                self._index(entry)

    def _index(self, entry: KnownLine) -> None:
        self.lines += 1
        if entry.hashed is not None:
            salt, digest = entry.hashed
            if len(salt) > _SHA1_BLOCK:
                salt = hashlib.sha1(salt).digest()
            salt = salt.ljust(_SHA1_BLOCK, b"\0")
            self._hashed.append((hashlib.sha1(salt.translate(_IPAD)),
                                 hashlib.sha1(salt.translate(_OPAD)), digest, entry))
            return
        positive = [pattern for pattern in entry.patterns if not pattern.startswith("!")]
        if any(_WILDCARDS & set(pattern) for pattern in positive):
            self._wild.append(entry)
            return
        for pattern in set(positive):
            self._by_name.setdefault(pattern, []).append(entry)

    def lines_for(self, name: str) -> list[KnownLine]:
        """Every line whose patterns take in ``name``, in file order."""
        found = self._cache.get(name)
        if found is None:
            candidates = self._by_name.get(name, []) + self._wild
            found = [entry for entry in candidates if entry.matches(name)]
            found += self._hashed_lines_for(name.encode())
            found.sort(key=lambda entry: (self.paths.index(entry.path), entry.line))
            self._cache[name] = found
        return found

    def _hashed_lines_for(self, name: bytes) -> list[KnownLine]:
        """The hashed lines whose HMAC-SHA1 of ``name`` is their hash (RFC 2104, from
        the states kept at parse time)."""
        found = []
        for inner_start, outer_start, digest, entry in self._hashed:
            inner = inner_start.copy()
            inner.update(name)
            outer = outer_start.copy()
            outer.update(inner.digest())
            if outer.digest() == digest:
                found.append(entry)
        return found

    def key_types(self, host: str, port: int) -> list[str]:
        """The key types listed for the host (plain key lines only), most recent last."""
        return list(dict.fromkeys(entry.key_type for entry in
                                  self.lines_for(host_key_name(host, port))
                                  if entry.marker is None))

    def check(self, host: str, port: int, blob: bytes, now: float | None = None) -> Verdict:
        """Look the server's key ``blob`` up for ``host`` on ``port``."""
        name = host_key_name(host, port)
        key_type = key_type_of(blob)
        lines = self.lines_for(name)
        verdict = Verdict(UNKNOWN, name, key_type, fingerprint(blob))
        note = ""
        if key_type.endswith(CERT_SUFFIX):
            verdict, note = self._check_certificate(verdict, host, blob, lines, now)
            if verdict.status != UNKNOWN:
                return verdict
            blob = certified_key(blob)
            key_type = key_type_of(blob)
        for entry in lines:
            if entry.marker == "revoked" and entry.blob == blob:
                return Verdict(REVOKED, name, key_type, fingerprint(blob), entry)
        plain = [entry for entry in lines if entry.marker is None]
        for entry in plain:
            if entry.blob == blob:
                return Verdict(KNOWN, name, key_type, fingerprint(blob), entry)
        if plain:
            same_type = [entry for entry in plain if entry.key_type == key_type]
            return Verdict(CHANGED, name, key_type, fingerprint(blob),
                           (same_type or plain)[0], note)
        return Verdict(UNKNOWN, name, key_type, fingerprint(blob), None, note)

    def _check_certificate(self, verdict: Verdict, host: str, blob: bytes,
                           lines: list[KnownLine], now: float | None) -> tuple[Verdict, str]:
        try:
            cert = parse_certificate(blob)
        except CertificateError as exc:
            return verdict, f"the host certificate is unreadable ({exc})"
        revoked = [entry for entry in lines if entry.marker == "revoked"
                   and entry.blob in (cert.signature_key, blob)]
        if revoked:
            return Verdict(REVOKED, verdict.name, verdict.key_type, verdict.fingerprint,
                           revoked[0]), ""
        authorities = [entry for entry in lines if entry.marker == "cert-authority"
                       and entry.blob == cert.signature_key]
        if not authorities:
            return verdict, "no @cert-authority line for this host lists its signer"
        problem = _certificate_problem(cert, host, time.time() if now is None else now)
        if problem:
            return verdict, f"its host certificate {problem}"
        return Verdict(KNOWN, verdict.name, verdict.key_type, verdict.fingerprint,
                       authorities[0]), ""

    def add(self, host: str, port: int, blob: bytes) -> str:
        """Append ``host``'s key to the first file, in OpenSSH's format; return the file.

        :raises OSError: the file cannot be written (its directory is made if missing).
        :raises ValueError: there is no file to write to.
        """
        if not self.paths:
            raise ValueError("no known_hosts file to record the key in")
        name = host_key_name(host, port)
        path = self.paths[0]
        key_type = key_type_of(blob)
        text = f"{name} {key_type} {base64.b64encode(blob).decode('ascii')}\n".encode()
        with self._lock:
            if (name, blob) in self._added:
                return path
            _append_line(path, text)
            self._added.add((name, blob))
            entry = KnownLine(path, 0, None, (name,), None, key_type, blob)
            self._index(entry)
            self._cache.pop(name, None)
        return path


def load(value: KnownHostsSetting) -> KnownHosts | None:
    """A :class:`KnownHosts` for a ``known_hosts`` setting (an object passes through).

    :raises TypeError: the setting is not a path, a list of paths or ``None``.
    :raises OSError: a file exists but cannot be read.
    """
    if value is None or isinstance(value, KnownHosts):
        return value
    paths = check_known_hosts(value)
    return None if paths is None else KnownHosts(paths)


def parse_line(raw: bytes, path: str, number: int) -> KnownLine | None:
    """One line of a known_hosts file, or ``None`` for a comment, blank or bad line."""
    fields = raw.decode("utf-8", "replace").split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = None
    if fields[0].startswith("@"):
        marker = fields.pop(0)[1:]
        if marker not in ("cert-authority", "revoked"):
            return None
    if len(fields) < 3:
        return None
    hosts, key_type, encoded = fields[:3]
    try:
        blob = base64.b64decode(encoded, validate=True)
        if key_type_of(blob) != key_type:
            return None
    except (binascii.Error, CertificateError, ValueError):
        return None
    if hosts.startswith("|"):
        hashed = _hashed_name(hosts)
        if hashed is None:
            return None
        return KnownLine(path, number, marker, (), hashed, key_type, blob)
    patterns = tuple(pattern.lower() for pattern in hosts.split(",") if pattern)
    return KnownLine(path, number, marker, patterns, None, key_type, blob)


def _hashed_name(field: str) -> tuple[bytes, bytes] | None:
    parts = field.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return None
    try:
        return base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3],
                                                                           validate=True)
    except binascii.Error:
        return None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _match(pattern: str, name: str) -> bool:
    """OpenSSH's ``match_pattern``: ``*`` any run, ``?`` any one character."""
    if not _WILDCARDS & set(pattern):
        return pattern == name
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        text = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char)
                       for char in pattern)
        compiled = _PATTERNS[pattern] = re.compile(text, re.DOTALL)
    return compiled.fullmatch(name) is not None


def _match_list(patterns: tuple[str, ...], name: str) -> bool:
    """OpenSSH's ``match_hostname``: a matching negation wins over any positive match."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if _match(pattern[1:], name):
                return False
        elif _match(pattern, name):
            matched = True
    return matched


def _certificate_problem(cert: Certificate, host: str, now: float) -> str:
    """Why ``cert`` does not vouch for ``host`` now; empty if it does."""
    if cert.cert_type != HOST_CERTIFICATE:
        return "is not a host certificate"
    if cert.principals and not any(_match(pattern.lower(), host.lower())
                                   for pattern in cert.principals):
        return f"does not list {host} among its principals"
    if not cert.valid_after <= now < cert.valid_before:
        return "is not valid at this time"
    if not verify_signature(cert.signature_key, cert.signature, cert.signed_data):
        return ("has a signature pssh cannot verify (a forgery, or a CA key type other "
                "than Ed25519 and RSA)")
    return ""


def _append_line(path: str, text: bytes) -> None:
    """Append ``text`` (one line) to ``path`` as one write under an exclusive lock, after
    a newline if the file does not end with one."""
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and _last_byte(path, size) != b"\n":
            text = b"\n" + text
        written = os.write(fd, text)
        if written != len(text):
            raise OSError(f"short write to {path}: {written} of {len(text)} bytes")
    finally:
        os.close(fd)  # releases the lock


def _last_byte(path: str, size: int) -> bytes:
    with open(path, "rb") as source:
        return os.pread(source.fileno(), 1, size - 1)
