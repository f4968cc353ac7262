"""SCP on one host: one file at a time, each on its own channel, through the wait loop.

An upload sends the file's mode and times, then its bytes, then the one status byte the
SCP protocol expects after a file; the remote ``scp`` answers with its own status, and a
refusal (no space left, permission denied) arrives as a message that the raised
:class:`~pssh.exceptions.SCPError` carries word for word. SCP has no directory listing or
creation of its own: recursive copies get those from SFTP (see ``_sftp.py``).
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable
from typing import Any, TypeVar

from ..._deadline import deadline_after
from ...exceptions import SCPError, SessionError
from ..base._seams import where
from ._local_files import CHUNK_SIZE, LocalDownload, Progress, off_hub, read_chunks
from ._seams import NativeClient
from ._sftp import unless_eagain

__all__ = ["scp_recv_file", "scp_send_file"]

logger = logging.getLogger("pssh.clients.native")

T = TypeVar("T")

_STATUS_OK = b"\0"
_SCP_MODE_BITS = 0o777
"""The mode bits SCP carries: the remote scp refuses setuid, setgid and sticky bits."""
_REPLY_LIMIT = 64 * 1024
"""The most of the remote scp's reply kept for an error message."""


def scp_send_file(client: NativeClient, local_path: str, remote_path: str,
                  progress: Progress | None = None) -> None:
    """Upload one local file to ``remote_path`` with SCP, keeping its mode and times.

    :raises SCPError: the remote scp refused the file or failed writing it.
    """
    info = off_hub(os.stat, local_path)
    what = f"SCP upload of {local_path!r} to {remote_path!r} on {where(client)}"
    hint = (f"does the directory {posixpath.dirname(remote_path) or '.'!r} exist, and is "
            f"it writable?")
    channel = _open(client, what, "scp_send64", _encoded(remote_path),
                    info.st_mode & _SCP_MODE_BITS, info.st_size, int(info.st_mtime),
                    int(info.st_atime), hint=hint)
    try:
        sent = 0
        _report(progress, client, remote_path, sent, info.st_size)
        for chunk in read_chunks(local_path):
            chunk = chunk[:info.st_size - sent]
            _write(client, what, channel, chunk)
            sent += len(chunk)
            _report(progress, client, remote_path, sent, info.st_size)
            if sent == info.st_size:
                break
        if sent < info.st_size:
            raise SCPError(f"{what} failed: the local file shrank from {info.st_size} to "
                           f"{sent} bytes while it was sent", host=client.host,
                           port=client.port)
        _write(client, what, channel, _STATUS_OK)
        _call(client, what, channel.send_eof)
        reply = _read_reply(client, channel, what)
        _call(client, what, channel.wait_closed)
    except BaseException:
        client.close_quietly(channel)
        raise
    if reply[:1] != _STATUS_OK:
        message = reply[1:].decode(errors="replace").strip() or "no reason given"
        raise SCPError(f"{what} failed: {message}", host=client.host, port=client.port,
                       reason=message)


def _read_reply(client: NativeClient, channel: Any, what: str) -> bytes:
    """Read what the remote scp says until it ends (a status byte, maybe a message)."""
    read = unless_eagain(channel.read)
    reply = b""
    while True:
        size, data = _call(client, what, read, 1024)
        if size == 0:
            return reply
        reply = (reply + data)[:_REPLY_LIMIT]


def scp_recv_file(client: NativeClient, remote_path: str, local_path: str,
                  progress: Progress | None = None) -> None:
    """Download one remote file with SCP; the local copy appears only once complete.

    Its mode is the remote file's, less the local umask.

    :raises SCPError: the remote scp could not send the file.
    """
    what = f"SCP download of {remote_path!r} from {where(client)}"
    channel, info = _open(client, what, "scp_recv2", _encoded(remote_path),
                          hint="does it exist, and is it a readable regular file?")
    read = unless_eagain(channel.read)
    try:
        with LocalDownload(local_path) as local_file:
            left = info.st_size
            _report(progress, client, remote_path, 0, info.st_size)
            while left > 0:
                size, data = _call(client, what, read, min(CHUNK_SIZE, left))
                if size == 0:
                    raise SCPError(f"{what} failed: the file ended {left} bytes early",
                                   host=client.host, port=client.port)
                local_file.write(data)
                left -= len(data)
                _report(progress, client, remote_path, info.st_size - left, info.st_size)
            local_file.commit(info.st_mode)
    finally:
        client.close_quietly(channel)


def _report(progress: Progress | None, client: NativeClient, path: str, done: int,
            total: int) -> None:
    if progress is not None:
        progress(client.host, path, done, total)


def _encoded(path: str) -> bytes:
    return path.encode(errors="surrogateescape")


def _call(client: NativeClient, what: str, func: Callable[..., Any], *args: Any) -> Any:
    """One libssh2 call in the wait loop; a session-level failure becomes SCPError."""
    return _checked(client, what, "", lambda: client.call(
        func, *args, deadline=deadline_after(client.timeout), action=what))


def _open(client: NativeClient, what: str, method: str, *args: Any, hint: str) -> Any:
    """Open the SCP channel (``scp_send64`` or ``scp_recv2``); failures become SCPError."""
    return _checked(client, what, hint, lambda: client.open_channel(
        method, *args, deadline=deadline_after(client.timeout), action=what))


def _write(client: NativeClient, what: str, channel: Any, data: bytes) -> None:
    _checked(client, what, "", lambda: client.write_all(
        channel.write, data, deadline_after(client.timeout), what))


def _checked(client: NativeClient, what: str, hint: str, run: Callable[[], T]) -> T:
    try:
        return run()
    except SessionError as exc:
        reason = exc.reason or str(exc)
        message = f"{what} failed: {reason}" + (f" ({hint})" if hint else "")
        raise SCPError(message, host=client.host, port=client.port,
                       reason=reason) from exc.__cause__
