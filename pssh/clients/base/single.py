"""One host's client, the engine-independent half.

Connecting is the same for every engine: resolve, TCP connect (retrying what may be
transient, never a refusal), then hand the socket to the engine for the SSH handshake,
then authenticate in parallel-ssh's order. The engine subclass fills in the SSH-specific
steps (``_handshake``, the ``_auth_*`` methods, channels).
"""

from __future__ import annotations

import getpass
import logging
import os
import socket as stdlib_socket
from typing import Any, Callable

import gevent
from gevent import socket

from ..._commands import wrap_command
from ..._deadline import check_timeout, deadline_after, time_left
from ..._validate import check_buffer_limit, check_count, check_pkey, check_port
from ...constants import DEFAULT_BUFFER_LIMIT, DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import (
    AuthenticationError,
    ConnectionError,
    NoIPv6AddressFoundError,
    SSHError,
    Timeout,
    UnknownHostError,
)
from ...output import HostOutput
from .shell import InteractiveShell

__all__ = ["BaseSSHClient"]

logger = logging.getLogger("pssh.clients")

CLEANUP_TIMEOUT = 5.0
"""Seconds a best-effort cleanup (closing a channel) may take at most."""


class SocketHandle:
    """The connected TCP socket's file descriptor.

    Once connected, libssh2 and the wait loop use only the descriptor, so the client takes
    it out of Python's socket object and hands this handle to the SSH session, which keeps
    a reference to it. Disconnecting shuts the connection down at once but leaves the
    descriptor allocated; it is closed when the handle is collected, that is after the
    session and every channel that could still write to it (libssh2 sends a channel close
    when a channel is freed). Closing earlier would let a new connection reuse the number
    and receive those stray bytes.
    """

    def __init__(self, sock: stdlib_socket.socket) -> None:
        self.family = sock.family
        self._fd = sock.detach()

    def __repr__(self) -> str:
        return f"<SocketHandle fd={self._fd}>"

    def __del__(self) -> None:
        self.close()

    def fileno(self) -> int:
        """The descriptor, or -1 once closed."""
        return self._fd

    def shutdown(self) -> None:
        """End the TCP connection both ways, keeping the descriptor; safe to repeat."""
        if self._fd >= 0:
            try:
                self._address("shutdown", stdlib_socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Close the descriptor; safe to call more than once."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def getsockname(self) -> Any:
        """The local address, as ``socket.getsockname`` gives it."""
        return self._address("getsockname")

    def getpeername(self) -> Any:
        """The remote address, as ``socket.getpeername`` gives it."""
        return self._address("getpeername")

    def _address(self, method: str, *args: Any) -> Any:
        # A throwaway socket object over our descriptor, detached before it can close it.
        view = stdlib_socket.socket(self.family, stdlib_socket.SOCK_STREAM, fileno=self._fd)
        try:
            return getattr(view, method)(*args)
        finally:
            view.detach()


class _Retryable(Exception):
    """A connection attempt failed in a way that another attempt may not."""

    def __init__(self, error: SSHError) -> None:
        super().__init__(str(error))
        self.error = error


class BaseSSHClient:
    """Connection set-up and command wrapping shared by the engines' ``SSHClient``."""

    # What an engine names its channel requests, and its reader and stdin classes.
    _PTY_REQUEST = "pty"
    _EXEC_REQUEST = "execute"
    _SHELL_REQUEST = "shell"
    _reader_class: Any = None
    _stdin_class: Any = None

    IDENTITIES = tuple(os.path.expanduser(f"~/.ssh/{name}")
                       for name in ("id_rsa", "id_dsa", "identity", "id_ecdsa", "id_ed25519"))

    def __init__(self, host: str, user: str | None = None, password: str | None = None,
                 port: int | None = None, pkey: str | bytes | None = None,
                 alias: str | None = None, num_retries: int = DEFAULT_RETRIES,
                 retry_delay: float = RETRY_DELAY, allow_agent: bool = True,
                 timeout: float | None = None, identity_auth: bool = True,
                 ipv6_only: bool = False, keyboard_interactive: bool = False) -> None:
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty host name string, not {host!r}")
        self.host = host
        self.alias = alias
        self.user = user or getpass.getuser()
        self.password = password
        self.port = check_port(22 if port is None else port, host)
        self.pkey = check_pkey(pkey, host)
        self.num_retries = check_count(num_retries, "num_retries")
        self.retry_delay = check_timeout(retry_delay, "retry_delay") or 0
        self.timeout = check_timeout(timeout)
        self.allow_agent = allow_agent
        self.identity_auth = identity_auth
        self.ipv6_only = ipv6_only
        self.keyboard_interactive = keyboard_interactive
        self.sock: SocketHandle | None = None

    def __repr__(self) -> str:
        state = "connected" if self.sock is not None else "closed"
        return f"<{type(self).__name__} {self.user}@{self.host}:{self.port} {state}>"

    def __enter__(self) -> BaseSSHClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def disconnect(self) -> None:
        """End the connection; safe to call more than once.

        The socket's descriptor is released once the outputs and channels of this
        connection are gone too (see :class:`SocketHandle`).
        """
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.shutdown()

    # -- connecting ---------------------------------------------------------------------

    def _connect_and_auth(self) -> None:
        """Connect, handshake and authenticate, retrying transient failures."""
        attempt = 0
        while True:
            deadline = deadline_after(self.timeout)
            try:
                self.sock = self._open_socket(deadline)
                self._handshake(deadline)
                self._authenticate(deadline)
                return
            except _Retryable as failure:
                self.disconnect()
                attempt += 1
                if attempt > self.num_retries:
                    raise failure.error from failure.__cause__
                logger.debug("%s; retry %d of %d in %ss", failure.error, attempt,
                             self.num_retries, self.retry_delay)
                gevent.sleep(self.retry_delay)
            except BaseException:
                self.disconnect()
                raise

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _open_socket(self, deadline: float | None) -> SocketHandle:
        family = stdlib_socket.AF_INET6 if self.ipv6_only else stdlib_socket.AF_UNSPEC
        for family_, type_, proto, _, address in self._resolve(family):
            sock = socket.socket(family_, type_, proto)
            left = time_left(deadline)
            # A zero timeout would make the socket non-blocking: connect() would fail at
            # once with EINPROGRESS instead of timing out.
            sock.settimeout(left if left is None or left > 0 else 1e-9)
            try:
                sock.connect(address)
            except BaseException as exc:
                sock.close()
                self._raise_connect_error(exc)
            sock.setsockopt(stdlib_socket.IPPROTO_TCP, stdlib_socket.TCP_NODELAY, 1)
            return SocketHandle(sock)
        raise AssertionError("unreachable: _resolve returns at least one address")

    def _resolve(self, family: int) -> list[tuple[Any, ...]]:
        try:
            # An IP address needs no lookup: parse it here rather than hand it to gevent's
            # resolver thread, which costs a thread switch each way per host.
            return stdlib_socket.getaddrinfo(
                self.host, self.port, family, stdlib_socket.SOCK_STREAM,
                stdlib_socket.IPPROTO_TCP, stdlib_socket.AI_NUMERICHOST)
        except stdlib_socket.gaierror:
            pass  # a name, or an address of the wrong family
        try:
            found = socket.getaddrinfo(self.host, self.port, family, stdlib_socket.SOCK_STREAM,
                                       stdlib_socket.IPPROTO_TCP)
        except stdlib_socket.gaierror as exc:
            if self.ipv6_only:
                raise NoIPv6AddressFoundError(
                    f"Host {self.host!r} has no IPv6 address ({exc.strerror}) and ipv6_only "
                    f"is set; give an IPv6 address or unset ipv6_only",
                    host=self.host, port=self.port) from exc
            raise UnknownHostError(
                f"Cannot resolve host {self.host!r} (port {self.port}): {exc.strerror}; "
                f"check the host name", host=self.host, port=self.port) from exc
        return found

    def _raise_connect_error(self, exc: BaseException) -> None:
        if isinstance(exc, stdlib_socket.timeout):
            raise _Retryable(Timeout(
                f"Connecting to {self._where()} timed out after {self.timeout}s",
                host=self.host, port=self.port)) from exc
        if isinstance(exc, ConnectionRefusedError):
            raise ConnectionError(
                f"Connection to {self._where()} refused: nothing listens on port {self.port} "
                f"there; check the host and port", host=self.host, port=self.port) from exc
        if isinstance(exc, OSError):
            raise _Retryable(ConnectionError(
                f"Cannot connect to {self._where()}: {exc.strerror or exc}",
                host=self.host, port=self.port)) from exc
        raise exc

    # -- authentication -----------------------------------------------------------------

    def _authenticate(self, deadline: float | None) -> None:
        """Try the methods in parallel-ssh's order; the first that succeeds wins.

        A given ``pkey`` is the only method tried (``password`` is its passphrase).
        """
        if self.pkey is not None:
            self._try_auth("private key", self._auth_pkey, self.pkey, deadline, [])
            return
        tried: list[str] = []
        methods: list[tuple[str, Callable[..., None], Any]] = []
        if self.allow_agent:
            methods.append(("SSH agent", self._auth_agent, None))
        if self.identity_auth:
            methods += [(f"identity file {path}", self._auth_pkey, path)
                        for path in self.IDENTITIES if os.path.isfile(path)]
        if self.password is not None:
            name = "keyboard-interactive" if self.keyboard_interactive else "password"
            methods.append((name, self._auth_password, self.password))
        for name, method, argument in methods:
            try:
                self._try_auth(name, method, argument, deadline, tried)
                return
            except AuthenticationError as exc:
                logger.debug("%s", exc)
        raise AuthenticationError(
            f"Authentication as {self.user!r} on {self._where()} failed; tried: "
            f"{', '.join(tried) or 'nothing (no agent, identity file or password)'}",
            host=self.host, port=self.port)

    def _try_auth(self, name: str, method: Callable[..., None], argument: Any,
                  deadline: float | None, tried: list[str]) -> None:
        tried.append(name)
        try:
            method(argument, deadline)
        except (Timeout, _Retryable):
            raise
        except SSHError as exc:
            raise AuthenticationError(
                f"Authentication as {self.user!r} on {self._where()} with {name} failed: "
                f"{exc}", host=self.host, port=self.port) from exc

    # -- engine hooks ---------------------------------------------------------------------

    def _handshake(self, deadline: float | None) -> None:
        raise NotImplementedError

    def _auth_pkey(self, pkey: str | bytes, deadline: float | None) -> None:
        raise NotImplementedError

    def _auth_agent(self, _unused: None, deadline: float | None) -> None:
        raise NotImplementedError

    def _auth_password(self, password: str, deadline: float | None) -> None:
        """Password authentication, or keyboard-interactive answering with the password
        when ``keyboard_interactive`` is set."""
        raise NotImplementedError

    def _call(self, func: Callable[..., Any], *args: Any, deadline: float | None,
              action: str) -> Any:
        """Run one library call in the engine's wait loop, translating its errors."""
        raise NotImplementedError

    def _open_channel(self, deadline: float | None) -> Any:
        raise NotImplementedError

    def _execute(self, command: str, use_pty: bool, deadline: float | None,
                 ) -> tuple[Any, Any, Any]:
        """Start ``command``; return (channel, output reader, stdin)."""
        channel = self._open_channel(deadline)
        try:
            if use_pty:
                self._call(getattr(channel, self._PTY_REQUEST), deadline=deadline,
                           action="requesting a pty")
            logger.debug("Executing %r on %s", command, self._where())
            self._call(getattr(channel, self._EXEC_REQUEST), command, deadline=deadline,
                       action="starting the command")
        except BaseException:
            self._close_quietly(channel)
            raise
        return channel, self._reader_class(self, channel), self._stdin_class(self, channel)

    def _start_shell(self, channel: Any, deadline: float | None) -> tuple[Any, Any]:
        """Start a login shell on ``channel``; return (output reader, stdin)."""
        try:
            self._call(getattr(channel, self._SHELL_REQUEST), deadline=deadline,
                       action="starting a shell")
        except BaseException:
            self._close_quietly(channel)
            raise
        return self._reader_class(self, channel), self._stdin_class(self, channel)

    def _close_quietly(self, channel: Any) -> None:
        """Close a channel on a best-effort basis with its own short deadline: at most
        ``CLEANUP_TIMEOUT``, or the client's ``timeout`` if that is shorter."""
        limit = CLEANUP_TIMEOUT if self.timeout is None else min(CLEANUP_TIMEOUT, self.timeout)
        try:
            self._call(channel.close, deadline=deadline_after(limit),
                       action="closing a channel")
        except SSHError as exc:
            self._log_cleanup_failure("closing a channel", exc)

    def _log_cleanup_failure(self, action: str, exc: BaseException) -> None:
        logger.debug("%s on %s failed: %s", action, self._where(), exc)

    def open_session(self) -> Any:
        """Open a new channel on the connection."""
        raise NotImplementedError

    def wait_finished(self, host_output: HostOutput, timeout: float | None = None) -> None:
        """Wait until the command of ``host_output`` has ended and its channel closed.

        Output is kept for reading; ``exit_code`` is set afterwards.

        :raises Timeout: ``timeout`` seconds passed first; the command keeps running,
            output read so far stays readable, and this may be called again.
        :raises BufferFullError: a stream's unread output reached its buffer limit, so the
            command cannot end before it is read.
        """
        host_output.wait_done(deadline_after(check_timeout(timeout)))

    # -- commands -------------------------------------------------------------------------

    def open_shell(self, encoding: str = "utf-8", read_timeout: float | None = None,
                   ) -> InteractiveShell:
        """Start an interactive login shell on a new channel; see
        :class:`~pssh.clients.base.shell.InteractiveShell`.

        :raises SessionError: the channel could not be opened or the shell not started.
        """
        check_timeout(read_timeout, "read_timeout")
        return InteractiveShell(self.open_session(), self, encoding=encoding,
                                read_timeout=read_timeout)

    def run_command(self, command: str, sudo: bool = False, user: str | None = None,
                    use_pty: bool = False, shell: str | None = None, encoding: str = "utf-8",
                    timeout: float | None = None, read_timeout: float | None = None, *,
                    buffer_limit: int | None = DEFAULT_BUFFER_LIMIT) -> HostOutput:
        """Start ``command`` on the host and return its :class:`~pssh.output.HostOutput`.

        Returns once the command has started; its output is read lazily from the
        returned object.

        :param command: the command line.
        :param sudo: run it through ``sudo``.
        :param user: run it as this user through ``sudo -u``.
        :param use_pty: ask for a pseudo-terminal (stderr then arrives on stdout).
        :param shell: run it with this shell, e.g. ``'bash -c'``.
        :param encoding: how to decode output lines.
        :param timeout: seconds for opening the channel and starting the command;
            defaults to the client's ``timeout``.
        :param read_timeout: seconds one iteration of the output may take.
        :param buffer_limit: bytes of unread output each stream may hold before pssh
            stops reading it and the command waits (see :mod:`pssh.output`); ``None``
            for no limit, as in parallel-ssh.
        :raises SessionError: the channel could not be opened or the command not started.
        :raises Timeout: starting took longer than ``timeout``.
        :raises ValueError: ``buffer_limit`` is not a positive integer or ``None``.
        """
        check_timeout(read_timeout, "read_timeout")
        check_buffer_limit(buffer_limit)
        start_timeout = check_timeout(timeout) if timeout is not None else self.timeout
        full_command = wrap_command(command, sudo=sudo, user=user, shell=shell)
        channel, reader, stdin = self._execute(full_command, use_pty,
                                               deadline_after(start_timeout))
        reader.stdout.limit = reader.stderr.limit = buffer_limit
        output = HostOutput(self.host, channel, stdin, self, alias=self.alias,
                            encoding=encoding, read_timeout=read_timeout, buffers=reader)
        output.fully_qualified_command = full_command
        return output
