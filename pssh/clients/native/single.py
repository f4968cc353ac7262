"""One host's client on libssh2 (ssh2-python), fully non-blocking.

Every libssh2 call goes through :meth:`SSHClient._call`, which runs it in the one wait
loop (:mod:`._wait`) and turns libssh2's and the socket's errors into pssh's, naming the
host. The handshake and authentication are non-blocking too: while one host's key
exchange waits on the network, the event loop serves the others.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from functools import partial
from typing import Any, Callable

from gevent.lock import Semaphore
from ssh2.exceptions import (
    BadSocketError,
    SocketDisconnectError,
    SocketRecvError,
    SocketSendError,
    SSH2Error,
)
from ssh2.session import (
    LIBSSH2_FLAG_COMPRESS,
    LIBSSH2_METHOD_CRYPT_CS,
    LIBSSH2_METHOD_CRYPT_SC,
    Session,
)

from ..._deadline import deadline_after, time_left
from ..._local_files import check_local_source, local_target
from ..._validate import check_pkey, check_port
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import ConnectionError, ProxyError, SessionError, SFTPError, SSHError, Timeout
from ..base._keepalive import Keepalive
from ..base.single import BaseSSHClient, SocketHandle, _Retryable
from ._channel import ChannelReader, Stdin
from ._proxy import Bastion
from ._scp import scp_recv_file, scp_send_file
from ._sftp import RemoteFiles
from ._wait import EAGAIN, DeadlineExceeded, SessionWaiter

__all__ = ["SSHClient"]

logger = logging.getLogger("pssh.clients.native")

# libssh2 errors after which the connection is gone for good.
_CONNECTION_LOST = (SocketDisconnectError, SocketRecvError, SocketSendError, BadSocketError,
                    OSError)

FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr")
"""Ciphers offered first. libssh2's chacha20-poly1305 (its default first choice) moves
2 to 4 times fewer bytes per CPU second than AES-GCM on AES-NI hardware (measured on
loopback: a 100 MB SFTP read takes 1.07 s of client CPU with chacha20, 0.27 s with
aes128-gcm). Every other cipher libssh2 supports is still offered, after these."""


class SSHClient(BaseSSHClient):
    """A non-blocking SSH client for one host, on libssh2.

    The constructor connects and authenticates; the client is then ready for
    :meth:`run_command`. Use it as a context manager, or call :meth:`disconnect`.

    :param host: host name or IP address.
    :param user: user to log in as; defaults to the current user.
    :param password: password for password authentication, or the passphrase of ``pkey``.
    :param port: SSH port; defaults to 22.
    :param pkey: private key: a file path (``~`` is expanded) or the key file's bytes.
        When given, it is the only authentication method tried.
    :param alias: a name for this host in output and logs.
    :param num_retries: connection attempts to retry after the first one fails. A refused
        connection and failed authentication are not retried.
    :param retry_delay: seconds between attempts.
    :param allow_agent: try the SSH agent (``SSH_AUTH_SOCK``).
    :param timeout: seconds each connection attempt (TCP connect, handshake, auth) and
        each session operation may take; ``None`` for no limit. Does not limit how long
        commands run.
    :param keepalive_seconds: send a keepalive this often; ``0`` or ``None`` disables it.
    :param identity_auth: try the default identity files (``~/.ssh/id_*``).
    :param ipv6_only: connect over IPv6 only.
    :param compress: ask for compression.
    :param proxy_host: connect through this SSH server (a bastion or jump host), as
        ``ssh -J`` does; the target is reached by a tunnel from there.
    :param proxy_port: the proxy's SSH port; defaults to 22.
    :param proxy_user: user on the proxy; defaults to the current user.
    :param proxy_password: password on the proxy, or the passphrase of ``proxy_pkey``.
    :param proxy_pkey: private key for the proxy (path or bytes); without it the proxy
        is authenticated by agent, identity files or ``proxy_password``.
    :param forward_ssh_agent: not supported; ``True`` raises ``NotImplementedError``
        (libssh2 cannot serve the agent requests the server sends back).
    :param keyboard_interactive: send ``password`` by keyboard-interactive
        authentication (as PAM-based servers often require) instead of the password
        method.
    :raises PKeyFileError: ``pkey`` names a missing or unreadable file.
    :raises ValueError: an argument is out of range (port, timeout, num_retries).
    :raises SSHError: connecting failed: ``UnknownHostError``, ``ConnectionError``,
        ``Timeout``, ``AuthenticationError`` or ``SessionError``.
    """

    _reader_class = ChannelReader
    _stdin_class = Stdin

    def __init__(self, host: str, user: str | None = None, password: str | None = None,
                 port: int | None = None, pkey: str | bytes | None = None,
                 alias: str | None = None, num_retries: int = DEFAULT_RETRIES,
                 retry_delay: float = RETRY_DELAY, allow_agent: bool = True,
                 timeout: float | None = None, forward_ssh_agent: bool = False,
                 proxy_host: str | None = None, proxy_port: int | None = None,
                 proxy_pkey: str | bytes | None = None, proxy_user: str | None = None,
                 proxy_password: str | None = None, _auth_thread_pool: bool = True,
                 keepalive_seconds: int | None = 60, identity_auth: bool = True,
                 ipv6_only: bool = False, compress: bool = False,
                 keyboard_interactive: bool = False, *, _bastion: Bastion | None = None,
                 ) -> None:
        super().__init__(host, user=user, password=password, port=port, pkey=pkey,
                         alias=alias, num_retries=num_retries, retry_delay=retry_delay,
                         allow_agent=allow_agent, timeout=timeout,
                         identity_auth=identity_auth, ipv6_only=ipv6_only,
                         keyboard_interactive=keyboard_interactive)
        check_no_agent_forwarding(forward_ssh_agent, host)
        self.proxy_host = proxy_host
        self.proxy_port = check_port(22 if proxy_port is None else proxy_port, proxy_host)
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.proxy_pkey = check_pkey(proxy_pkey, proxy_host)
        self._owns_bastion = _bastion is None and proxy_host is not None
        self._bastion = _bastion if _bastion is not None or proxy_host is None else Bastion(
            partial(self._connect_proxy, proxy_host), f"{proxy_host}:{self.proxy_port}")
        self.forward_ssh_agent = forward_ssh_agent
        self.keepalive_seconds = keepalive_seconds
        self.compress = compress
        self.session: Any = None
        self._waiter: SessionWaiter | None = None
        self._keepalive: Keepalive | None = None
        self._opening = Semaphore()
        self._connect_and_auth()
        self._start_keepalive()

    def _connect_proxy(self, proxy_host: str) -> SSHClient:
        """The client to this client's own bastion, with its settings."""
        return SSHClient(proxy_host, user=self.proxy_user, password=self.proxy_password,
                         port=self.proxy_port, pkey=self.proxy_pkey,
                         num_retries=self.num_retries, retry_delay=self.retry_delay,
                         allow_agent=self.allow_agent, timeout=self.timeout,
                         keepalive_seconds=self.keepalive_seconds,
                         identity_auth=self.identity_auth, ipv6_only=self.ipv6_only)

    def _open_socket(self, deadline: float | None) -> SocketHandle:
        if self._bastion is None:
            return super()._open_socket(deadline)
        return self._bastion.open_tunnel(self.host, self.port, deadline)

    def disconnect(self) -> None:
        """Say goodbye to the server if it can be done without waiting, then end the
        connection (see :meth:`BaseSSHClient.disconnect`). A bastion of this client's
        own (not one shared by a ``ParallelSSHClient``) is disconnected too."""
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None:
            keepalive.stop()
        session, self.session = self.session, None
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.release_all()
        if session is not None and self.sock is not None:
            try:
                session.disconnect()
            except (SSH2Error, OSError):
                pass
        super().disconnect()
        if self._owns_bastion and self._bastion is not None:
            self._bastion.close()

    # -- the one way every libssh2 call is made -----------------------------------------

    def _call(self, func: Callable[..., Any], *args: Any, deadline: float | None,
              action: str) -> Any:
        """Run a libssh2 call in the wait loop, translating errors at the boundary."""
        return self._translated(action, lambda waiter: waiter.call(func, *args,
                                                                    deadline=deadline))

    def _open(self, method: str, *args: Any, deadline: float | None, action: str) -> Any:
        """Open a channel of any kind: ``method`` is the session's ``open_session``,
        ``direct_tcpip_ex``, ``sftp_init``, ``scp_send64`` or ``scp_recv2``.

        libssh2 runs one session-wide state machine for opening channels, so two
        greenlets opening at once on one non-blocking session would get each other's
        channel. Opens on a client therefore take turns, each within its deadline.
        """
        if not self._opening.acquire(timeout=time_left(deadline)):
            raise Timeout(f"{action} on {self._where()} timed out waiting for another "
                          f"channel to open", host=self.host, port=self.port)
        try:
            func = getattr(self.session, method) if self.session else _no_session
            return self._call(func, *args, deadline=deadline, action=action)
        finally:
            self._opening.release()

    def _write_all(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes,
                   deadline: float | None, action: str) -> None:
        """Write all of ``data`` in the wait loop, resuming partial writes."""
        self._translated(action, lambda waiter: waiter.write(write_func, data, deadline))

    def wake_waiters(self) -> None:
        """Make every greenlet waiting on this connection retry now."""
        if self._waiter is not None:
            self._waiter.wake_parked()

    def _wait_for(self, attempt: Callable[[], bool], deadline: float | None,
                  action: str) -> None:
        """Repeat ``attempt`` (non-blocking libssh2 work) until it reports progress."""
        def run(waiter: SessionWaiter) -> None:
            reason = None
            while True:
                progressed = attempt()
                waiter.after_call(reason, progressed)
                if progressed:
                    return
                reason = waiter.park(deadline)
        self._translated(action, run)

    def _without_waiting(self, attempt: Callable[[], Any]) -> Any:
        """Run non-blocking libssh2 work once, translating errors."""
        def run(waiter: SessionWaiter) -> Any:
            result = attempt()
            waiter.after_call(None, True)
            return result
        return self._translated("checking the command", run)

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
        except _CONNECTION_LOST as exc:
            # Drop the dead connection so the next command on this client reconnects.
            reason = self._describe(exc) if isinstance(exc, SSH2Error) else exc
            bastion = self._bastion
            self.disconnect()
            if bastion is not None and bastion.failure is not None:
                raise ProxyError(f"{action} on {self._where()} failed: the connection "
                                 f"through proxy {bastion.where} was lost "
                                 f"({bastion.failure})", host=self.host,
                                 port=self.port) from exc
            raise ConnectionError(f"{action} on {self._where()} failed: the connection was "
                                  f"lost ({reason})", host=self.host, port=self.port) from exc
        except SSH2Error as exc:
            raise SessionError(f"{action} on {self._where()} failed: {self._describe(exc)}",
                               host=self.host, port=self.port) from exc

    def _describe(self, exc: SSH2Error) -> str:
        text = str(exc) or type(exc).__name__
        session = self.session
        if session is not None:
            try:
                code, message = session.last_error(), None
                message = code.decode(errors="replace") if isinstance(code, bytes) else code
            except (SSH2Error, AttributeError, TypeError):
                message = None
            if message:
                text = f"{text}: {message}" if str(exc) else message
        return text

    # -- connection set-up (hooks of BaseSSHClient) ---------------------------------------

    def _handshake(self, deadline: float | None) -> None:
        assert self.sock is not None
        session = Session()
        session.set_blocking(False)
        _prefer_fast_ciphers(session)
        if self.compress:
            session.flag(LIBSSH2_FLAG_COMPRESS)
        self.session = session
        self._waiter = SessionWaiter(session, self.sock.fileno())
        try:
            self._call(session.handshake, self.sock, deadline=deadline,
                       action="SSH handshake")
        except SSHError as exc:
            # The server may be busy (MaxStartups) or restarting: worth another attempt.
            raise _Retryable(exc) from exc.__cause__

    def _auth_pkey(self, pkey: str | bytes, deadline: float | None) -> None:
        passphrase = self.password or ""
        if isinstance(pkey, bytes):
            auth = partial(self.session.userauth_publickey_frommemory, self.user, pkey,
                           passphrase=passphrase)
        else:
            auth = partial(self.session.userauth_publickey_fromfile, self.user, pkey,
                           passphrase=passphrase)
        self._call(auth, deadline=deadline, action="public key authentication")

    def _auth_agent(self, _unused: None, deadline: float | None) -> None:
        if not os.environ.get("SSH_AUTH_SOCK"):
            raise SSHError("no SSH agent is running (SSH_AUTH_SOCK is not set)")
        agent = self.session.agent_init()
        try:
            agent.connect()
            agent.list_identities()
            for identity in agent.get_identities():
                try:
                    self._call(agent.userauth, self.user, identity, deadline=deadline,
                               action="agent authentication")
                    return
                except SessionError:
                    continue
        except SSH2Error as exc:
            raise SSHError(f"the SSH agent failed: {self._describe(exc)}") from exc
        finally:
            agent.disconnect()
        raise SSHError("the SSH agent has no key the server accepts")

    def _auth_password(self, password: str, deadline: float | None) -> None:
        if self.keyboard_interactive:
            self._call(self.session.userauth_keyboardinteractive, self.user, password,
                       deadline=deadline, action="keyboard-interactive authentication")
        else:
            self._call(self.session.userauth_password, self.user, password,
                       deadline=deadline, action="password authentication")

    def _start_keepalive(self) -> None:
        if self.keepalive_seconds:
            self.session.keepalive_config(False, int(self.keepalive_seconds))
            self._keepalive = Keepalive(self, _send_keepalive, 0)

    # -- channels and commands ---------------------------------------------------------

    def _open_channel(self, deadline: float | None) -> Any:
        return self._open("open_session", deadline=deadline, action="opening a channel")

    # -- parallel-ssh's public single-host API --------------------------------------------

    def open_session(self) -> Any:
        """Open a new channel on the session (waits at most ``timeout``)."""
        return self._open_channel(deadline_after(self.timeout))

    def eagain(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a libssh2 function until it stops returning EAGAIN (at most ``timeout``)."""
        return self._call(partial(func, *args, **kwargs), deadline=deadline_after(self.timeout),
                          action=f"calling {getattr(func, '__name__', 'libssh2')}")

    def eagain_write(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes) -> None:
        """Write all of ``data`` with ``write_func``, resuming partial writes."""
        self._write_all(write_func, data, deadline=deadline_after(self.timeout),
                        action="writing")

    def finished(self, channel: Any) -> bool:
        """Whether the remote command has sent EOF on ``channel``."""
        return channel is None or bool(channel.eof())

    def get_exit_status(self, channel: Any) -> int | None:
        """The exit status on ``channel`` once it has sent EOF, else ``None``."""
        if channel is None or not channel.eof():
            return None
        return int(channel.get_exit_status())

    def close_channel(self, channel: Any) -> None:
        """Close ``channel`` and wait (at most ``timeout``) for the server to close it too."""
        deadline = deadline_after(self.timeout)
        self._call(channel.close, deadline=deadline, action="closing a channel")
        self._call(channel.wait_closed, deadline=deadline, action="closing a channel")

    # -- file copies: SFTP and SCP ---------------------------------------------------------

    def make_sftp(self) -> Any:
        """Open an SFTP session on this connection, for :meth:`sftp_put`,
        :meth:`sftp_get`, :meth:`mkdir` and the ``sftp`` argument of the copy methods.

        :raises SFTPError: the server refused the SFTP subsystem.
        """
        try:
            return self._open("sftp_init", deadline=deadline_after(self.timeout),
                              action="starting SFTP")
        except SessionError as exc:
            raise SFTPError(str(exc), host=self.host, port=self.port) from exc.__cause__

    _make_sftp = make_sftp  # parallel-ssh's name

    def _remote_files(self, sftp: Any, encoding: str = "utf-8") -> RemoteFiles:
        return RemoteFiles(self, sftp if sftp is not None else self.make_sftp(), encoding)

    def mkdir(self, sftp: Any, directory: str) -> None:
        """Create the remote ``directory`` and any missing parents."""
        self._remote_files(sftp).makedirs(directory)

    def sftp_put(self, sftp: Any, local_file: str, remote_file: str) -> None:
        """Upload one file over the SFTP session ``sftp``, keeping its mode."""
        self._remote_files(sftp).put(local_file, remote_file)

    def sftp_get(self, sftp: Any, remote_file: str, local_file: str) -> None:
        """Download one file over the SFTP session ``sftp``."""
        self._remote_files(sftp).get(remote_file, local_file)

    def copy_file(self, local_file: str, remote_file: str, recurse: bool = False,
                  sftp: Any = None) -> None:
        """Upload ``local_file`` to ``remote_file`` with SFTP.

        Missing remote parent directories are created, and the file's permission bits
        are kept. A ``remote_file`` ending in ``/`` gets the local file's name.

        :param recurse: copy a directory and everything under it, empty directories
            included.
        :param sftp: an SFTP session from :meth:`make_sftp` to reuse.
        :raises ValueError: ``local_file`` is a directory and ``recurse`` is not set.
        :raises FileNotFoundError: ``local_file`` does not exist.
        :raises SFTPIOError: a remote operation failed; the message says which and why.
        """
        info = check_local_source(local_file, recurse, self.host)
        files = self._remote_files(sftp)
        if stat.S_ISDIR(info.st_mode):
            files.upload_tree(local_file, remote_file, files.put)
        else:
            files.put(local_file, _remote_target(remote_file, local_file))

    def copy_remote_file(self, remote_file: str, local_file: str, recurse: bool = False,
                         sftp: Any = None, encoding: str = "utf-8") -> None:
        """Download ``remote_file`` to ``local_file`` with SFTP.

        Missing local parent directories are created. The file appears under its name
        only once complete; a failed copy leaves no partial file behind.

        :param recurse: copy a directory and everything under it, empty directories
            included.
        :param encoding: how remote file names are encoded.
        :raises ValueError: ``remote_file`` is a directory and ``recurse`` is not set.
        :raises SFTPIOError: a remote operation failed; the message says which and why.
        """
        files = self._remote_files(sftp, encoding)
        if recurse and files.is_dir(remote_file):
            files.download_tree(remote_file, local_file, files.get)
        else:
            files.get(remote_file, local_target(local_file, remote_file))

    def scp_send(self, local_file: str, remote_file: str, recurse: bool = False,
                 sftp: Any = None) -> None:
        """Upload ``local_file`` to ``remote_file`` with SCP, keeping mode and times.

        A ``remote_file`` ending in ``/`` gets the local file's name. SCP does not
        create directories: with ``recurse`` they are created over SFTP; without it a
        missing remote directory is an error.

        :raises ValueError: ``local_file`` is a directory and ``recurse`` is not set.
        :raises FileNotFoundError: ``local_file`` does not exist.
        :raises SCPError: the remote scp refused the file or failed to write it.
        """
        info = check_local_source(local_file, recurse, self.host)
        if stat.S_ISDIR(info.st_mode):
            self._remote_files(sftp).upload_tree(local_file, remote_file,
                                                 partial(scp_send_file, self))
        else:
            scp_send_file(self, local_file, _remote_target(remote_file, local_file))

    def scp_recv(self, remote_file: str, local_file: str, recurse: bool = False,
                 sftp: Any = None, encoding: str = "utf-8") -> None:
        """Download ``remote_file`` to ``local_file`` with SCP.

        Missing local parent directories are created, and the file appears only once
        complete. With ``recurse``, a remote directory is listed over SFTP and each
        file fetched with SCP.

        :raises SCPError: the remote scp could not send the file.
        """
        if recurse:
            files = self._remote_files(sftp, encoding)
            if files.is_dir(remote_file):
                files.download_tree(remote_file, local_file, partial(scp_recv_file, self))
                return
        scp_recv_file(self, remote_file, local_target(local_file, remote_file))


def _remote_target(remote_file: str, local_file: str) -> str:
    """``remote_file``, with the local file's name appended if it ends in ``/``."""
    if remote_file.endswith("/"):
        return posixpath.join(remote_file, os.path.basename(local_file))
    return remote_file


def check_no_agent_forwarding(forward_ssh_agent: Any, host: str) -> None:
    """Refuse ``forward_ssh_agent=True``, which libssh2 cannot do.

    libssh2 can ask the server to forward the agent, but cannot accept the channels the
    server then opens back for each agent request: the first one (any remote ``ssh`` or
    ``ssh-add``) breaks the whole connection. Refusing up front beats a flag that is
    silently ignored, or a connection that dies mid-run.
    """
    if forward_ssh_agent:
        raise NotImplementedError(
            f"forward_ssh_agent=True is not supported (host {host!r}): libssh2 cannot "
            f"serve the agent requests the server sends back, and the first one would "
            f"break the connection. Leave it off, or use OpenSSH's `ssh -A` for commands "
            f"that need the agent on the remote side")


def _prefer_fast_ciphers(session: Any) -> None:
    supported = session.supported_algs(LIBSSH2_METHOD_CRYPT_CS)
    preferred = [name for name in FAST_CIPHERS if name in supported]
    order = ",".join(preferred + [name for name in supported if name not in preferred])
    session.method_pref(LIBSSH2_METHOD_CRYPT_CS, order)
    session.method_pref(LIBSSH2_METHOD_CRYPT_SC, order)


def _no_session() -> Any:
    raise OSError("the client is disconnected")


def _send_keepalive(client: SSHClient) -> float | None:
    """Send a keepalive if one is due (from the event loop; never waits). Returns the
    seconds until the next one, or ``None`` once the connection is gone."""
    if client.session is None or client._waiter is None:
        return None
    try:
        seconds = client.session.keepalive_send()
        client._waiter.after_call(None, True)
    except (SSH2Error, OSError) as exc:
        logger.debug("Keepalive to %s failed: %s", client._where(), exc)
        return None
    return max(int(seconds) if seconds != EAGAIN else 1, 1)
