"""One host's client on libssh (ssh-python), fully non-blocking.

Theory of operation
-------------------
The connection is made the same way as the native engine's: the base class resolves and
connects a TCP socket, honouring the deadline, and this client hands it to libssh, which
runs the handshake and authentication non-blocking under the wait loop
(``pssh.clients.ssh._wait``). Every libssh call goes through the base client's one door
(``BaseSSHClient.call`` and its siblings), which turns libssh's exceptions and the
socket's errors into pssh's, naming the host.

Three libssh habits shape the set-up:

- libssh closes the descriptor it was given when its session is freed, which may be long
  after ``disconnect()`` (channels held by outputs keep the session alive). It gets a
  duplicate to close (``_LibsshDescriptor``), and the duplicate holds on to the
  client's own ``SocketHandle``, so the descriptor the wait loop watches outlives
  libssh's.
- libssh reads ``~/.ssh/config`` and ``/etc/ssh/ssh_config`` at connect time unless told
  not to; those files could change ciphers, user or even the host, so they are switched
  off: pssh's arguments are the whole configuration, as with the native engine.
- libssh's own known-hosts handling is off (its files point at ``/dev/null``, so
  nothing is read or written there): the base client checks the server's key with
  pssh's known_hosts reader, as for the native engine (see
  ``pssh.clients.base._host_keys``), so both engines answer alike.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Sequence
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
from ..._known_hosts import DEFAULT_KNOWN_HOSTS, DEFAULT_POLICY, KnownHostsSetting
from ..._ssh_certs import key_type_of
from ..._ssh_settings import SSHConfigSetting
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import AuthenticationError, SessionError, SSHError
from ..base._from_ssh_config import apply_ssh_config
from ..base._handshakes import HandshakeGate
from ..base._tcp import SocketHandle
from ..base.single import CONNECTION_LOST, SESSION_FAILED, BaseSSHClient
from ._channel import ChannelReader, CommandEnded, Stdin, exit_status, write_all
from ._limits import WithoutCopies, check_cert_file, check_no_proxy
from ._wait import SSH_AUTH_AGAIN, SessionWaiter

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


class SSHClient(WithoutCopies, BaseSSHClient):
    """A non-blocking SSH client for one host, on libssh.

    The same API as :class:`pssh.clients.native.single.SSHClient` for commands, output, stdin
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
    :param forward_ssh_agent: accepted and ignored, with a ``RuntimeWarning``:
        ssh-python cannot serve the agent requests a server sends back.
    :param proxy_host: not supported; setting it raises ``NotImplementedError`` (the
        native client connects through proxies). ``proxy_port``, ``proxy_user``,
        ``proxy_password`` and ``proxy_pkey`` are accepted for the same signature and
        need ``proxy_host``.
    :param ssh_config: read OpenSSH client configuration for ``host``: ``True`` for
        ``~/.ssh/config`` and ``/etc/ssh/ssh_config``, or a file's path. Its ``HostName``
        is connected to and it fills the arguments this call did not pass (see
        :doc:`/ssh_config`).
    :raises PKeyFileError: ``pkey`` or ``cert_file`` names a missing or unreadable file.
    :raises ValueError: an argument is out of range, or ``cert_file`` is given without
        ``pkey``.
    :param known_hosts: OpenSSH known_hosts files the server's host key is checked
        against (a path or a list of paths; new keys go to the first); ``None`` turns
        checking off. See :doc:`/security`.
    :param host_key_policy: ``'strict'``, ``'accept-new'``, ``'accept-unknown'`` (the
        default: a host not on file is let through, a changed key refused), ``'warn'``
        or ``'off'``.
    :raises NotImplementedError: ``proxy_host`` was asked for, or a file copy method was
        used.
    :raises HostKeyError: the server's host key was refused (nothing was sent to it).
    :raises SSHError: connecting failed: ``UnknownHostError``, ``ConnectionError``,
        ``Timeout``, ``AuthenticationError`` or ``SessionError``.
    """

    _PTY_REQUEST = "request_pty"
    _EXEC_REQUEST = "request_exec"
    _SHELL_REQUEST = "request_shell"
    _reader_class = ChannelReader
    _stdin_class = Stdin
    _waiter_class = SessionWaiter
    _LIBRARY = "libssh (ssh-python)"
    _DESCRIPTORS = 2  # the socket and libssh's duplicate of it

    @apply_ssh_config
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
                 ssh_config: SSHConfigSetting = None, _hostname: str | None = None,
                 _identity_files: Sequence[str] | None = None,
                 known_hosts: KnownHostsSetting = DEFAULT_KNOWN_HOSTS,
                 host_key_policy: str = DEFAULT_POLICY,
                 _handshakes: HandshakeGate | None = None,
                 ) -> None:
        check_no_proxy(proxy_host, f"host {host!r}")
        super().__init__(host, user=user, password=password, port=port, pkey=pkey,
                         alias=alias, num_retries=num_retries, retry_delay=retry_delay,
                         allow_agent=allow_agent, timeout=timeout, proxy_host=proxy_host,
                         proxy_port=proxy_port, identity_auth=identity_auth,
                         ipv6_only=ipv6_only, keyboard_interactive=keyboard_interactive,
                         keepalive_seconds=keepalive_seconds, compress=compress,
                         _hostname=_hostname, _identity_files=_identity_files,
                         forward_ssh_agent=forward_ssh_agent, known_hosts=known_hosts,
                         host_key_policy=host_key_policy, _handshakes=_handshakes)
        self.cert_file = check_cert_file(cert_file, self.pkey, host)
        self.gssapi_auth = gssapi_auth
        self.gssapi_server_identity = gssapi_server_identity
        self.gssapi_client_identity = gssapi_client_identity
        self.gssapi_delegate_credentials = gssapi_delegate_credentials
        self._connect()

    # -- libssh's errors ---------------------------------------------------------------------

    def _failure_of(self, exc: Exception) -> str | None:
        if isinstance(exc, CommandEnded):
            return SESSION_FAILED
        if isinstance(exc, BaseSSHError) and self._is_alive():
            return SESSION_FAILED
        if isinstance(exc, (BaseSSHError, OSError, _ConnectionLost)):
            return CONNECTION_LOST
        return None

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, CommandEnded):
            return "the command has ended"
        return _describe(exc)

    def _is_alive(self) -> bool:
        session = self.session
        return session is not None and bool(session.is_connected())

    # -- what the channel helpers need beyond the base client -------------------------------

    def check_alive(self) -> None:
        """Raise (as a lost connection, once translated) if the connection has closed."""
        if not self._is_alive():
            raise _ConnectionLost("the server closed the connection")

    def flush(self, deadline: float | None) -> None:
        """Wait until libssh has handed every queued byte to the socket."""
        self._session_call("blocking_flush", 0, deadline=deadline, action="sending")

    def _session_call(self, method: str, *args: Any, deadline: float | None, action: str,
                      again: int | None = None) -> Any:
        """Run a method of the session in the wait loop (the session of the waiter, so a
        disconnect meanwhile is reported, not tripped over)."""
        return self._translated(action, lambda waiter: waiter.call(
            getattr(waiter.session, method), *args, deadline=deadline, again=again))

    # -- connection set-up (hooks of BaseSSHClient) ---------------------------------------

    def _new_session(self, sock: SocketHandle) -> Any:
        session = Session()
        try:
            self._configure(session)
        except BaseSSHError as exc:
            raise SessionError(f"setting up the SSH session for {self._where()} failed: "
                               f"{_describe(exc)}", host=self.host, port=self.port,
                               reason=_describe(exc)) from exc
        self._give_socket(session, sock)
        session.set_blocking(0)
        return session

    def _server_host_key(self) -> tuple[str, bytes]:
        key = self.session.get_server_publickey()
        blob = base64.b64decode(key.export_pubkey_base64())
        return key_type_of(blob), blob

    def _prefer_host_key_algorithms(self, session: Any, algorithms: list[str]) -> None:
        try:
            session.options_set(options.HOSTKEYS, ",".join(algorithms))
        except BaseSSHError as exc:  # only an ordering: libssh's own order stays
            logger.debug("libssh refused host key algorithms %s: %s", algorithms, exc)

    def _handshake_call(self, session: Any) -> Callable[[], Any]:
        return session.connect  # type: ignore[no-any-return]

    def _prompt_after_login(self, deadline: float | None) -> bool:
        # ssh-python sends no keepalive that wants a reply; cancelling a port forward
        # that was never asked for does, and changes nothing on the server. The refusal
        # is the reply; nothing more is due.
        try:
            self.call(self.session.cancel_forward, "localhost", 0, deadline=deadline,
                      action="asking the server for a reply")
        except SessionError:
            pass
        return False

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
            raise self._no_socket_error(exc) from exc
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
                               host=self.host, port=self.port, reason=f"code {result}")
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
            path = pkey if isinstance(pkey, str) else self.pkey
            what = f"private key file {path!r}" if isinstance(path, str) else (
                "the private key given as bytes")
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

    def _auth_agent(self, deadline: float | None) -> None:
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

    def _send_keepalive(self) -> float | None:
        """Send an SSH ignore message: ssh-python has no keepalive call of libssh's."""
        waiter = self._waiter
        if waiter is None or not self.keepalive_seconds:
            return None
        try:
            waiter.session.send_ignore(b"")
        except BaseSSHError as exc:
            logger.debug("Keepalive to %s failed: %s", self._where(), _describe(exc))
            return None
        waiter.after_call(None, True)
        return float(self.keepalive_seconds)

    # -- channels and commands ---------------------------------------------------------

    def _open_session_channel(self, deadline: float | None) -> Any:
        def run(waiter: Any) -> Any:
            channel = waiter.session.channel_new()
            waiter.call(channel.open_session, deadline=deadline)
            return channel
        return self._translated("opening a channel", run)

    def write_stdin(self, channel: Any, data: bytes) -> None:
        """Send all of ``data`` to the command's stdin (at most ``timeout``).

        :raises SessionError: the command has ended.
        """
        write_all(self, channel, data, deadline_after(self.timeout))

    def send_eof(self, channel: Any) -> None:
        """Send EOF on ``channel`` unless it has closed (at most ``timeout``)."""
        if channel.is_closed():
            return
        deadline = deadline_after(self.timeout)
        self.call(channel.send_eof, deadline=deadline, action="closing stdin")
        self.flush(deadline)

    # -- parallel-ssh's public single-host API --------------------------------------------

    def eagain_write(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes) -> None:
        """Write all of ``data`` with a channel's ``write`` method, a window at a time.

        :raises TypeError: ``write_func`` is not the ``write`` method of a channel.
        """
        channel = getattr(write_func, "__self__", None)
        if not isinstance(channel, Channel) or getattr(write_func, "__name__", "") != "write":
            raise TypeError(f"eagain_write takes a channel's write method, not {write_func!r}")
        self.write_stdin(channel, data)

    def finished(self, channel: Any) -> bool:
        """Whether the remote command has sent EOF on ``channel`` (False for ``None``)."""
        return channel is not None and bool(channel.is_eof())

    def get_exit_status(self, channel: Any) -> int | None:
        """The exit status on ``channel`` once it has sent EOF, else ``None``."""
        if channel is None or not channel.is_eof():
            return None
        return exit_status(channel)

    def close_channel(self, channel: Any) -> None:
        """Send EOF and close ``channel`` (waits at most ``timeout`` to send them)."""
        deadline = deadline_after(self.timeout)
        self.call(channel.close, deadline=deadline, action="closing a channel")
        self.flush(deadline)


def _describe(exc: BaseException) -> str:
    """libssh's message from an ssh-python exception (``(-1, b'text')`` and the like)."""
    parts = [arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg
             for arg in exc.args if isinstance(arg, (bytes, str))]
    text = "; ".join(part for part in parts if part)
    return text or type(exc).__name__
