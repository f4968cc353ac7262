"""One host's client on libssh (ssh-python), fully non-blocking.

Theory of operation
-------------------
The connection is made the same way as the native engine's: the base class resolves and
connects a TCP socket, honouring the deadline, and this client hands it to libssh, which
runs the handshake and authentication non-blocking under the wait loop (:mod:`._wait`).
Every libssh call goes through :meth:`SSHClient._translated`, which turns libssh's
exceptions and the socket's errors into pssh's, naming the host.

Three libssh habits shape the set-up:

- libssh closes the descriptor it was given when its session is freed, which may be long
  after :meth:`disconnect` (channels held by outputs keep the session alive). It gets a
  duplicate to close (:class:`_LibsshDescriptor`), and the duplicate holds on to the
  client's own :class:`~pssh.clients.base.single.SocketHandle`, so the descriptor the
  wait loop watches outlives libssh's.
- libssh reads ``~/.ssh/config`` and ``/etc/ssh/ssh_config`` at connect time unless told
  not to; those files could change ciphers, user or even the host, so they are switched
  off: pssh's arguments are the whole configuration, as with the native engine.
- Host keys are not checked, as with the native engine: libssh only checks them when
  asked, and the known-hosts files are pointed at ``/dev/null`` so nothing is read or
  written there.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Callable

from ssh import options
from ssh.channel import Channel
from ssh.exceptions import BaseSSHError, KeyImportError
from ssh.key import (
    copy_cert_to_privkey,
    import_cert_file,
    import_privkey_base64,
    import_privkey_file,
)
from ssh.session import SSH_AUTH_INFO, SSH_AUTH_SUCCESS, Session

from ..._deadline import deadline_after
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import AuthenticationError, ConnectionError, SessionError, SSHError, Timeout
from ..base._keepalive import Keepalive
from ..base.single import BaseSSHClient, SocketHandle, _Retryable
from ._channel import ChannelReader, CommandEnded, Stdin, exit_status, write_all
from ._limits import check_cert_file, check_libssh_options, not_supported
from ._wait import SSH_AGAIN, SSH_AUTH_AGAIN, DeadlineExceeded, SessionWaiter

__all__ = ["SSHClient"]

logger = logging.getLogger("pssh.clients.ssh")

KBDINT_ROUNDS = 10
"""Keyboard-interactive question rounds answered before giving up."""

class _ConnectionLost(Exception):
    """libssh reports the connection closed without raising anything itself."""


class _LibsshDescriptor:
    """What libssh is given as its socket: a duplicate of the client's descriptor.

    libssh owns the duplicate and closes it when the session is freed. The session keeps
    this object, and through it the client's :class:`SocketHandle`, alive until then.
    """

    def __init__(self, handle: SocketHandle) -> None:
        self.handle = handle
        self._fd = os.dup(handle.fileno())

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        """Close the duplicate; only for when libssh never took it."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


class SSHClient(BaseSSHClient):
    """A non-blocking SSH client for one host, on libssh.

    The same API as :class:`pssh.clients.native.SSHClient` for commands, output, stdin
    and shells, plus certificates and GSS-API; no file copies and no proxies (use
    ``pssh.clients.native`` for those). The constructor connects and authenticates.

    :param host: host name or IP address.
    :param user: user to log in as; defaults to the current user.
    :param password: password for password authentication, or the passphrase of ``pkey``.
    :param port: SSH port; defaults to 22.
    :param pkey: private key: a file path (``~`` is expanded) or the key file's bytes.
        When given, it is the only authentication method tried (after GSS-API, if on).
    :param alias: a name for this host in output and logs.
    :param cert_file: path of the OpenSSH certificate signed for ``pkey``
        (``id_ecdsa-cert.pub``); the key is then offered with the certificate. The
        libssh bundled with ssh-python cannot attach certificates to Ed25519 keys.
    :param num_retries: connection attempts to retry after the first one fails. A refused
        connection and failed authentication are not retried.
    :param retry_delay: seconds between attempts.
    :param allow_agent: try the SSH agent (``SSH_AUTH_SOCK``).
    :param timeout: seconds each connection attempt (TCP connect, handshake, auth) and
        each session operation may take; ``None`` for no limit. Does not limit how long
        commands run.
    :param identity_auth: try the default identity files (``~/.ssh/id_*``).
    :param gssapi_auth: try GSS-API (Kerberos) authentication first.
    :param gssapi_server_identity: the server's GSS-API identity; setting it (or the
        client identity) also turns GSS-API authentication on.
    :param gssapi_client_identity: the client's GSS-API identity.
    :param gssapi_delegate_credentials: delegate GSS-API credentials to the server.
    :param ipv6_only: connect over IPv6 only.
    :param compress: ask for compression.
    :param _auth_thread_pool: accepted for compatibility; ignored.
    :param keepalive_seconds: send a keepalive message this often; ``0`` or ``None``
        disables it.
    :param keyboard_interactive: send ``password`` by keyboard-interactive
        authentication instead of the password method.
    :param forward_ssh_agent: not supported; ``True`` raises ``NotImplementedError``.
    :param proxy_host: not supported; setting it raises ``NotImplementedError`` (the
        native client connects through proxies). ``proxy_port``, ``proxy_user``,
        ``proxy_password`` and ``proxy_pkey`` are accepted for the same signature and
        need ``proxy_host``.
    :raises PKeyFileError: ``pkey`` or ``cert_file`` names a missing or unreadable file.
    :raises ValueError: an argument is out of range, or ``cert_file`` is given without
        ``pkey``.
    :raises NotImplementedError: ``proxy_host`` or ``forward_ssh_agent`` was asked for.
    :raises SSHError: connecting failed: ``UnknownHostError``, ``ConnectionError``,
        ``Timeout``, ``AuthenticationError`` or ``SessionError``.
    """

    _PTY_REQUEST = "request_pty"
    _EXEC_REQUEST = "request_exec"
    _SHELL_REQUEST = "request_shell"
    _reader_class = ChannelReader
    _stdin_class = Stdin

    def __init__(self, host: str, user: str | None = None, password: str | None = None,
                 port: int | None = None, pkey: str | bytes | None = None,
                 alias: str | None = None, cert_file: str | None = None,
                 num_retries: int = DEFAULT_RETRIES, retry_delay: float = RETRY_DELAY,
                 allow_agent: bool = True, timeout: float | None = None,
                 identity_auth: bool = True, gssapi_auth: bool = False,
                 gssapi_server_identity: str | None = None,
                 gssapi_client_identity: str | None = None,
                 gssapi_delegate_credentials: bool = False, ipv6_only: bool = False,
                 compress: bool = False, _auth_thread_pool: bool = True, *,
                 keepalive_seconds: int | None = 60, keyboard_interactive: bool = False,
                 forward_ssh_agent: bool = False, proxy_host: str | None = None,
                 proxy_port: int | None = None, proxy_user: str | None = None,
                 proxy_password: str | None = None, proxy_pkey: str | bytes | None = None,
                 ) -> None:
        check_libssh_options(f"host {host!r}", proxy_host, forward_ssh_agent)
        super().__init__(host, user=user, password=password, port=port, pkey=pkey,
                         alias=alias, num_retries=num_retries, retry_delay=retry_delay,
                         allow_agent=allow_agent, timeout=timeout,
                         identity_auth=identity_auth, ipv6_only=ipv6_only,
                         keyboard_interactive=keyboard_interactive)
        self.cert_file = check_cert_file(cert_file, self.pkey, host)
        self.gssapi_auth = gssapi_auth
        self.gssapi_server_identity = gssapi_server_identity
        self.gssapi_client_identity = gssapi_client_identity
        self.gssapi_delegate_credentials = gssapi_delegate_credentials
        self.compress = compress
        self.keepalive_seconds = keepalive_seconds
        self.forward_ssh_agent = forward_ssh_agent
        self.proxy_host = proxy_host
        self.session: Any = None
        self._waiter: SessionWaiter | None = None
        self._keepalive: Keepalive | None = None
        self._connect_and_auth()
        self._start_keepalive()

    def disconnect(self) -> None:
        """End the connection; safe to call more than once.

        Greenlets waiting on this connection are woken and report it closed. libssh
        frees the session, and with it the socket's descriptor, once the outputs and
        channels of this connection are gone too.
        """
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()
        self.session = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.release_all()
        super().disconnect()

    # -- the one way every libssh call is made -------------------------------------------

    def _call(self, func: Callable[..., Any], *args: Any, deadline: float | None,
              action: str, again: int = SSH_AGAIN) -> Any:
        """Run a libssh call in the wait loop, translating errors at the boundary."""
        return self._translated(action, lambda waiter: waiter.call(
            func, *args, deadline=deadline, again=again))

    def _wait_for(self, attempt: Callable[[], bool], deadline: float | None,
                  action: str) -> None:
        """Repeat ``attempt`` (non-blocking libssh work) until it reports progress."""
        self._translated(action, lambda waiter: waiter.until(attempt, deadline))

    def _without_waiting(self, attempt: Callable[[], Any],
                         action: str = "checking the command") -> Any:
        """Run non-blocking libssh work once, translating errors."""
        def run(waiter: SessionWaiter) -> Any:
            result = attempt()
            waiter.after_call(None, True)
            return result
        return self._translated(action, run)

    def _translated(self, action: str, run: Callable[[SessionWaiter], Any]) -> Any:
        waiter = self._waiter
        if waiter is None:
            raise SessionError(f"{action} on {self._where()} failed: the client is "
                               f"disconnected", host=self.host, port=self.port)
        try:
            return run(waiter)
        except DeadlineExceeded:
            raise Timeout(f"{action} on {self._where()} timed out",
                          host=self.host, port=self.port) from None
        except CommandEnded as exc:
            raise SessionError(f"{action} on {self._where()} failed: the command has "
                               f"ended", host=self.host, port=self.port) from exc
        except (BaseSSHError, OSError, _ConnectionLost) as exc:
            if isinstance(exc, BaseSSHError) and self._is_alive():
                raise SessionError(f"{action} on {self._where()} failed: {_describe(exc)}",
                                   host=self.host, port=self.port) from exc
            # Drop the dead connection so the next command on this client reconnects.
            self.disconnect()
            raise ConnectionError(f"{action} on {self._where()} failed and the connection "
                                  f"is closed: {_describe(exc)}", host=self.host,
                                  port=self.port) from exc

    def _is_alive(self) -> bool:
        session = self.session
        return session is not None and bool(session.is_connected())

    def _check_alive(self) -> None:
        if not self._is_alive():
            raise _ConnectionLost("the connection was lost")

    def _session_call(self, method: str, *args: Any, deadline: float | None, action: str,
                      again: int = SSH_AGAIN) -> Any:
        """Run a method of the session in the wait loop (the session of the waiter, so a
        disconnect meanwhile is reported, not tripped over)."""
        return self._translated(action, lambda waiter: waiter.call(
            getattr(waiter.session, method), *args, deadline=deadline, again=again))

    def _flush(self, deadline: float | None) -> None:
        """Wait until libssh has handed every queued byte to the socket."""
        self._session_call("blocking_flush", 0, deadline=deadline, action="sending")

    def _taken_bytes(self) -> int | None:
        """How many bytes libssh has read from the socket so far (see
        :meth:`SessionWaiter.taken_bytes`)."""
        waiter = self._waiter
        return None if waiter is None else waiter.taken_bytes()

    # -- connection set-up (hooks of BaseSSHClient) ---------------------------------------

    def _handshake(self, deadline: float | None) -> None:
        assert self.sock is not None
        session = Session()
        try:
            self._configure(session)
        except BaseSSHError as exc:
            raise SessionError(f"setting up the SSH session for {self._where()} failed: "
                               f"{_describe(exc)}", host=self.host, port=self.port) from exc
        self._give_socket(session, self.sock)
        session.set_blocking(0)
        self.session = session
        self._waiter = SessionWaiter(session, self.sock.fileno())
        try:
            self._call(session.connect, deadline=deadline, action="SSH handshake")
        except SSHError as exc:
            # The server may be busy (MaxStartups) or restarting: worth another attempt.
            raise _Retryable(exc) from exc.__cause__

    def _configure(self, session: Any) -> None:
        """pssh's arguments are the whole configuration: no ssh_config, no known hosts."""
        session.options_set_int_val(options.PROCESS_CONFIG, 0)
        session.options_set(options.HOST, self.host)
        session.options_set_port(self.port)
        session.options_set(options.USER, self.user)
        session.options_set(options.KNOWNHOSTS, os.devnull)
        session.options_set(options.GLOBAL_KNOWNHOSTS, os.devnull)
        if self.compress:
            session.options_set(options.COMPRESSION, "yes")
        if self.gssapi_server_identity:
            session.options_set(options.GSSAPI_SERVER_IDENTITY, self.gssapi_server_identity)
        if self.gssapi_client_identity:
            session.options_set(options.GSSAPI_CLIENT_IDENTITY, self.gssapi_client_identity)
        if self.gssapi_delegate_credentials:
            session.options_set_gssapi_delegate_credentials(True)

    def _give_socket(self, session: Any, handle: SocketHandle) -> None:
        try:
            descriptor = _LibsshDescriptor(handle)
        except OSError as exc:
            raise ConnectionError(f"Cannot set up the connection to {self._where()}: "
                                  f"{exc.strerror or exc}", host=self.host,
                                  port=self.port) from exc
        try:
            session.set_socket(descriptor)
        except BaseException:
            descriptor.close()
            raise

    def _authenticate(self, deadline: float | None) -> None:
        """GSS-API first when asked for (as parallel-ssh did), then the base order."""
        if not (self.gssapi_auth or self.gssapi_server_identity
                or self.gssapi_client_identity):
            super()._authenticate(deadline)
            return
        try:
            self._auth_call("userauth_gssapi", deadline=deadline,
                            action="GSS-API authentication")
            return
        except SessionError as exc:
            gssapi_failure = exc
            logger.debug("%s", exc)
        try:
            super()._authenticate(deadline)
        except AuthenticationError as exc:
            raise AuthenticationError(f"{exc} (GSS-API was tried first: {gssapi_failure})",
                                      host=self.host, port=self.port) from exc

    def _auth_call(self, method: str, *args: Any, deadline: float | None,
                   action: str) -> int:
        """An authentication call; anything but success or a question is a refusal."""
        result: int = self._session_call(method, *args, deadline=deadline, action=action,
                                         again=SSH_AUTH_AGAIN)
        if result not in (SSH_AUTH_SUCCESS, SSH_AUTH_INFO):
            raise SessionError(f"{action} on {self._where()} was refused (code {result})",
                               host=self.host, port=self.port)
        return result

    def _auth_pkey(self, pkey: str | bytes, deadline: float | None) -> None:
        key = self._import_key(pkey)
        if self.cert_file is not None:
            self._attach_certificate(key)
        self._auth_call("userauth_publickey", key, deadline=deadline,
                        action="public key authentication")

    def _import_key(self, pkey: str | bytes) -> Any:
        passphrase = self.password or ""
        try:
            if isinstance(pkey, bytes):
                return import_privkey_base64(pkey, passphrase=passphrase)
            return import_privkey_file(pkey, passphrase=passphrase)
        except KeyImportError as exc:
            what = "the private key given as bytes" if isinstance(pkey, bytes) else (
                f"private key file {pkey!r}")
            raise SSHError(f"libssh cannot read {what}: wrong passphrase (the password "
                           f"argument) or unsupported key format") from exc

    def _attach_certificate(self, key: Any) -> None:
        try:
            copy_cert_to_privkey(import_cert_file(self.cert_file), key)
        except BaseSSHError as exc:
            key_type = key.key_type()
            hint = (" (the libssh bundled with ssh-python cannot attach certificates to "
                    "Ed25519 keys; an RSA or ECDSA key works)"
                    if "ed25519" in str(key_type) else "")
            raise SSHError(f"certificate file {self.cert_file!r} cannot be used with the "
                           f"{key_type} private key: it must be an OpenSSH certificate "
                           f"issued for that key{hint}") from exc

    def _auth_agent(self, _unused: None, deadline: float | None) -> None:
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise SSHError("no SSH agent is running (SSH_AUTH_SOCK is not set)")
        self._auth_call("userauth_agent", self.user, deadline=deadline,
                        action="agent authentication")

    def _auth_password(self, password: str, deadline: float | None) -> None:
        if not self.keyboard_interactive:
            self._auth_call("userauth_password", self.user, password, deadline=deadline,
                            action="password authentication")
            return
        answer = password.encode("utf-8")
        for _ in range(KBDINT_ROUNDS):
            result = self._auth_call("userauth_kbdint", self.user, "", deadline=deadline,
                                     action="keyboard-interactive authentication")
            if result == SSH_AUTH_SUCCESS:
                return
            # The server asked questions (PAM asks for the password, then sends an empty
            # round); every question gets the password.
            session = self.session
            for question in range(session.userauth_kbdint_getnprompts()):
                session.userauth_kbdint_setanswer(question, answer)
        raise SSHError(f"the server asked more than {KBDINT_ROUNDS} rounds of "
                       f"keyboard-interactive questions")

    def _start_keepalive(self) -> None:
        if self.keepalive_seconds:
            self._keepalive = Keepalive(self, _send_keepalive, float(self.keepalive_seconds))

    # -- channels and commands ---------------------------------------------------------

    def _open_channel(self, deadline: float | None) -> Any:
        def run(waiter: SessionWaiter) -> Any:
            channel = waiter.session.channel_new()
            waiter.call(channel.open_session, deadline=deadline)
            return channel
        return self._translated("opening a channel", run)

    def _write_stdin(self, channel: Any, data: bytes) -> None:
        write_all(self, channel, data, deadline_after(self.timeout))

    def _send_eof(self, channel: Any) -> None:
        if channel.is_closed():
            return
        deadline = deadline_after(self.timeout)
        self._call(channel.send_eof, deadline=deadline, action="closing stdin")
        self._flush(deadline)

    # -- parallel-ssh's public single-host API --------------------------------------------

    def open_session(self) -> Any:
        """Open a new channel on the session (waits at most ``timeout``).

        :raises SessionError: the server refused the channel.
        """
        return self._open_channel(deadline_after(self.timeout))

    def eagain(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a libssh function until it stops returning ``SSH_AGAIN`` (at most
        ``timeout``)."""
        return self._call(partial(func, *args, **kwargs), deadline=deadline_after(self.timeout),
                          action=f"calling {getattr(func, '__name__', 'libssh')}")

    def eagain_write(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes) -> None:
        """Write all of ``data`` with a channel's ``write`` method, a window at a time.

        :raises TypeError: ``write_func`` is not the ``write`` method of a channel.
        """
        channel = getattr(write_func, "__self__", None)
        if not isinstance(channel, Channel) or getattr(write_func, "__name__", "") != "write":
            raise TypeError(f"eagain_write takes a channel's write method, not {write_func!r}")
        self._write_stdin(channel, data)

    def finished(self, channel: Any) -> bool:
        """Whether the remote command has sent EOF on ``channel``."""
        return channel is None or bool(channel.is_eof())

    def get_exit_status(self, channel: Any) -> int | None:
        """The exit status on ``channel`` once it has sent EOF, else ``None``."""
        if channel is None or not channel.is_eof():
            return None
        return exit_status(channel)

    def close_channel(self, channel: Any) -> None:
        """Send EOF and close ``channel`` (waits at most ``timeout`` to send them)."""
        deadline = deadline_after(self.timeout)
        self._call(channel.close, deadline=deadline, action="closing a channel")
        self._flush(deadline)

    # -- what this engine does not do -------------------------------------------------------

    def copy_file(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: raises ``NotImplementedError`` naming ``pssh.clients.native``."""
        raise not_supported("copy_file", f"host {self.host!r}")

    def copy_remote_file(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise not_supported("copy_remote_file", f"host {self.host!r}")

    def scp_send(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise not_supported("scp_send", f"host {self.host!r}")

    def scp_recv(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise not_supported("scp_recv", f"host {self.host!r}")

    def sftp_put(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise not_supported("sftp_put", f"host {self.host!r}")

    def sftp_get(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise not_supported("sftp_get", f"host {self.host!r}")

    def mkdir(self, *args: Any, **kwargs: Any) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise not_supported("mkdir", f"host {self.host!r}")

    def make_sftp(self) -> Any:
        """Not supported: raises ``NotImplementedError``."""
        raise not_supported("make_sftp", f"host {self.host!r}")

    _make_sftp = make_sftp  # parallel-ssh's name


def _describe(exc: BaseException) -> str:
    """libssh's message from an ssh-python exception (``(-1, b'text')`` and the like)."""
    parts = [arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg
             for arg in exc.args if isinstance(arg, (bytes, str))]
    text = "; ".join(part for part in parts if part)
    return text or type(exc).__name__


def _send_keepalive(client: SSHClient) -> float | None:
    """Send an SSH ignore message (from the event loop; never waits): libssh has no
    keepalive of its own in ssh-python. Returns the seconds until the next one, or
    ``None`` once the connection is gone."""
    waiter = client._waiter
    if waiter is None or not client.keepalive_seconds:
        return None
    try:
        waiter.session.send_ignore(b"")
    except BaseSSHError as exc:
        logger.debug("Keepalive to %s failed: %s", client._where(), _describe(exc))
        return None
    waiter.after_call(None, True)
    return float(client.keepalive_seconds)
