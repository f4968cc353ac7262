"""One host's client, the engine-independent half.

Theory of operation
-------------------
Connecting is the same for every engine: resolve, TCP connect (retrying what may be
transient, never a refusal), make the engine's session on the socket, run its handshake
(retried too: a busy server drops handshakes), then authenticate in parallel-ssh's order.
After that every library call goes through one door, :meth:`BaseSSHClient._translated`:
it runs the call in the session's wait loop (``_wait.py``) and turns what goes wrong into
pssh's errors, naming the host: a passed deadline into ``Timeout``, a lost connection
into ``ConnectionError`` (dropping the connection, so the next command reconnects), any
other library error into ``SessionError`` with the library's words as ``reason``.

An engine subclass supplies only its library's calls: the session and its handshake,
the authentication methods, opening a channel, its reader and stdin writes, a keepalive,
and which of its library's errors mean the connection is gone.

The module is longer than the house limit: ``BaseSSHClient`` carries, besides the engine
seams, parallel-ssh's whole single-host API (``execute``, ``read_output``, ``poll`` ...)
so that both engines share it; the TCP side lives in ``_tcp.py``.
"""

from __future__ import annotations

import getpass
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any, Callable

import gevent
from gevent.socket import wait_read

from ..._commands import wrap_command
from ..._deadline import check_timeout, deadline_after, time_left
from ..._known_hosts import DEFAULT_KNOWN_HOSTS, DEFAULT_POLICY, KnownHostsSetting
from ..._validate import (
    check_buffer_limit,
    check_command,
    check_count,
    check_encoding,
    check_pkey,
    check_port,
    check_seconds_or_none,
    check_text,
    is_encrypted_key,
    read_key,
)
from ...constants import DEFAULT_BUFFER_LIMIT, DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import (
    AuthenticationError,
    ConnectionError,
    InvalidAPIUseError,
    PKeyFileError,
    ProxyError,
    SessionError,
    SSHError,
    Timeout,
)
from ...output import HostOutput, LineBuffer
from ._channel import Stdin
from ._handshakes import HandshakeGate
from ._host_keys import host_key_algorithms, host_key_settings, verify_host_key
from ._keepalive import Keepalive
from ._seams import where
from ._tcp import Retryable, SocketHandle, TCPTarget
from ._wait import BaseSessionWaiter, DeadlineExceeded
from .shell import InteractiveShell

__all__ = ["BaseSSHClient", "PollMixIn", "Stdin", "InteractiveShell",
           "check_keyboard_interactive", "warn_agent_forwarding_ignored"]

logger = logging.getLogger("pssh.clients")
host_logger = logging.getLogger("pssh.host_logger")

CLEANUP_TIMEOUT = 5.0
"""Seconds a best-effort cleanup (closing a channel) may take at most."""

LOGIN_END_WAIT = 1.0
"""Seconds a connection set-up slot is held at most after authentication, waiting for
the server's first message (see ``BaseSSHClient._wait_for_login_to_end``)."""

# What a library error means, as an engine classifies it (see _failure_of).
SESSION_FAILED = "session failed"
CONNECTION_LOST = "connection lost"


class PollMixIn:
    """Waiting on an SSH session's socket: what parallel-ssh's clients and keepalive
    helpers share, with its names.

    :param sock: the connected socket (or ``None``).
    """

    timeout: float | None = None
    _waiter: BaseSessionWaiter | None = None

    def __init__(self, sock: Any = None) -> None:
        self.sock = sock

    def poll(self, timeout: float | None = None) -> None:
        """Wait until the socket is ready in the direction the SSH library waits for, or
        ``timeout`` seconds pass (``None``: no limit); returns at once without a session.
        """
        waiter = self._waiter
        if waiter is None:
            return
        try:
            waiter.park(deadline_after(check_timeout(timeout)))
        except DeadlineExceeded:
            pass

    def eagain(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a library function until it stops saying "again" (at most ``timeout``).

        :raises Timeout: ``timeout`` passed.
        :raises SessionError: there is no session.
        """
        waiter = self._waiter
        if waiter is None:
            raise SessionError("no SSH session to call on")
        try:
            return waiter.call(partial(func, *args, **kwargs),
                               deadline=deadline_after(self.timeout))
        except DeadlineExceeded:
            # The name only: a partial's repr would show its arguments, a password perhaps.
            name = getattr(func, "__name__", type(func).__name__)
            raise Timeout(f"calling {name} timed out") from None

    def eagain_write(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes,
                     ) -> None:
        """Write all of ``data`` with the library's ``write_func`` (at most ``timeout``)."""
        raise NotImplementedError


class BaseSSHClient(PollMixIn):
    """What the engines' ``SSHClient`` share: connecting, authenticating, the one door
    for library calls, channels, commands and shells."""

    # What an engine names its channel requests, its reader, stdin and waiter classes.
    _PTY_REQUEST = "pty"
    _EXEC_REQUEST = "execute"
    _SHELL_REQUEST = "shell"
    _reader_class: Any = None
    _stdin_class: Any = None
    _waiter_class: type[BaseSessionWaiter] = BaseSessionWaiter
    _LIBRARY = "the SSH library"
    # Descriptors one connection keeps open (a parallel client counts them before
    # connecting its hosts).
    _DESCRIPTORS = 1

    IDENTITIES = tuple(os.path.expanduser(f"~/.ssh/{name}")
                       for name in ("id_rsa", "id_dsa", "identity", "id_ecdsa", "id_ed25519"))

    def __init__(self, host: str, user: str | None = None, password: str | None = None,
                 port: int | None = None, pkey: str | bytes | None = None,
                 alias: str | None = None, num_retries: int = DEFAULT_RETRIES,
                 retry_delay: float = RETRY_DELAY, allow_agent: bool = True,
                 timeout: float | None = None, proxy_host: str | None = None,
                 proxy_port: int | None = None, _auth_thread_pool: bool = True,
                 identity_auth: bool = True, ipv6_only: bool = False,
                 compress: bool = False, keyboard_interactive: bool = False, *,
                 _hostname: str | None = None, _identity_files: Sequence[str] | None = None,
                 keepalive_seconds: int | None = 60, forward_ssh_agent: bool = False,
                 known_hosts: KnownHostsSetting = DEFAULT_KNOWN_HOSTS,
                 host_key_policy: str = DEFAULT_POLICY,
                 _handshakes: HandshakeGate | None = None,
                 ) -> None:
        super().__init__(sock=None)
        if not isinstance(host, str) or not host:
            raise TypeError(f"host must be a non-empty host name string, not {host!r}")
        warn_agent_forwarding_ignored(forward_ssh_agent, f"host {host!r}", self._LIBRARY)
        check_keyboard_interactive(keyboard_interactive, password, host)
        self.host = host
        # What is connected to: the ssh_config HostName of ``host`` if there is one.
        self._address = check_text(_hostname, "HostName", host) or host
        # ssh_config IdentityFile entries, tried instead of the default identity files.
        self._identity_files = tuple(_identity_files or ())
        self.alias = check_text(alias, "alias", host)
        self.user = check_text(user, "user", host) or getpass.getuser()
        self.password = check_text(password, "password", host)
        self.port = check_port(22 if port is None else port, host)
        self.pkey = check_pkey(pkey, host)
        self._pkey_data = read_key(self.pkey, host)
        if self._pkey_data is not None and password is None and is_encrypted_key(
                self._pkey_data):
            what = f"file {self.pkey!r}" if isinstance(self.pkey, str) else "given as bytes"
            raise PKeyFileError(f"The private key {what} for host {host!r} is encrypted: "
                                f"give its passphrase as password=", host=host)
        self.num_retries = check_count(num_retries, "num_retries")
        self.retry_delay = check_timeout(retry_delay, "retry_delay") or 0
        # 0 means no limit, as in parallel-ssh and libssh2.
        self.timeout = check_timeout(timeout) or None
        self.allow_agent = allow_agent
        self.identity_auth = identity_auth
        self.ipv6_only = ipv6_only
        self.keyboard_interactive = keyboard_interactive
        self.keepalive_seconds = check_seconds_or_none(keepalive_seconds, "keepalive_seconds")
        # A parallel client's limit on connection set-ups per destination, if any.
        self._handshakes = _handshakes
        self.compress = compress
        self.forward_ssh_agent = forward_ssh_agent
        self.proxy_host = proxy_host
        self.proxy_port = check_port(22 if proxy_port is None else proxy_port, proxy_host)
        # Parsed here, once; a ParallelSSHClient passes the files it parsed for all hosts.
        self.host_key_policy, self.known_hosts = host_key_settings(
            known_hosts, host_key_policy, f"host {host!r}")
        self.sock: SocketHandle | None = None
        self.session: Any = None
        self._waiter: BaseSessionWaiter | None = None
        self._keepalive: Keepalive | None = None

    def __repr__(self) -> str:
        state = "connected" if self.sock is not None else "closed"
        return f"<{type(self).__name__} {self.user}@{self.host}:{self.port} {state}>"

    def __enter__(self) -> BaseSSHClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def is_connected(self) -> bool:
        """Whether the connection is up (it is dropped on disconnect or when lost)."""
        return self.sock is not None

    def disconnect(self) -> None:
        """End the connection; safe to call more than once.

        Keepalives stop, and greenlets waiting on this connection are woken and report it
        closed. The socket's descriptor is released once the outputs and channels of this
        connection are gone too (see ``SocketHandle`` in ``pssh.clients.base._tcp``).
        """
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()
        session, self.session = self.session, None
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.release_all()
        sock, self.sock = self.sock, None
        if sock is not None:
            if session is not None:
                self._say_goodbye(session)
            sock.shutdown()

    def _connect(self) -> None:
        """Connect, handshake, authenticate and start keepalives; for the engine's
        constructor to call once its own settings are in place."""
        self._connect_and_auth()
        self.configure_keepalive()

    def auth(self) -> None:
        """Authenticate with the configured methods, connecting first if the connection
        was dropped. The constructor has done both, so on a connected client this does
        nothing.

        :raises SSHError: connecting or authenticating failed, as for the constructor.
        """
        if not self.is_connected():
            self._connect()

    def configure_keepalive(self) -> None:
        """(Re)start keepalives every ``keepalive_seconds`` on the connection; ``0`` or
        ``None`` stops them. The constructor calls it; call it again after changing
        ``keepalive_seconds``."""
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()
        if self.keepalive_seconds and self.session is not None:
            first_delay = self._configure_keepalive(float(self.keepalive_seconds))
            self._keepalive = Keepalive(self, type(self)._send_keepalive, first_delay)

    # -- connecting ---------------------------------------------------------------------

    def _connect_and_auth(self) -> None:
        """Connect, handshake and authenticate, retrying transient failures; each
        attempt holds a set-up slot of the parallel client's (if any) and has ``timeout``
        from when it gets one."""
        attempt = 0
        while True:
            try:
                with self._setup_slot():
                    self._attempt_connection(deadline_after(self.timeout))
                return
            except Retryable as failure:
                attempt += 1
                if attempt > self.num_retries:
                    raise failure.error from failure.__cause__
                logger.debug("%s; retry %d of %d in %ss", failure.error, attempt,
                             self.num_retries, self.retry_delay)
                gevent.sleep(self.retry_delay)

    def _setup_slot(self) -> AbstractContextManager[None]:
        if self._handshakes is None:
            return nullcontext()
        return self._handshakes.slot(self._address, self.port)

    def _attempt_connection(self, deadline: float | None) -> None:
        """One attempt: connect, handshake, check the host key, authenticate; a failed
        attempt leaves nothing open."""
        try:
            self.sock = self._open_socket(deadline)
            self._start_session(self.sock, deadline)
            self._check_host_key()
            self._authenticate(deadline)
            if self._handshakes is not None and self._handshakes.is_shared(self._address,
                                                                           self.port):
                self._wait_for_login_to_end(deadline)
        except BaseException:
            self.disconnect()
            raise

    def _wait_for_login_to_end(self, deadline: float | None) -> None:
        """Wait, still holding the set-up slot, for the server to show that it no longer
        counts this connection against its ``MaxStartups``; only done when other hosts
        of the client are setting up connections to the same destination (a host alone
        at its server has nobody to let in).

        sshd's master process learns that a connection has logged in from a pipe the
        connection's process closes after authentication; until it reads that, it counts
        the connection as starting, so a next connection let in at once may be dropped.
        The process closes the pipe before it sends anything after the login (OpenSSH
        announces its host keys at once), so the first byte to arrive after
        authentication is the sign. Where the engine can, it asks for a reply, so one
        certainly comes; the wait is at most ``LOGIN_END_WAIT`` in any case.
        """
        if not self._prompt_after_login(deadline):
            return
        left = time_left(deadline)
        limit = LOGIN_END_WAIT if left is None else max(min(LOGIN_END_WAIT, left), 0)
        assert self.sock is not None, "authenticated, so connected"
        try:
            wait_read(self.sock.fileno(), timeout=limit)
        except (TimeoutError, OSError) as exc:
            logger.debug("%s sent nothing within %ss of the login (%s); going on",
                         self._where(), limit, exc)

    def _where(self) -> str:
        return where(self)

    def _start_session(self, sock: SocketHandle, deadline: float | None) -> None:
        """Make the engine's session on ``sock`` and run the SSH handshake."""
        session = self._new_session(sock)
        if self.known_hosts is not None:
            algorithms = host_key_algorithms(self.known_hosts, self._address, self.port)
            if algorithms:
                self._prefer_host_key_algorithms(session, algorithms)
        self.session = session
        self._waiter = self._waiter_class(session, sock.fileno())
        try:
            self.call(self._handshake_call(session), deadline=deadline,
                      action="SSH handshake")
        except ConnectionError as exc:
            if isinstance(exc, ProxyError):
                raise Retryable(exc) from exc.__cause__
            # Closed or reset before the keys were agreed: a busy server (MaxStartups) or
            # one restarting. Worth another attempt.
            raise Retryable(self._dropped_in_handshake(exc)) from exc.__cause__
        except SSHError as exc:
            raise Retryable(exc) from exc.__cause__

    def _dropped_in_handshake(self, exc: ConnectionError) -> ConnectionError:
        """The error for a connection the server closed or reset during the banner or
        key exchange, saying what to do if that was sshd's ``MaxStartups``."""
        reason = exc.reason or str(exc)
        return ConnectionError(
            f"SSH handshake on {self._where()} failed: the server closed the connection "
            f"before the key exchange ended ({reason}). A busy OpenSSH server does this to "
            f"new connections past its MaxStartups limit (by default 10 not yet logged in "
            f"at a time); if that is the cause, raise MaxStartups in the server's "
            f"sshd_config, or open fewer connections to it at once (ParallelSSHClient's "
            f"handshake_limit)",
            host=self.host, port=self.port, reason=reason)

    def _open_socket(self, deadline: float | None) -> SocketHandle:
        return TCPTarget(self.host, self._address, self.port, self.ipv6_only,
                         self.timeout).connect(deadline)

    def _no_socket_error(self, exc: OSError) -> ConnectionError:
        """The error for a socket (or its duplicate) that could not be made."""
        return TCPTarget(self.host, self._address, self.port, self.ipv6_only,
                         self.timeout).no_socket_error(exc)

    def _check_host_key(self) -> None:
        """Check the server's host key (the handshake is done, nothing sent yet).

        :raises HostKeyError: the key is refused; never retried.
        """
        if self.known_hosts is None:
            return
        _, blob = self._server_host_key()
        verify_host_key(self.known_hosts, self.host_key_policy, self._address, self.port,
                        blob)

    # -- authentication -----------------------------------------------------------------

    def _authenticate(self, deadline: float | None) -> None:
        """Try the methods in parallel-ssh's order; the first that succeeds wins.

        A given ``pkey`` is the only method tried (``password`` is its passphrase).
        """
        if self.pkey is not None:
            self._try_auth("private key", self._auth_pkey, self._pkey_data, deadline, [])
            return
        tried: list[str] = []
        methods: list[tuple[str, Callable[..., None], Any]] = []
        if self.allow_agent:
            methods.append(("SSH agent", self._auth_agent_if_running, None))
        if self.identity_auth:
            methods += [(f"identity file {path}", self._auth_pkey, path)
                        for path in self._identity_files or self.IDENTITIES
                        if os.path.isfile(path)]
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
        except (Timeout, Retryable):
            raise
        except SSHError as exc:
            raise AuthenticationError(
                f"Authentication as {self.user!r} on {self._where()} with {name} failed: "
                f"{exc}", host=self.host, port=self.port) from exc

    def _auth_agent_if_running(self, _unused: None, deadline: float | None) -> None:
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise SSHError("no SSH agent is running (SSH_AUTH_SOCK is not set)")
        self._auth_agent(deadline)

    # -- engine hooks ---------------------------------------------------------------------

    def _new_session(self, sock: SocketHandle) -> Any:
        """A new non-blocking session of the engine's library on ``sock``, configured
        and not yet connected."""
        raise NotImplementedError

    def _handshake_call(self, session: Any) -> Callable[[], Any]:
        """The library call that runs the handshake, to be repeated until done."""
        raise NotImplementedError

    def _server_host_key(self) -> tuple[str, bytes]:
        """The host key the server proved it holds in the handshake: its type name and
        its wire blob."""
        raise NotImplementedError

    def _prefer_host_key_algorithms(self, session: Any, algorithms: list[str]) -> None:
        """Offer ``algorithms`` first in the key exchange of ``session`` (those the
        library does not know are left out)."""

    def _auth_pkey(self, pkey: str | bytes, deadline: float | None) -> None:
        raise NotImplementedError

    def _prompt_after_login(self, deadline: float | None) -> bool:
        """Make the server send something soon after authentication if the library can
        (a request that wants a reply); whether something is due."""
        return False

    def _auth_agent(self, deadline: float | None) -> None:
        """Authenticate with the keys of the running SSH agent."""
        raise NotImplementedError

    def _auth_password(self, password: str, deadline: float | None) -> None:
        """Password authentication, or keyboard-interactive answering with the password
        when ``keyboard_interactive`` is set."""
        raise NotImplementedError

    def _open_session_channel(self, deadline: float | None) -> Any:
        """Open a new session channel on the connection."""
        raise NotImplementedError

    def write_stdin(self, channel: Any, data: bytes) -> None:
        """Send all of ``data`` to the command's stdin on ``channel`` (at most
        ``timeout``)."""
        raise NotImplementedError

    def send_eof(self, channel: Any) -> None:
        """Tell the command on ``channel`` that its stdin has ended (at most ``timeout``)."""
        raise NotImplementedError

    def _failure_of(self, exc: Exception) -> str | None:
        """What the library error ``exc`` means: ``SESSION_FAILED``, ``CONNECTION_LOST``,
        or ``None`` if it is not the library's (it then passes through)."""
        raise NotImplementedError

    def _describe(self, exc: Exception) -> str:
        """The library's own words for ``exc``."""
        return str(exc) or type(exc).__name__

    def _configure_keepalive(self, seconds: float) -> float:
        """Set the session up for keepalives every ``seconds``; return the delay before
        the first :meth:`_send_keepalive`."""
        return float(seconds)

    def _send_keepalive(self) -> float | None:
        """Send a keepalive if one is due, never waiting (it runs in the event loop);
        return the seconds until the next one, or ``None`` to stop."""
        raise NotImplementedError

    def _say_goodbye(self, session: Any) -> None:
        """Tell the server the session ends, if that can be done without waiting."""

    # -- the one door for library calls ---------------------------------------------------

    def _translated(self, action: str, run: Callable[[Any], Any]) -> Any:
        """Run ``run(waiter)`` on this connection's wait loop; turn what goes wrong into
        pssh's errors, naming the host and ``action``."""
        waiter = self._waiter
        if waiter is None:
            raise SessionError(f"{action} on {self._where()} failed: the client is "
                               f"disconnected", host=self.host, port=self.port,
                               reason="the client is disconnected")
        try:
            return run(waiter)
        except DeadlineExceeded:
            raise Timeout(f"{action} on {self._where()} timed out",
                          host=self.host, port=self.port) from None
        except SSHError:
            raise
        except Exception as exc:
            failure = self._failure_of(exc)
            if failure is None:
                raise
            reason = self._describe(exc)
            if failure == SESSION_FAILED:
                raise SessionError(f"{action} on {self._where()} failed: {reason}",
                                   host=self.host, port=self.port, reason=reason) from exc
            raise self._connection_lost(action, reason) from exc

    def _connection_lost(self, action: str, reason: str) -> SSHError:
        """Drop the dead connection, so the next command on this client reconnects, and
        return the error to raise."""
        self.disconnect()
        return ConnectionError(f"{action} on {self._where()} failed: the connection was "
                               f"lost ({reason})", host=self.host, port=self.port,
                               reason=reason)

    def call(self, func: Callable[..., Any], *args: Any, deadline: float | None,
             action: str, again: int | None = None) -> Any:
        """Run one library call in the wait loop until it stops saying "again" (the
        library's usual code, or ``again``), at most until ``deadline``.

        :raises Timeout: ``deadline`` passed.
        :raises SessionError: the library refused the call; ``reason`` says why.
        :raises ConnectionError: the connection was lost (the client then reconnects on
            its next command).
        """
        return self._translated(action, lambda waiter: waiter.call(
            func, *args, deadline=deadline, again=again))

    def wait_for(self, attempt: Callable[[], bool], deadline: float | None,
                 action: str) -> None:
        """Repeat ``attempt`` (non-blocking library work) until it returns True, waiting
        on the connection in between; errors as for :meth:`call`."""
        self._translated(action, lambda waiter: waiter.until(attempt, deadline))

    def taken_bytes(self) -> int | None:
        """How many bytes the library has read from the socket so far (see
        ``BaseSessionWaiter.taken_bytes`` in ``pssh.clients.base._wait``); ``None``
        without a connection or where the kernel does not say.

        An attempt that reads several streams compares two counts: the library's read of
        one stream may take from the socket, and file, bytes of a stream read before it
        in the same attempt, and nothing more may come on the socket for them."""
        waiter = self._waiter
        return waiter.taken_bytes() if waiter is not None else None

    def call_once(self, attempt: Callable[[], Any], action: str) -> Any:
        """Run non-blocking library work once, never waiting; errors as for :meth:`call`."""
        def run(waiter: BaseSessionWaiter) -> Any:
            result = attempt()
            waiter.after_call(None, True)
            return result
        return self._translated(action, run)

    def eagain(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a library function until it stops saying "again" (at most ``timeout``);
        parallel-ssh's name for :meth:`call`."""
        return self.call(partial(func, *args, **kwargs), deadline=deadline_after(self.timeout),
                         action=f"calling {getattr(func, '__name__', self._LIBRARY)}")

    def _execute(self, command: str, use_pty: bool, deadline: float | None,
                 encoding: str = "utf-8") -> tuple[Any, Any, Any]:
        """Start ``command``, sent encoded with ``encoding``; return (channel, output
        reader, stdin)."""
        channel = self._open_session_channel(deadline)
        self._start_command(channel, command.encode(encoding), use_pty, deadline)
        return channel, self._reader_class(self, channel), self._stdin_class(channel, self)

    def execute(self, cmd: str, use_pty: bool = False, channel: Any = None) -> Any:
        """Start ``cmd`` on ``channel`` (a new channel if ``None``) and return the
        channel, for reading with the library's own channel calls (parallel-ssh's
        low-level API; :meth:`run_command` gives a :class:`~pssh.output.HostOutput`).

        :raises SessionError: the channel could not be opened or the command not started.
        :raises Timeout: that took longer than the client's ``timeout``.
        """
        cmd = check_command(cmd, "cmd")
        deadline = deadline_after(self.timeout)
        if channel is None:
            channel = self._open_session_channel(deadline)
        self._start_command(channel, cmd.encode("utf-8"), use_pty, deadline)
        return channel

    def _start_command(self, channel: Any, command: bytes, use_pty: bool,
                       deadline: float | None) -> None:
        try:
            if use_pty:
                self.call(getattr(channel, self._PTY_REQUEST), deadline=deadline,
                          action="requesting a pty")
            logger.debug("Executing %r on %s", command, self._where())
            self.call(getattr(channel, self._EXEC_REQUEST), command, deadline=deadline,
                      action="starting the command")
        except BaseException:
            self.close_quietly(channel)
            raise

    def start_shell(self, channel: Any, deadline: float | None) -> tuple[Any, Any]:
        """Start a login shell on ``channel`` (from :meth:`open_session`); return its
        output reader and stdin. :meth:`open_shell` is the way to get a shell."""
        try:
            self.call(getattr(channel, self._SHELL_REQUEST), deadline=deadline,
                      action="starting a shell")
        except BaseException:
            self.close_quietly(channel)
            raise
        return self._reader_class(self, channel), self._stdin_class(channel, self)

    def close_quietly(self, channel: Any) -> None:
        """Close a channel on a best-effort basis with its own short deadline: at most
        ``CLEANUP_TIMEOUT``, or the client's ``timeout`` if that is shorter. A failure is
        logged, never raised."""
        limit = CLEANUP_TIMEOUT if self.timeout is None else min(CLEANUP_TIMEOUT, self.timeout)
        try:
            self.call(channel.close, deadline=deadline_after(limit),
                      action="closing a channel")
        except SSHError as exc:
            logger.debug("closing a channel on %s failed: %s", self._where(), exc)

    def open_session(self) -> Any:
        """Open a new channel on the connection (waits at most ``timeout``).

        :raises SessionError: the server refused the channel.
        """
        return self._open_session_channel(deadline_after(self.timeout))

    def wait_finished(self, host_output: HostOutput, timeout: float | None = None) -> None:
        """Wait until the command of ``host_output`` has ended and its channel closed.

        Output is kept for reading; ``exit_code`` is set afterwards. An output whose
        command never started (its ``channel`` is ``None``) returns at once.

        :raises ValueError: ``host_output`` is not a :class:`~pssh.output.HostOutput`
            (parallel-ssh 1.x took a channel here).
        :raises Timeout: ``timeout`` seconds passed first; the command keeps running,
            output read so far stays readable, and this may be called again.
        :raises BufferFullError: a stream's unread output reached its buffer limit, so the
            command cannot end before it is read.
        """
        if not isinstance(host_output, HostOutput):
            raise ValueError(f"wait_finished takes the HostOutput that run_command returned, "
                             f"not {host_output!r}")
        deadline = deadline_after(check_timeout(timeout))
        if host_output.channel is not None:
            host_output.wait_done(deadline)

    def read_output(self, stdout_buffer: LineBuffer, timeout: float | None = None,
                    ) -> Iterator[bytes]:
        """Yield the lines (bytes) of ``stdout_buffer``, an output's
        ``buffers.stdout.rw_buffer``, as they arrive, until the command's stdout ends
        (parallel-ssh's low-level reader; ``HostOutput.stdout`` gives decoded lines).

        :raises Timeout: ``timeout`` seconds passed first.
        """
        return stdout_buffer.lines(check_timeout(timeout))

    def read_stderr(self, stderr_buffer: LineBuffer, timeout: float | None = None,
                    ) -> Iterator[bytes]:
        """Like :meth:`read_output`, for ``buffers.stderr.rw_buffer``."""
        return stderr_buffer.lines(check_timeout(timeout))

    def read_output_buffer(self, output_buffer: Iterable[bytes | str],
                           prefix: str | None = None, callback: Callable[..., Any] | None = None,
                           callback_args: Iterable[Any] | None = None,
                           encoding: str = "utf-8") -> Iterator[str]:
        """Decode the lines of ``output_buffer`` with ``encoding``, log each to the host
        logger (prefixed with ``prefix``) and yield it; when the lines end, call
        ``callback(*callback_args)``. parallel-ssh's helper for reading raw buffers;
        :attr:`HostOutput.stdout <pssh.output.HostOutput.stdout>` does all of this."""
        name = self.alias or self.host
        for line in output_buffer:
            text = line.decode(encoding, "replace") if isinstance(line, bytes) else line
            host_logger.info("[%s]%s\t%s", name, prefix or "", text)
            yield text
        if callback is not None:
            callback(*(callback_args or ()))

    def close_channel(self, channel: Any) -> None:
        """Close ``channel`` (at most ``timeout``)."""
        raise NotImplementedError

    def get_exit_status(self, channel: Any) -> int | None:
        """The exit status on ``channel`` once the command has ended, else ``None``."""
        raise NotImplementedError

    # -- commands -------------------------------------------------------------------------

    def open_shell(self, encoding: str = "utf-8", read_timeout: float | None = None,
                   ) -> InteractiveShell:
        """Start an interactive login shell on a new channel; see
        :class:`~pssh.clients.base.shell.InteractiveShell`.

        :raises SessionError: the channel could not be opened or the shell not started.
        """
        check_timeout(read_timeout, "read_timeout")
        check_encoding(encoding)
        return InteractiveShell(self.open_session(), self, encoding=encoding,
                                read_timeout=read_timeout)

    def run_command(self, command: str, sudo: bool = False, user: str | None = None,
                    use_pty: bool = False, shell: str | None = None, encoding: str = "utf-8",
                    timeout: float | None = None, read_timeout: float | None = None, *,
                    buffer_limit: int | None = DEFAULT_BUFFER_LIMIT,
                    spool_to_disk: bool = True) -> HostOutput:
        """Start ``command`` on the host and return its :class:`~pssh.output.HostOutput`.

        Returns once the command has started; its output is read lazily from the
        returned object.

        :param command: the command line.
        :param sudo: run it through ``sudo``.
        :param user: run it as this user through ``sudo -u``.
        :param use_pty: ask for a pseudo-terminal (stderr then arrives on stdout).
        :param shell: run it with this shell, e.g. ``'bash -c'``.
        :param encoding: how to decode output lines.
        :param timeout: parallel-ssh's name for ``read_timeout``, used when that is not
            given. (Opening the channel and starting the command take at most the
            client's ``timeout``.)
        :param read_timeout: seconds one iteration of the output may take.
        :param buffer_limit: bytes of unread output each stream holds in memory
            (see :mod:`pssh.output`); ``None`` for no limit, as in parallel-ssh.
        :param spool_to_disk: what happens to unread output past ``buffer_limit``: with
            ``True`` it goes on into a temporary file, deleted once read or released, so
            waiting for the command never fails for its output's size; with ``False``
            pssh stops reading that stream and the command waits, so
            :meth:`wait_finished` raises :class:`~pssh.exceptions.BufferFullError`.
        :raises SessionError: the channel could not be opened or the command not started.
        :raises Timeout: starting took longer than the client's ``timeout``.
        :raises ValueError: ``buffer_limit`` is not a positive integer or ``None``.
        """
        check_timeout(read_timeout, "read_timeout")
        check_buffer_limit(buffer_limit)
        command = check_command(command)
        check_encoding(encoding)
        if read_timeout is None:
            read_timeout = check_timeout(timeout)
        full_command = wrap_command(command, sudo=sudo, user=user, shell=shell)
        channel, reader, stdin = self._execute(full_command, use_pty,
                                               deadline_after(self.timeout), encoding)
        reader.set_buffer_limit(buffer_limit, bool(spool_to_disk))
        return HostOutput(self.host, channel, stdin, self, alias=self.alias,
                          encoding=encoding, read_timeout=read_timeout,
                          buffers=reader.host_buffers(), fully_qualified_command=full_command)


def check_keyboard_interactive(keyboard_interactive: Any, password: str | None,
                               host: str) -> None:
    """Refuse ``keyboard_interactive=True`` without a password to answer with.

    :raises InvalidAPIUseError: as parallel-ssh does.
    """
    if keyboard_interactive and password is None:
        raise InvalidAPIUseError(
            f"keyboard_interactive=True for host {host!r} needs the password to answer "
            f"with: give password=, or leave keyboard_interactive off", host=host)


def warn_agent_forwarding_ignored(forward_ssh_agent: Any, where: str, library: str) -> None:
    """Warn that ``forward_ssh_agent=True`` does nothing; ``where`` is ``host 'name'`` or
    ``every host``.

    Both libraries can ask the server to forward the agent, but neither binding can accept
    the channels the server then opens back for each agent request, so a forwarded agent
    would break the connection at its first use (any remote ``ssh`` or ``ssh-add``).
    pssh never asks for it. parallel-ssh accepted the flag and ignored it on this engine;
    pssh accepts it too, so existing scripts run, and says so once.
    """
    if forward_ssh_agent:
        warnings.warn(
            f"forward_ssh_agent=True ({where}) does nothing: {library} cannot serve the "
            f"agent requests a server sends back, so the agent is not forwarded. Use "
            f"OpenSSH's `ssh -A` for commands that need the agent on the remote side",
            RuntimeWarning, stacklevel=3)
