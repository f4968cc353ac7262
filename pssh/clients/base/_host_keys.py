"""What a client does with the server's host key: the policy over :mod:`pssh._known_hosts`.

Theory of operation
-------------------
The check runs once per connection, after the key exchange (the server has proved it
holds the key it offered) and before authentication (nothing secret has been sent yet).
Every policy but ``off`` refuses a key that differs from the one listed for the host, or
that a ``@revoked`` line lists: that is the man-in-the-middle that host keys exist to
stop, and refusing it breaks no script that worked before, since the key on file was the
one it used to connect with. They differ on a host with no key on file: ``strict``
refuses it, ``accept-new`` records it, ``accept-unknown`` (the default, so parallel-ssh
scripts keep running on hosts nobody has recorded) and ``warn`` let it through.

Before the key exchange, a host with keys on file gets their algorithms first in its
offer, as OpenSSH's ``ssh`` does, so a server holding several keys shows the one on
file instead of one that would look like a change.
"""

from __future__ import annotations

import logging

from ..._known_hosts import (
    CHANGED,
    KNOWN,
    REVOKED,
    UNKNOWN,
    KnownHosts,
    KnownHostsSetting,
    Verdict,
    check_known_hosts,
    check_policy,
    load,
)
from ...exceptions import HostKeyError

__all__ = ["check_host_key_settings", "host_key_algorithms", "host_key_settings",
           "verify_host_key"]

logger = logging.getLogger("pssh.host_keys")

# Key type on file -> the host key algorithms that show such a key, most preferred first.
_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-dss": ("ssh-dss",),
}
_USUAL_ORDER = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256")


def check_host_key_settings(known_hosts: KnownHostsSetting, policy: object,
                            where: str) -> tuple[str, tuple[str, ...] | None]:
    """The checked policy and the known_hosts paths for a client of ``where``
    (``host 'x'``); ``None`` for the paths when nothing is to be checked.

    :raises ValueError: ``policy`` is not a policy, or asks for checking while
        ``known_hosts`` is ``None``.
    :raises TypeError: ``known_hosts`` is not a path, a list of paths or ``None``.
    """
    checked = check_policy(policy, where)
    paths = check_known_hosts(known_hosts, where)
    if paths is None and checked in ("strict", "accept-new"):
        raise ValueError(f"host_key_policy={checked!r} for {where} needs known_hosts files: "
                         f"known_hosts=None turns host key checking off")
    return checked, None if checked == "off" else paths


def host_key_settings(known_hosts: KnownHostsSetting, policy: object,
                      where: str) -> tuple[str, KnownHosts | None]:
    """As :func:`check_host_key_settings`, with the files parsed (a parsed
    :class:`KnownHosts` given as ``known_hosts`` is used as it is).

    :raises OSError: a known_hosts file exists but cannot be read.
    """
    checked, paths = check_host_key_settings(known_hosts, policy, where)
    return checked, None if paths is None else load(known_hosts)


def host_key_algorithms(known: KnownHosts, host: str, port: int) -> list[str]:
    """The host key algorithms to offer ``host``: those of its keys on file first, then
    the usual ones; empty when no key is on file (the library's own order stays)."""
    on_file = [name for key_type in known.key_types(host, port)
               for name in _ALGORITHMS.get(key_type, ())]
    if not on_file:
        return []
    return list(dict.fromkeys(on_file + list(_USUAL_ORDER)))


def verify_host_key(known: KnownHosts, policy: str, host: str, port: int,
                    blob: bytes) -> None:
    """Check the server's key ``blob`` for ``host`` on ``port`` under ``policy``;
    record it under ``accept-new``.

    :raises HostKeyError: the key is refused.
    """
    verdict = known.check(host, port, blob)
    if verdict.status == KNOWN:
        logger.debug("Host key of %s port %s (%s %s) matches %s", host, port,
                     verdict.key_type, verdict.fingerprint, verdict.line and verdict.line.where)
        return
    if verdict.status != UNKNOWN or policy == "strict":
        raise _refusal(verdict, host, port, known)
    if policy == "accept-new":
        try:
            path = known.add(host, port, blob)
        except (OSError, ValueError) as exc:
            logger.warning("Could not record the host key of %s port %s in %s: %s", host,
                           port, known.paths[0] if known.paths else "known_hosts", exc)
            return
        logger.info("Recorded the host key of %s port %s (%s %s) in %s", host, port,
                    verdict.key_type, verdict.fingerprint, path)
        return
    log = logger.warning if policy == "warn" else logger.debug
    log("Host %s port %s is not in known_hosts; accepting its %s key %s unverified%s",
        host, port, verdict.key_type, verdict.fingerprint,
        f" ({verdict.note})" if verdict.note else "")


def _refusal(verdict: Verdict, host: str, port: int, known: KnownHosts) -> HostKeyError:
    line = verdict.line
    offered = f"{verdict.key_type} key {verdict.fingerprint}"
    if verdict.status == UNKNOWN:
        files = ", ".join(known.paths) or "no file"
        note = f" ({verdict.note})" if verdict.note else ""
        message = (f"Host key verification failed for {host} port {port}: the host is not "
                   f"in known_hosts ({files}) and host_key_policy is 'strict'; it offered "
                   f"{offered}{note}. Add its key (for example with ssh-keyscan, after "
                   f"checking the fingerprint) or use host_key_policy='accept-new'")
    elif verdict.status == CHANGED:
        assert line is not None
        message = (f"Host key verification failed for {host} port {port}: it offered "
                   f"{offered}, but {line.where} expects {line.key_type} key "
                   f"{line.fingerprint}. Someone may be impersonating the host; if its key "
                   f"was changed on purpose, remove that line (ssh-keygen -R "
                   f"'{verdict.name}' -f {line.path}) and connect again")
    else:
        assert verdict.status == REVOKED and line is not None
        message = (f"Host key verification failed for {host} port {port}: it offered "
                   f"{offered}, which {line.where} marks @revoked")
    return HostKeyError(
        message, host=host, port=port, reason=verdict.status, key_type=verdict.key_type,
        fingerprint=verdict.fingerprint,
        expected_key_type=line.key_type if line is not None else None,
        expected_fingerprint=line.fingerprint if line is not None else None,
        known_hosts_file=line.path if line is not None else None,
        known_hosts_line=line.line if line is not None else None)
