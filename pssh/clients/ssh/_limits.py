"""What the libssh engine does not do, and the checks that say so before anything
connects.

File copies, proxies and agent forwarding exist only in the native (libssh2) engine; each
refusal names ``pssh.clients.native`` so that the way forward is in the message.
"""

from __future__ import annotations

import os
from typing import Any

from ..._validate import check_pkey

__all__ = ["NATIVE", "check_cert_file", "check_libssh_options", "not_supported"]

NATIVE = "pssh.clients.native"


def not_supported(method: str, where: str) -> NotImplementedError:
    """The error for a file copy method, which this engine does not have; ``where`` is
    ``host 'name'`` or ``every host``."""
    return NotImplementedError(
        f"{method} ({where}) is not supported by the libssh client "
        f"(pssh.clients.ssh): it has no SFTP or SCP support; use {NATIVE}, whose clients "
        f"take the same arguments for commands and add file copies")


def check_libssh_options(where: str, proxy_host: Any, forward_ssh_agent: Any) -> None:
    """Refuse what the libssh client cannot do, before anything connects; ``where`` is
    ``host 'name'`` or ``every host``."""
    if proxy_host is not None:
        raise NotImplementedError(
            f"proxy_host={proxy_host!r} ({where}) is not supported by the libssh "
            f"client (pssh.clients.ssh); use {NATIVE}, which connects through proxies "
            f"with the same arguments")
    if forward_ssh_agent:
        raise NotImplementedError(
            f"forward_ssh_agent=True ({where}) is not supported by the libssh client "
            f"(pssh.clients.ssh): ssh-python gives no way to serve the agent requests the "
            f"server sends back. Leave it off, or use OpenSSH's `ssh -A` for commands that "
            f"need the agent on the remote side")


def check_cert_file(cert_file: Any, pkey: str | bytes | None, host: str) -> str | None:
    """Return ``cert_file`` as a checked path (``~`` expanded), or ``None``.

    :raises PKeyFileError: the file is missing or unreadable.
    :raises ValueError: there is no ``pkey`` for it to certify.
    """
    if cert_file is None:
        return None
    if not isinstance(cert_file, (str, os.PathLike)):
        raise TypeError(f"cert_file for host {host!r} must be a file path, not {cert_file!r}")
    path = check_pkey(cert_file, host)
    if pkey is None:
        raise ValueError(f"cert_file {cert_file!r} for host {host!r} needs pkey: give the "
                         f"private key the certificate was issued for")
    assert isinstance(path, str)
    return path
