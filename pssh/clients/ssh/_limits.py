"""What the libssh engine does not do, and the checks that say so before anything
connects.

File copies and proxies exist only in the native (libssh2) engine; each refusal names
``pssh.clients.native`` so that the way forward is in the message. (Agent forwarding is
refused by both engines, in ``pssh.clients.base.single``.)
"""

from __future__ import annotations

import os
from typing import Any

from ..._validate import check_pkey

__all__ = ["NATIVE", "CopiesNotSupported", "WithoutCopies", "check_cert_file",
           "check_no_proxy"]

NATIVE = "pssh.clients.native"

COPY_METHODS = frozenset({"copy_file", "copy_remote_file", "scp_send", "scp_recv",
                          "sftp_put", "sftp_get", "mkdir", "make_sftp", "_make_sftp"})
"""The native clients' file copy methods, which this engine's clients do not have."""


class CopiesNotSupported(AttributeError, NotImplementedError):
    """A file copy method was asked of a libssh client.

    Also an ``AttributeError``, so ``hasattr(client, 'copy_file')`` is simply False.
    """


class WithoutCopies:
    """Answers the native clients' copy methods with one clear error naming the way
    forward, instead of a bare ``AttributeError``."""

    def __getattr__(self, name: str) -> Any:
        if name not in COPY_METHODS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}",
                                 name=name, obj=self)
        host = self.__dict__.get("host")
        where = f"host {host!r}" if host is not None else "every host"
        raise CopiesNotSupported(
            f"{name} ({where}) is not supported by the libssh client (pssh.clients.ssh): it "
            f"has no SFTP or SCP support; use {NATIVE}, whose clients take the same "
            f"arguments for commands and add file copies", name=name, obj=self)


def check_no_proxy(proxy_host: Any, where: str) -> None:
    """Refuse a proxy before anything connects; ``where`` is ``host 'name'`` or
    ``every host``."""
    if proxy_host is not None:
        raise NotImplementedError(
            f"proxy_host={proxy_host!r} ({where}) is not supported by the libssh "
            f"client (pssh.clients.ssh); use {NATIVE}, which connects through proxies "
            f"with the same arguments")


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
