"""One host's client on libssh2 (ssh2-python), fully non-blocking.

Every libssh2 call goes through the base client's one door (``BaseSSHClient.call`` and
its siblings), which runs it in the wait loop (``pssh.clients.native._wait``) and turns
libssh2's and the socket's errors into pssh's, naming the host. The handshake and
authentication are non-blocking too: while one host's key exchange waits on the network,
the event loop serves the others. What is here is libssh2's part: the session, its
authentication calls, channels of every kind, and the file copies built on them.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from collections.abc import Sequence
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
    LIBSSH2_METHOD_HOSTKEY,
    Session,
)

from ..._deadline import deadline_after, time_left
from ..._known_hosts import DEFAULT_KNOWN_HOSTS, DEFAULT_POLICY, KnownHostsSetting
from ..._secrets import openssh_public_key_line
from ..._ssh_certs import key_type_of
from ..._ssh_settings import SSHConfigSetting
from ..._validate import check_pkey
from ...constants import DEFAULT_RETRIES, RETRY_DELAY
from ...exceptions import ProxyError, SessionError, SFTPError, SSHError, Timeout
from ..base._from_ssh_config import apply_ssh_config
from ..base._handshakes import HandshakeGate
from ..base._tcp import SocketHandle
from ..base.single import CONNECTION_LOST, SESSION_FAILED, BaseSSHClient, PollMixIn
from ._channel import ChannelReader, Stdin
from ._local_files import Progress, check_local_source, local_target
from ._proxy import Bastion, Hop, bastion_chain, parse_jump_chain
from ._scp import scp_recv_file, scp_send_file
from ._sftp import RemoteFiles
from ._wait import EAGAIN, SessionWaiter
from .tunnel import FORWARDER as FORWARDER  # parallel-ssh's import path

__all__ = ["SSHClient", "KeepAlive"]

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
        ``ssh -J`` does; the target is reached by a tunnel from there. A chain of jump
        hosts is written as for ``ssh -J``: ``'[user@]host[:port],...'``, first hop
        first; each hop without a user or port takes ``proxy_user`` and ``proxy_port``,
        and all take ``proxy_pkey`` and ``proxy_password``.
    :param proxy_port: the proxy's SSH port; defaults to 22.
    :param proxy_user: user on the proxy; defaults to the current user.
    :param proxy_password: password on the proxy, or the passphrase of ``proxy_pkey``.
    :param proxy_pkey: private key for the proxy (path or bytes); without it the proxy
        is authenticated by agent, identity files or ``proxy_password``.
    :param forward_ssh_agent: accepted and ignored, with a ``RuntimeWarning``: libssh2
        cannot serve the agent requests a server sends back.
    :param keyboard_interactive: send ``password`` by keyboard-interactive
        authentication (as PAM-based servers often require) instead of the password
        method.
    :param known_hosts: OpenSSH known_hosts files the server's host key is checked
        against (a path or a list of paths; new keys go to the first); ``None`` turns
        checking off. See :doc:`/security`.
    :param host_key_policy: ``'strict'``, ``'accept-new'``, ``'accept-unknown'`` (the
        default: a host not on file is let through, a changed key refused), ``'warn'``
        or ``'off'``. The proxies are checked the same way.
    :param ssh_config: read OpenSSH client configuration for ``host``: ``True`` for
        ``~/.ssh/config`` and ``/etc/ssh/ssh_config``, or a file's path. Its ``HostName``
        is connected to and it fills the arguments this call did not pass (see
        :doc:`/ssh_config`).
    :raises PKeyFileError: ``pkey`` names a missing or unreadable file.
    :raises ValueError: an argument is out of range (port, timeout, num_retries).
    :raises HostKeyError: the server's host key was refused (nothing was sent to it).
    :raises SSHError: connecting failed: ``UnknownHostError``, ``ConnectionError``,
        ``Timeout``, ``AuthenticationError`` or ``SessionError``.
    """

    _reader_class = ChannelReader
    _stdin_class = Stdin
    _waiter_class = SessionWaiter
    _LIBRARY = "libssh2"

    @apply_ssh_config
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
                 ssh_config: SSHConfigSetting = None, _hostname: str | None = None,
                 _identity_files: Sequence[str] | None = None,
                 known_hosts: KnownHostsSetting = DEFAULT_KNOWN_HOSTS,
                 host_key_policy: str = DEFAULT_POLICY,
                 _handshakes: HandshakeGate | None = None,
                 ) -> None:
        super().__init__(host, user=user, password=password, port=port, pkey=pkey,
                         alias=alias, num_retries=num_retries, retry_delay=retry_delay,
                         allow_agent=allow_agent, timeout=timeout, proxy_host=proxy_host,
                         proxy_port=proxy_port, identity_auth=identity_auth,
                         ipv6_only=ipv6_only, keyboard_interactive=keyboard_interactive,
                         keepalive_seconds=keepalive_seconds, compress=compress,
                         _hostname=_hostname, _identity_files=_identity_files,
                         forward_ssh_agent=forward_ssh_agent, known_hosts=known_hosts,
                         host_key_policy=host_key_policy, _handshakes=_handshakes)
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.proxy_pkey = check_pkey(proxy_pkey, proxy_host)
        hops = None if proxy_host is None else parse_jump_chain(proxy_host, self.proxy_port)
        self._own_bastions: dict[Any, Bastion] = {}  # a chain of this client's own
        self._bastion = _bastion
        if _bastion is None and hops is not None:
            settings = {name: getattr(self, name) for name in PROXY_SETTINGS}
            self._bastion = bastion_chain(hops, partial(connect_hop, settings),
                                          self._own_bastions)
        self._opening = Semaphore()
        self._connect()

    def _open_socket(self, deadline: float | None) -> SocketHandle:
        if self._bastion is None:
            return super()._open_socket(deadline)
        return self._bastion.open_tunnel(self._address, self.port, deadline)

    def disconnect(self) -> None:
        """End the connection; safe to call more than once.

        Keepalives stop, and greenlets waiting on this connection are woken and report it
        closed. The proxies of this client's own (not those a ``ParallelSSHClient``
        shares) are disconnected too, the last hop first."""
        super().disconnect()
        for bastion in reversed(list(self._own_bastions.values())):
            bastion.close()

    def _say_goodbye(self, session: Any) -> None:
        try:
            session.disconnect()
        except (SSH2Error, OSError):
            pass

    # -- libssh2's errors -------------------------------------------------------------------

    def _failure_of(self, exc: Exception) -> str | None:
        if isinstance(exc, _CONNECTION_LOST):
            return CONNECTION_LOST
        return SESSION_FAILED if isinstance(exc, SSH2Error) else None

    def _connection_lost(self, action: str, reason: str) -> SSHError:
        bastion = self._bastion
        error = super()._connection_lost(action, reason)
        if bastion is not None and bastion.failure is not None:
            return ProxyError(f"{action} on {self._where()} failed: the connection through "
                              f"proxy {bastion.where} was lost ({bastion.failure})",
                              host=self.host, port=self.port, reason=bastion.failure)
        return error

    def _describe(self, exc: Exception) -> str:
        text = super()._describe(exc)
        session = self.session
        if not isinstance(exc, SSH2Error) or session is None:
            return text
        try:
            code = session.last_error()
            message = code.decode(errors="replace") if isinstance(code, bytes) else code
        except (SSH2Error, AttributeError, TypeError):
            message = None
        if not message:
            return text
        return f"{text}: {message}" if str(exc) else str(message)

    # -- channels of every kind -------------------------------------------------------------

    def open_channel(self, kind: str, *args: Any, deadline: float | None,
                     action: str) -> Any:
        """Open a channel of any kind: ``kind`` is the libssh2 session's method,
        ``open_session``, ``direct_tcpip_ex``, ``sftp_init``, ``scp_send64`` or
        ``scp_recv2``.

        libssh2 runs one session-wide state machine for opening channels, so two
        greenlets opening at once on one non-blocking session would get each other's
        channel. Opens on a client therefore take turns, each within its deadline.

        :raises Timeout: ``deadline`` passed, waiting for the turn or for the server.
        :raises SessionError: the server refused the channel.
        """
        if not self._opening.acquire(timeout=time_left(deadline)):
            raise Timeout(f"{action} on {self._where()} timed out waiting for another "
                          f"channel to open", host=self.host, port=self.port)
        try:
            func = getattr(self.session, kind) if self.session else _no_session
            return self.call(func, *args, deadline=deadline, action=action)
        finally:
            self._opening.release()

    def write_all(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes,
                  deadline: float | None, action: str) -> None:
        """Write all of ``data`` with a libssh2 write function (a channel's or an SFTP
        handle's ``write``), resuming partial writes; errors as for :meth:`call`."""
        self._translated(action, lambda waiter: waiter.write(write_func, data, deadline))

    def wake_waiters(self) -> None:
        """Make every greenlet waiting on this connection retry now."""
        if self._waiter is not None:
            self._waiter.wake_parked()

    def write_stdin(self, channel: Any, data: bytes) -> None:
        """Send all of ``data`` to the command's stdin (at most ``timeout``)."""
        self.write_all(channel.write, data, deadline_after(self.timeout), "writing to stdin")

    def send_eof(self, channel: Any) -> None:
        """Send EOF on ``channel`` (at most ``timeout``)."""
        self.call(channel.send_eof, deadline=deadline_after(self.timeout),
                  action="closing stdin")

    # -- connection set-up (hooks of BaseSSHClient) ---------------------------------------

    def _new_session(self, sock: SocketHandle) -> Any:
        session = Session()
        session.set_blocking(False)
        _prefer_fast_ciphers(session)
        if self.compress:
            session.flag(LIBSSH2_FLAG_COMPRESS)
        return session

    def _server_host_key(self) -> tuple[str, bytes]:
        blob, _ = self.session.hostkey()
        return key_type_of(blob), bytes(blob)

    def _prefer_host_key_algorithms(self, session: Any, algorithms: list[str]) -> None:
        supported = session.supported_algs(LIBSSH2_METHOD_HOSTKEY)
        offered = [name for name in algorithms if name in supported]
        if offered:
            session.method_pref(LIBSSH2_METHOD_HOSTKEY, ",".join(offered))

    def _handshake_call(self, session: Any) -> Callable[[], Any]:
        return partial(session.handshake, self.sock)

    def _prompt_after_login(self, deadline: float | None) -> bool:
        # keepalive@openssh.com wanting a reply: every server must answer a global
        # request that wants one, if only to refuse it. configure_keepalive() sets the
        # keepalives asked for (without reply) right after.
        session = self.session
        session.keepalive_config(True, 1)
        self.call(session.keepalive_send, deadline=deadline,
                  action="asking the server for a reply")
        session.keepalive_config(False, 1)
        return True

    def _auth_pkey(self, pkey: str | bytes, deadline: float | None) -> None:
        passphrase = self.password or ""
        if isinstance(pkey, bytes):
            # Given the public half, libssh2 parses the private key once (to sign) instead
            # of twice; for Ed25519 each parse also derives the public key, a scalar
            # multiplication: the two cost about 15% of a connection's client CPU.
            auth = partial(self.session.userauth_publickey_frommemory, self.user, pkey,
                           passphrase=passphrase,
                           publickeyfiledata=openssh_public_key_line(pkey))
        else:
            auth = partial(self.session.userauth_publickey_fromfile, self.user, pkey,
                           passphrase=passphrase)
        self.call(auth, deadline=deadline, action="public key authentication")

    def _auth_agent(self, deadline: float | None) -> None:
        agent = self.session.agent_init()
        try:
            agent.connect()
            agent.list_identities()
            for identity in agent.get_identities():
                try:
                    self.call(agent.userauth, self.user, identity, deadline=deadline,
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
            self.call(self.session.userauth_keyboardinteractive, self.user, password,
                      deadline=deadline, action="keyboard-interactive authentication")
        else:
            self.call(self.session.userauth_password, self.user, password,
                      deadline=deadline, action="password authentication")

    def _configure_keepalive(self, seconds: float) -> float:
        interval = max(1, int(seconds))
        self.session.keepalive_config(False, interval)
        # Not 0: libssh2's first keepalive_send sends at once, whatever the interval, and a
        # keepalive right after connecting is a packet per host for nothing.
        return float(interval)

    def _send_keepalive(self) -> float | None:
        waiter = self._waiter
        if self.session is None or waiter is None:
            return None
        try:
            seconds = self.session.keepalive_send()
            waiter.after_call(None, True)
        except (SSH2Error, OSError) as exc:
            logger.debug("Keepalive to %s failed: %s", self._where(), exc)
            return None
        return max(int(seconds) if seconds != EAGAIN else 1, 1)

    def _open_session_channel(self, deadline: float | None) -> Any:
        return self.open_channel("open_session", deadline=deadline,
                                 action="opening a channel")

    # -- parallel-ssh's public single-host API --------------------------------------------

    def eagain_write(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes) -> None:
        """Write all of ``data`` with ``write_func``, resuming partial writes."""
        self.write_all(write_func, data, deadline=deadline_after(self.timeout),
                       action="writing")

    def finished(self, channel: Any) -> bool:
        """Whether the remote command has sent EOF on ``channel`` (False for ``None``)."""
        return channel is not None and bool(channel.eof())

    def get_exit_status(self, channel: Any) -> int | None:
        """The exit status on ``channel`` once it has sent EOF, else ``None``."""
        if channel is None or not channel.eof():
            return None
        return int(channel.get_exit_status())

    def close_channel(self, channel: Any) -> None:
        """Close ``channel``; once its command has ended, also wait (at most ``timeout``)
        for the server to close it. A running command is left to end on its own (it
        gets SIGHUP if it has a pty)."""
        deadline = deadline_after(self.timeout)
        self.call(channel.close, deadline=deadline, action="closing a channel")
        if channel.eof():
            self.call(channel.wait_closed, deadline=deadline, action="closing a channel")

    # -- file copies: SFTP and SCP ---------------------------------------------------------

    def make_sftp(self) -> Any:
        """Open an SFTP session on this connection, for :meth:`sftp_put`,
        :meth:`sftp_get`, :meth:`mkdir` and the ``sftp`` argument of the copy methods.

        :raises SFTPError: the server refused the SFTP subsystem.
        """
        try:
            return self.open_channel("sftp_init", deadline=deadline_after(self.timeout),
                                     action="starting SFTP")
        except SessionError as exc:
            raise SFTPError(str(exc), host=self.host, port=self.port,
                            reason=exc.reason) from exc.__cause__

    _make_sftp = make_sftp  # parallel-ssh's name

    def _remote_files(self, sftp: Any, encoding: str = "utf-8",
                      progress: Progress | None = None) -> RemoteFiles:
        return RemoteFiles(self, sftp if sftp is not None else self.make_sftp(), encoding,
                           progress)

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
                  sftp: Any = None, *, progress: Progress | None = None) -> None:
        """Upload ``local_file`` to ``remote_file`` with SFTP.

        Missing remote parent directories are created, and the file's permission bits
        are kept. A ``remote_file`` ending in ``/`` gets the local file's name.

        :param recurse: copy a directory and everything under it, empty directories
            included.
        :param sftp: an SFTP session from :meth:`make_sftp` to reuse.
        :param progress: called as ``progress(host, remote_path, bytes_done,
            bytes_total)`` when each file starts and after each chunk.
        :raises ValueError: ``local_file`` is a directory and ``recurse`` is not set.
        :raises FileNotFoundError: ``local_file`` does not exist.
        :raises SFTPIOError: a remote operation failed; the message says which and why.
        """
        info = check_local_source(local_file, recurse, self.host)
        files = self._remote_files(sftp, progress=progress)
        if stat.S_ISDIR(info.st_mode):
            files.upload_tree(local_file, remote_file, files.put)
        else:
            files.put(local_file, _remote_target(remote_file, local_file))

    def copy_remote_file(self, remote_file: str, local_file: str, recurse: bool = False,
                         sftp: Any = None, encoding: str = "utf-8", *,
                         progress: Progress | None = None) -> None:
        """Download ``remote_file`` to ``local_file`` with SFTP.

        Missing local parent directories are created. The file appears under its name
        only once complete; a failed copy leaves no partial file behind.

        :param recurse: copy a directory and everything under it, empty directories
            included.
        :param encoding: how remote file names are encoded.
        :param progress: as for :meth:`copy_file`.
        :raises ValueError: ``remote_file`` is a directory and ``recurse`` is not set.
        :raises SFTPIOError: a remote operation failed; the message says which and why.
        """
        files = self._remote_files(sftp, encoding, progress)
        if recurse and files.is_dir(remote_file):
            files.download_tree(remote_file, local_file, files.get)
        else:
            files.get(remote_file, local_target(local_file, remote_file))

    def scp_send(self, local_file: str, remote_file: str, recurse: bool = False,
                 sftp: Any = None, *, progress: Progress | None = None) -> None:
        """Upload ``local_file`` to ``remote_file`` with SCP, keeping mode and times.

        A ``remote_file`` ending in ``/`` gets the local file's name. SCP does not
        create directories: with ``recurse`` the missing ones (for a single file, its
        parent's) are created over SFTP; without it a missing remote directory is an
        error.

        :raises ValueError: ``local_file`` is a directory and ``recurse`` is not set.
        :raises FileNotFoundError: ``local_file`` does not exist.
        :param progress: as for :meth:`copy_file`.
        :raises SCPError: the remote scp refused the file or failed to write it.
        """
        info = check_local_source(local_file, recurse, self.host)
        if stat.S_ISDIR(info.st_mode):
            self._remote_files(sftp).upload_tree(local_file, remote_file,
                                                 partial(scp_send_file, self,
                                                         progress=progress))
        else:
            target = _remote_target(remote_file, local_file)
            if recurse and posixpath.dirname(target):
                self._remote_files(sftp).makedirs(posixpath.dirname(target))
            scp_send_file(self, local_file, target, progress)

    def scp_recv(self, remote_file: str, local_file: str, recurse: bool = False,
                 sftp: Any = None, encoding: str = "utf-8", *,
                 progress: Progress | None = None) -> None:
        """Download ``remote_file`` to ``local_file`` with SCP.

        Missing local parent directories are created, and the file appears only once
        complete. With ``recurse``, a remote directory is listed over SFTP and each
        file fetched with SCP.

        :param progress: as for :meth:`copy_file`.
        :raises SCPError: the remote scp could not send the file.
        """
        if recurse:
            files = self._remote_files(sftp, encoding)
            if files.is_dir(remote_file):
                files.download_tree(remote_file, local_file,
                                    partial(scp_recv_file, self, progress=progress))
                return
        scp_recv_file(self, remote_file, local_target(local_file, remote_file), progress)


class KeepAlive(PollMixIn):
    """parallel-ssh's keepalive helper, for code that drives its own libssh2 ``session``
    on ``sock``: :meth:`send` sends a keepalive if one is due, through the wait loop.

    pssh's clients need none of this: they send keepalives every ``keepalive_seconds``
    from event-loop timers.
    """

    def __init__(self, sock: Any, session: Any) -> None:
        super().__init__(sock)
        self.session = session
        self._session_waiter = self._waiter = SessionWaiter(session, sock.fileno())

    def send(self) -> int:
        """Send a keepalive if one is due; return the seconds until the next is due."""
        seconds = self.eagain(self.session.keepalive_send)
        return int(seconds)

    def eagain_write(self, write_func: Callable[[bytes], tuple[int, int]], data: bytes,
                     ) -> None:
        """Write all of ``data`` with ``write_func``, resuming partial writes."""
        self._session_waiter.write(write_func, data, deadline_after(self.timeout))


PROXY_SETTINGS = ("proxy_user", "proxy_password", "proxy_pkey", "num_retries",
                  "retry_delay", "allow_agent", "timeout", "keepalive_seconds",
                  "identity_auth", "ipv6_only", "known_hosts", "host_key_policy")
"""A target's settings that its jump hosts' clients are made with."""


def connect_hop(settings: dict[str, Any], hop: Hop, via: Bastion | None) -> SSHClient:
    """The client to one jump host ``hop``, reached through ``via`` (``None`` for the
    first hop), with the proxy settings of a target's ``settings`` (see
    ``PROXY_SETTINGS``)."""
    inherited = {name: settings[name] for name in PROXY_SETTINGS
                 if not name.startswith("proxy_")}
    return SSHClient(hop.host, user=hop.user or settings["proxy_user"],
                     password=settings["proxy_password"], port=hop.port,
                     pkey=settings["proxy_pkey"], _bastion=via, **inherited)


def _remote_target(remote_file: str, local_file: str) -> str:
    """``remote_file``, with the local file's name appended if it ends in ``/``."""
    if remote_file.endswith("/"):
        return posixpath.join(remote_file, os.path.basename(local_file))
    return remote_file


def _prefer_fast_ciphers(session: Any) -> None:
    supported = session.supported_algs(LIBSSH2_METHOD_CRYPT_CS)
    preferred = [name for name in FAST_CIPHERS if name in supported]
    order = ",".join(preferred + [name for name in supported if name not in preferred])
    session.method_pref(LIBSSH2_METHOD_CRYPT_CS, order)
    session.method_pref(LIBSSH2_METHOD_CRYPT_SC, order)


def _no_session() -> Any:
    raise OSError("the client is disconnected")
