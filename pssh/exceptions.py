"""Exceptions raised by pssh.

The names are parallel-ssh's, so ``except pssh.exceptions.ConnectionError`` keeps working in
existing scripts. Unlike parallel-ssh, every class derives from :class:`SSHError`, and the
classes are grouped by what a caller can do about them:

- cannot connect: :class:`ConnectionError` (:class:`UnknownHostError`,
  :class:`NoIPv6AddressFoundError`, :class:`ProxyError` are kinds of it, and
  :class:`OpenFilesLimitError`, raised before a parallel client connects anything);
- the server's host key was refused: :class:`HostKeyError` (never retried);
- cannot authenticate: :class:`AuthenticationError` (:class:`PKeyFileError` is one kind);
- ran out of time: :class:`Timeout`;
- unread output filled its buffer while waiting for a command to end:
  :class:`BufferFullError`;
- the session or channel failed after connecting: :class:`SessionError` (:class:`ShellError`,
  and :class:`WorkerLostError` when a sharded client's worker process ended);
- file copy failed: :class:`SFTPError` (:class:`SFTPIOError`), :class:`SCPError`;
- the call itself was wrong: :class:`HostArgumentError`, :class:`HostConfigError`,
  :class:`InvalidAPIUseError`.

Each error carries ``host`` and ``port`` (``None`` where no host is involved) and its
``str()`` is a sentence that names them. Where the error comes from the SSH library or the
server, ``reason`` holds their own words (libssh2's or libssh's message, an SFTP status),
so code can act on it without parsing the sentence.

``args`` follows parallel-ssh's layout, so scripts that index it keep working:

- an error about a host: ``(message, host, port)``, then any further positional
  arguments, then ``reason`` when there is one (parallel-ssh put the host at ``args[1]``
  and the port at ``args[2]``);
- a ``join`` or ``join_shells`` :class:`Timeout`: ``(message, timeout, finished_output,
  unfinished_output)``;
- any other error: ``(message,)`` and any further positional arguments.

``args[0]`` is always the sentence ``str()`` gives. Constructors also take parallel-ssh's
printf style, ``SSHError("Host %s refused on port %s", host, port)``: the placeholders are
filled from the positional arguments, which stay in ``args``.

Where parallel-ssh raised a builtin exception, the pssh error is also one: every
:class:`ConnectionError` is a builtin :class:`ConnectionError` (so an :class:`OSError`),
a refused connection a builtin :class:`ConnectionRefusedError`
(:class:`RefusedConnectionError`), a process short of descriptors an :class:`OSError`
with ``errno`` ``EMFILE`` (:class:`OpenFilesLimitError`), every :class:`Timeout` a builtin
:class:`TimeoutError`, a ``host_args`` entry without a placeholder's key a
:class:`KeyError` (:class:`HostArgumentKeyError`), and a bad ``host_config`` a
:class:`ValueError`.
"""

from __future__ import annotations

import builtins
import errno
import os
from typing import Any

__all__ = [
    "SSHError", "ConnectionError", "RefusedConnectionError", "UnknownHostError",
    "NoIPv6AddressFoundError", "ProxyError", "OpenFilesLimitError", "HostKeyError",
    "AuthenticationError", "PKeyFileError", "Timeout", "BufferFullError", "SessionError",
    "ShellError", "ShardError", "WorkerLostError",
    "SFTPError", "SFTPIOError", "SCPError", "HostArgumentError", "HostArgumentKeyError",
    "HostConfigError", "InvalidAPIUseError",
    # parallel-ssh 1.x spellings
    "SSHException", "UnknownHostException", "ConnectionErrorException",
    "AuthenticationException", "HostArgumentException",
]


def _filled(message: str, args: tuple[Any, ...]) -> str:
    """``message % args`` when ``args`` fit its placeholders, else ``message`` as given."""
    if not args or "%" not in message:
        return message
    try:
        return message % args
    except (TypeError, ValueError, KeyError):
        return message


def _rebuilt(cls: type[SSHError], args: tuple[Any, ...]) -> SSHError:
    """An unpickled error: ``args`` are already laid out, so ``__init__`` is skipped."""
    error = cls.__new__(cls)
    error.args = args
    return error


class SSHError(Exception):
    """Base class of every pssh error.

    :param message: a sentence saying what went wrong and, where possible, what to do;
        or parallel-ssh's printf-style template, filled from ``args``.
    :param args: further values for ``args`` (and for ``message``'s placeholders).
    :param host: the host the error belongs to, if any.
    :param port: the port the error belongs to, if any.
    :param reason: what the SSH library or the server said, if the error came from them.
    """

    def __init__(self, message: str, *args: Any, host: str | None = None,
                 port: int | None = None, reason: str | None = None) -> None:
        message = _filled(message, args)
        # One argument only: an OSError given more would read them as errno and strerror.
        super().__init__(message)
        self.message = message
        self.host = host
        self.port = port
        self.reason = reason
        self.args = self._laid_out(args)

    def _laid_out(self, extra: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.host is None and self.port is None:
            return (self.message, *extra)
        reason = () if self.reason is None else (self.reason,)
        return (self.message, self.host, self.port, *extra, *reason)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        if isinstance(self, OSError):
            state.update(errno=self.errno, strerror=self.strerror)
        return _rebuilt, (type(self), self.args), state


class ConnectionError(SSHError, builtins.ConnectionError):  # noqa: A001 - parallel-ssh's name
    """Could not open or keep a connection to the host; also a builtin
    :class:`ConnectionError` (parallel-ssh raised the builtin), hence an :class:`OSError`."""


class RefusedConnectionError(ConnectionError, builtins.ConnectionRefusedError):
    """Nothing listens on the host's port: the TCP connection was refused. Also a builtin
    :class:`ConnectionRefusedError`, with ``errno`` set to ``ECONNREFUSED``."""

    def __init__(self, message: str, *args: Any, host: str | None = None,
                 port: int | None = None, reason: str | None = None) -> None:
        super().__init__(message, *args, host=host, port=port, reason=reason)
        self.errno = errno.ECONNREFUSED
        self.strerror = reason or os.strerror(errno.ECONNREFUSED)


class UnknownHostError(ConnectionError):
    """The host name could not be resolved."""


class NoIPv6AddressFoundError(ConnectionError):
    """``ipv6_only`` was asked for but the host has no IPv6 address."""


class ProxyError(ConnectionError):
    """The connection through the proxy (bastion) host failed."""


class OpenFilesLimitError(ConnectionError):
    """This process may not open enough files (descriptors) for the hosts a parallel
    client was asked to connect, even with its soft limit raised to the hard one; raised
    before any host is connected. Also an :class:`OSError` with ``errno`` set to
    ``EMFILE``, what opening one descriptor too many would have raised.

    ``hosts`` is how many hosts were to be connected, ``needed`` the descriptors that
    takes (those already open included), ``soft_limit`` and ``hard_limit`` the
    process's ``RLIMIT_NOFILE`` (``None`` for unlimited).

    The other parameters are :class:`SSHError`'s.
    """

    def __init__(self, message: str, *args: Any, hosts: int = 0, needed: int = 0,
                 soft_limit: int | None = None, hard_limit: int | None = None,
                 host: str | None = None, port: int | None = None,
                 reason: str | None = None) -> None:
        self.hosts = hosts
        self.needed = needed
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        super().__init__(message, *args, host=host, port=port, reason=reason)
        self.errno = errno.EMFILE
        self.strerror = reason or os.strerror(errno.EMFILE)


class HostKeyError(SSHError):
    """The server's host key was refused (see :doc:`/security`): it differs from the one
    a known_hosts file lists for the host, a ``@revoked`` line lists it, or the host is
    not listed and ``host_key_policy`` is ``'strict'``. Nothing was sent to the server
    yet: no credential, no command. Not retried.

    ``reason`` is ``'changed'``, ``'revoked'`` or ``'unknown'``; ``key_type`` and
    ``fingerprint`` describe the key the server offered (``SHA256:...`` as OpenSSH prints
    it); ``expected_key_type``, ``expected_fingerprint``, ``known_hosts_file`` and
    ``known_hosts_line`` the line that disagrees (``None`` for an unknown host).
    """

    def __init__(self, message: str, *args: Any, host: str | None = None,
                 port: int | None = None, reason: str | None = None,
                 key_type: str | None = None, fingerprint: str | None = None,
                 expected_key_type: str | None = None,
                 expected_fingerprint: str | None = None,
                 known_hosts_file: str | None = None,
                 known_hosts_line: int | None = None) -> None:
        self.key_type = key_type
        self.fingerprint = fingerprint
        self.expected_key_type = expected_key_type
        self.expected_fingerprint = expected_fingerprint
        self.known_hosts_file = known_hosts_file
        self.known_hosts_line = known_hosts_line
        super().__init__(message, *args, host=host, port=port, reason=reason)


class AuthenticationError(SSHError):
    """Every authentication method that was tried failed."""


class PKeyFileError(AuthenticationError):
    """The private key file is missing or cannot be read."""


class Timeout(SSHError, TimeoutError):
    """A call ran out of time; also a builtin :class:`TimeoutError`, with ``errno`` set
    to ``ETIMEDOUT``.

    Raised by ``join(timeout=...)`` and ``join_shells`` with the outputs (or shells) that
    finished and those that did not, by output iteration with ``read_timeout`` and by
    connection set-up with ``timeout``. Output read before the timeout stays readable.

    :param timeout: the limit that passed, in seconds, if known.
    :param finished_output: for ``join``, the outputs that finished in time.
    :param unfinished_output: for ``join``, the outputs still running; given either of
        these, ``args`` is ``(message, timeout, finished_output, unfinished_output)`` as
        in parallel-ssh.

    The other parameters are :class:`SSHError`'s.
    """

    def __init__(self, message: str, *args: Any, host: str | None = None,
                 port: int | None = None, timeout: float | None = None,
                 finished_output: list[Any] | None = None,
                 unfinished_output: list[Any] | None = None,
                 reason: str | None = None) -> None:
        self.timeout = timeout
        self._is_join = finished_output is not None or unfinished_output is not None
        self.finished_output = finished_output if finished_output is not None else []
        self.unfinished_output = unfinished_output if unfinished_output is not None else []
        super().__init__(message, *args, host=host, port=port, reason=reason)
        self.errno = errno.ETIMEDOUT
        self.strerror = os.strerror(errno.ETIMEDOUT)

    def _laid_out(self, extra: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self._is_join:
            return super()._laid_out(extra)
        return (self.message, self.timeout, self.finished_output, self.unfinished_output,
                *extra)


class BufferFullError(SSHError):
    """A host's unread output reached its buffer limit while the caller waited for the
    command to end: read the output (or ``join`` with ``consume_output=True``), or run
    the command with a larger ``buffer_limit``. Nothing was dropped."""


class SessionError(SSHError):
    """The SSH session or a channel on it failed after the connection was made."""


class ShellError(SessionError):
    """An interactive shell could not be opened or used."""


class ShardError(SessionError):
    """The worker that ran this host's part of the work (a process of
    :class:`~pssh.clients.sharded.ShardedSSHClient`, a Dask task of
    :mod:`pssh.distributed`) failed as a worker, not on the host: whether the command
    reached the host is unknown. ``__cause__`` holds the worker's own error when there is
    one."""


class WorkerLostError(ShardError):
    """The worker process running this host's work ended before the work did (killed,
    out of memory, its machine gone); the command may have run not at all, in part or to
    its end, and pssh does not run it again.

    ``reason`` says how the worker ended (``'killed by SIGKILL'``, ``'exited with status
    1'``, ``'stopped by disconnect()'``) where that is known; ``exitcode`` is a sharded
    client's worker's exit status as ``multiprocessing.Process`` gives it (minus the
    signal number when a signal ended it), or ``None``.
    """

    def __init__(self, message: str, *args: Any, host: str | None = None,
                 port: int | None = None, reason: str | None = None,
                 exitcode: int | None = None) -> None:
        self.exitcode = exitcode
        super().__init__(message, *args, host=host, port=port, reason=reason)


class SFTPError(SSHError):
    """An SFTP operation failed."""


class SFTPIOError(SFTPError):
    """An SFTP read or write failed."""


class SCPError(SSHError):
    """An SCP transfer failed."""


class HostArgumentError(SSHError):
    """``host_args`` (or ``copy_args``) does not fit the host list or the command."""


class HostArgumentKeyError(HostArgumentError, KeyError):
    """A ``host_args`` (or ``copy_args``) dict lacks a key the command's ``%(name)s``
    placeholders use; also a :class:`KeyError`, which parallel-ssh raised here.

    :param key: the missing key; ``key`` holds it too.

    The other parameters are :class:`SSHError`'s.
    """

    def __init__(self, message: str, *args: Any, key: object = None, host: str | None = None,
                 port: int | None = None, reason: str | None = None) -> None:
        self.key = key
        super().__init__(message, *args, host=host, port=port, reason=reason)


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
