"""Exceptions raised by pssh.

The names are parallel-ssh's, so ``except pssh.exceptions.ConnectionError`` keeps working in
existing scripts. Unlike parallel-ssh, every class derives from :class:`SSHError`, and the
classes are grouped by what a caller can do about them:

- cannot connect: :class:`ConnectionError` (:class:`UnknownHostError`,
  :class:`NoIPv6AddressFoundError`, :class:`ProxyError` are kinds of it);
- cannot authenticate: :class:`AuthenticationError` (:class:`PKeyFileError` is one kind);
- ran out of time: :class:`Timeout`;
- unread output filled its buffer while waiting for a command to end:
  :class:`BufferFullError`;
- the session or channel failed after connecting: :class:`SessionError` (:class:`ShellError`);
- file copy failed: :class:`SFTPError` (:class:`SFTPIOError`), :class:`SCPError`;
- the call itself was wrong: :class:`HostArgumentError`, :class:`HostConfigError`,
  :class:`InvalidAPIUseError`.

Each error carries ``host`` and ``port`` (``None`` where no host is involved) and its
``str()`` is a sentence that names them. Where the error comes from the SSH library or the
server, ``reason`` holds their own words (libssh2's or libssh's message, an SFTP status),
so code can act on it without parsing the sentence.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SSHError", "ConnectionError", "UnknownHostError", "NoIPv6AddressFoundError", "ProxyError",
    "AuthenticationError", "PKeyFileError", "Timeout", "BufferFullError", "SessionError",
    "ShellError",
    "SFTPError", "SFTPIOError", "SCPError", "HostArgumentError", "HostConfigError",
    "InvalidAPIUseError",
    # parallel-ssh 1.x spellings
    "SSHException", "UnknownHostException", "ConnectionErrorException",
    "AuthenticationException", "HostArgumentException",
]


class SSHError(Exception):
    """Base class of every pssh error.

    :param message: a sentence saying what went wrong and, where possible, what to do.
    :param host: the host the error belongs to, if any.
    :param port: the port the error belongs to, if any.
    :param reason: what the SSH library or the server said, if the error came from them.
    """

    def __init__(self, message: str, *args: Any, host: str | None = None,
                 port: int | None = None, reason: str | None = None) -> None:
        super().__init__(message, *args)
        self.message = message
        self.host = host
        self.port = port
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class ConnectionError(SSHError):  # noqa: A001 - parallel-ssh's public name
    """Could not open or keep a connection to the host."""


class UnknownHostError(ConnectionError):
    """The host name could not be resolved."""


class NoIPv6AddressFoundError(ConnectionError):
    """``ipv6_only`` was asked for but the host has no IPv6 address."""


class ProxyError(ConnectionError):
    """The connection through the proxy (bastion) host failed."""


class AuthenticationError(SSHError):
    """Every authentication method that was tried failed."""


class PKeyFileError(AuthenticationError):
    """The private key file is missing or cannot be read."""


class Timeout(SSHError, TimeoutError):
    """A call ran out of time; also a builtin :class:`TimeoutError`.

    Raised by ``join(timeout=...)`` with the outputs that finished and those that did not,
    by output iteration with ``read_timeout`` and by connection set-up with ``timeout``.
    Output read before the timeout stays readable.
    """

    def __init__(self, message: str, *args: Any, host: str | None = None,
                 port: int | None = None, finished_output: list[Any] | None = None,
                 unfinished_output: list[Any] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message, *args, host=host, port=port, reason=reason)
        self.finished_output = finished_output if finished_output is not None else []
        self.unfinished_output = unfinished_output if unfinished_output is not None else []


class BufferFullError(SSHError):
    """A host's unread output reached its buffer limit while the caller waited for the
    command to end: read the output (or ``join`` with ``consume_output=True``), or run
    the command with a larger ``buffer_limit``. Nothing was dropped."""


class SessionError(SSHError):
    """The SSH session or a channel on it failed after the connection was made."""


class ShellError(SessionError):
    """An interactive shell could not be opened or used."""


class SFTPError(SSHError):
    """An SFTP operation failed."""


class SFTPIOError(SFTPError):
    """An SFTP read or write failed."""


class SCPError(SSHError):
    """An SCP transfer failed."""


class HostArgumentError(SSHError):
    """``host_args`` does not fit the host list."""


class HostConfigError(SSHError, ValueError):
    """``host_config`` does not fit the host list (also a ``ValueError``, which
    parallel-ssh raised for a list of the wrong length)."""


class InvalidAPIUseError(SSHError):
    """The API was called in a way it does not support."""


SSHException = SSHError
UnknownHostException = UnknownHostError
ConnectionErrorException = ConnectionError
AuthenticationException = AuthenticationError
HostArgumentException = HostArgumentError
