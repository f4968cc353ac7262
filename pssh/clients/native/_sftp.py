"""SFTP on one host: files, directories and whole trees, through the client's wait loop.

Every SFTP call runs in the client's wait loop (its ``call``) with the client's
``timeout`` as the limit for that one call, so a copy of any length fails only when the
server stops making progress for that long. SFTP's own error codes become
:class:`~pssh.exceptions.SFTPIOError` messages that name the host, the remote path and
the reason.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ssh2.exceptions import SFTPError as LibSFTPError
from ssh2.sftp import (
    LIBSSH2_FXF_CREAT,
    LIBSSH2_FXF_READ,
    LIBSSH2_FXF_TRUNC,
    LIBSSH2_FXF_WRITE,
    LIBSSH2_SFTP_ATTR_PERMISSIONS,
)
from ssh2.sftp_handle import SFTPAttributes
from ssh2.utils import handle_error_codes

from ..._deadline import deadline_after
from ...exceptions import SessionError, SFTPIOError, SSHError
from ..base._seams import where
from ._local_files import (
    CHUNK_SIZE,
    LocalDownload,
    Progress,
    local_tree,
    off_hub,
    read_chunks,
)
from ._seams import NativeClient
from ._wait import EAGAIN

__all__ = ["RemoteFiles", "unless_eagain"]

logger = logging.getLogger("pssh.clients.native")

T = TypeVar("T")

NO_SUCH_FILE = 2
_STATUS_TEXT = {
    1: "end of file",
    NO_SUCH_FILE: "no such file or directory",
    3: "permission denied",
    4: "the server reported a failure (for a write: is the disk full or read-only?)",
    5: "the server could not parse the request (bad path?)",
    6: "no connection",
    7: "connection lost",
    8: "the server does not support this operation",
}
"""SFTP version 3 status codes, the only ones OpenSSH's server sends."""

DIRECTORY_MODE = 0o755
"""Permission bits for remote directories a copy creates (the server's umask applies)."""


def unless_eagain(func: Callable[..., Any]) -> Callable[..., Any]:
    """Adapt a libssh2 call that returns ``(rc, value...)`` to the wait loop, which waits
    while a call returns bare EAGAIN.

    Any other negative ``rc`` is an error (a lost connection reads as ``(-43, b"")``) and
    is raised as libssh2's exception for it, so it can never pass for the end of a file.
    """
    def attempt(*args: Any) -> Any:
        result = func(*args)
        if result[0] == EAGAIN:
            return EAGAIN
        if result[0] < 0:
            handle_error_codes(result[0])
        return result
    return attempt


class RemoteFiles:
    """One SFTP session on one host's connection, and what pssh copies do with it.

    Remote paths are ``str``, encoded with ``encoding``; relative ones start in the
    remote account's home directory.
    """

    def __init__(self, client: NativeClient, sftp: Any, encoding: str = "utf-8",
                 progress: Progress | None = None) -> None:
        self.client = client
        self.sftp = sftp
        self.encoding = encoding
        self.progress = progress

    def _report(self, path: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(self.client.host, path, done, total)

    # -- single calls, with SFTP's reasons in the errors -----------------------------------

    def _checked(self, action: str, path: str, run: Callable[[], T],
                 missing_ok: bool = False) -> T | None:
        """Run ``run``; turn an SFTP failure into :class:`SFTPIOError` naming ``path``.

        With ``missing_ok``, "no such file" returns ``None`` instead.
        """
        try:
            return run()
        except SessionError as exc:
            if not isinstance(exc.__cause__, LibSFTPError):
                raise
            status = self.sftp.last_error()
            if missing_ok and status == NO_SUCH_FILE:
                return None
            reason = _STATUS_TEXT.get(status, f"SFTP status {status}")
            raise SFTPIOError(f"{action} {path!r} on {where(self.client)} failed: {reason}",
                              host=self.client.host, port=self.client.port,
                              reason=reason) from exc.__cause__

    def _call(self, func: Callable[..., Any], *args: Any, action: str, path: str,
              missing_ok: bool = False) -> Any:
        deadline = deadline_after(self.client.timeout)
        return self._checked(action, path, lambda: self.client.call(
            func, *args, deadline=deadline, action=f"{action} {path!r}"), missing_ok)

    def _remote(self, path: str) -> bytes:
        return path.encode(self.encoding, errors="surrogateescape")

    def stat(self, path: str) -> Any:
        """The remote file's attributes (symbolic links followed), or ``None`` if missing."""
        return self._call(self.sftp.stat, self._remote(path), action="stat of", path=path,
                          missing_ok=True)

    def is_dir(self, path: str) -> bool:
        attrs = self.stat(path)
        return attrs is not None and stat.S_ISDIR(attrs.permissions)

    # -- directories ----------------------------------------------------------------------

    def makedirs(self, path: str, mode: int = DIRECTORY_MODE) -> None:
        """Create the remote directory ``path`` and any missing parents, like ``mkdir -p``."""
        missing = []
        current = posixpath.normpath(path)
        while current not in ("", ".", "/"):
            attrs = self.stat(current)
            if attrs is not None:
                if not stat.S_ISDIR(attrs.permissions):
                    raise SFTPIOError(
                        f"cannot create directory {path!r} on {where(self.client)}: "
                        f"{current!r} exists and is not a directory",
                        host=self.client.host, port=self.client.port)
                break
            missing.append(current)
            current = posixpath.dirname(current)
        for directory in reversed(missing):
            self.mkdir(directory, mode)

    def mkdir(self, path: str, mode: int = DIRECTORY_MODE) -> None:
        """Create one remote directory; one that already exists is fine."""
        try:
            self._call(self.sftp.mkdir, self._remote(path), mode,
                       action="creating directory", path=path)
        except SFTPIOError:
            if not self.is_dir(path):  # another copy to the same server may have made it
                raise

    def listdir(self, path: str) -> list[tuple[str, Any]]:
        """``(name, attributes)`` of each entry in the remote directory, without . and .."""
        handle = self._call(self.sftp.opendir, self._remote(path), action="listing",
                            path=path)
        entries = []
        with self._closing(handle, path):
            while True:
                size, name, attrs = self._call(unless_eagain(handle._readdir), 1024,
                                               action="listing", path=path)
                if size == 0:
                    break
                if name not in (b".", b".."):
                    entries.append((name.decode(self.encoding, errors="surrogateescape"),
                                    attrs))
        return entries

    # -- files ----------------------------------------------------------------------------

    def put(self, local_path: str, remote_path: str) -> None:
        """Upload one file, creating missing remote parents; the local mode is kept."""
        info = off_hub(os.stat, local_path)
        mode = stat.S_IMODE(info.st_mode)
        handle = self._open_for_write(remote_path, mode)
        with self._closing(handle, remote_path):
            self._keep_mode(handle, remote_path, mode)
            done = 0
            self._report(remote_path, done, info.st_size)
            for chunk in read_chunks(local_path):
                self._write(handle, chunk, remote_path)
                done += len(chunk)
                self._report(remote_path, done, info.st_size)

    def _keep_mode(self, handle: Any, path: str, mode: int) -> None:
        """Give a regular remote file exactly ``mode``, whatever the remote umask did;
        device files such as /dev/null are left alone."""
        current = self._call(handle.fstat, action="stat of", path=path)
        if stat.S_ISREG(current.permissions) and stat.S_IMODE(current.permissions) != mode:
            attrs = SFTPAttributes()
            attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS
            attrs.permissions = mode
            self._call(handle.fsetstat, attrs, action="setting the mode of", path=path)

    def _open_for_write(self, path: str, mode: int) -> Any:
        flags = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC
        open_file = (self.sftp.open, self._remote(path), flags, mode)
        try:
            handle = self._call(*open_file, action="opening for writing", path=path,
                                missing_ok=True)
            if handle is None:
                self.makedirs(posixpath.dirname(path))
                handle = self._call(*open_file, action="opening for writing", path=path)
        except SFTPIOError:
            if self.is_dir(path):
                raise SFTPIOError(f"cannot upload to {path!r} on {where(self.client)}: it "
                                  f"is a directory; name the file to create",
                                  host=self.client.host, port=self.client.port) from None
            raise
        return handle

    def _write(self, handle: Any, chunk: bytes, path: str) -> None:
        self._checked("writing", path, lambda: self.client.write_all(
            handle.write, chunk, deadline=deadline_after(self.client.timeout),
            action=f"writing {path!r}"))

    def get(self, remote_path: str, local_path: str) -> None:
        """Download one file; the local copy appears only once complete.

        Its mode is the remote file's, less the local umask.
        """
        handle = self._call(self.sftp.open, self._remote(remote_path), LIBSSH2_FXF_READ, 0,
                            action="opening", path=remote_path)
        with self._closing(handle, remote_path):
            attrs = self._call(handle.fstat, action="stat of", path=remote_path)
            if stat.S_ISDIR(attrs.permissions):
                raise ValueError(f"{remote_path!r} on {where(self.client)} is a directory: "
                                 f"pass recurse=True to copy it")
            read = unless_eagain(handle.read)
            done, total = 0, attrs.filesize
            self._report(remote_path, done, total)
            with LocalDownload(local_path) as local_file:
                while True:
                    size, data = self._call(read, CHUNK_SIZE, action="reading",
                                            path=remote_path)
                    if size == 0:
                        break
                    local_file.write(data)
                    done += size
                    self._report(remote_path, done, max(total, done))
                local_file.commit(attrs.permissions)

    @contextmanager
    def _closing(self, handle: Any, path: str) -> Iterator[Any]:
        """Close the SFTP ``handle`` after the block; after an error, quietly, so the
        error that ended the block is the one raised."""
        try:
            yield handle
        except BaseException:
            try:
                self._call(handle.close, action="closing", path=path)
            except SSHError as exc:
                logger.debug("%s", exc)
            raise
        self._call(handle.close, action="closing", path=path)

    # -- trees ----------------------------------------------------------------------------

    def upload_tree(self, local_dir: str, remote_dir: str,
                    send_file: Callable[[str, str], None]) -> None:
        """Recreate the local directory tree under ``remote_dir``, empty directories
        included; ``send_file(local, remote)`` copies each file."""
        dirs, files = local_tree(local_dir)
        self.makedirs(remote_dir)
        for relative in dirs:
            self.mkdir(posixpath.join(remote_dir, *relative.split(os.sep)))
        for relative in files:
            send_file(os.path.join(local_dir, relative),
                      posixpath.join(remote_dir, *relative.split(os.sep)))

    def download_tree(self, remote_dir: str, local_dir: str,
                      fetch_file: Callable[[str, str], None]) -> None:
        """Recreate the remote directory tree under ``local_dir``, empty directories
        included; ``fetch_file(remote, local)`` copies each file.

        Symbolic links to files are copied as files; links to directories are skipped,
        so a link loop cannot recurse forever.
        """
        off_hub(os.makedirs, local_dir, 0o777, True)
        for name, attrs in self.listdir(remote_dir):
            remote = posixpath.join(remote_dir, name)
            local = os.path.join(local_dir, name)
            if stat.S_ISLNK(attrs.permissions):
                target = self.stat(remote)
                if target is None or not stat.S_ISREG(target.permissions):
                    logger.warning("Not copying %s from %s: a link to a directory, or "
                                   "broken", remote, where(self.client))
                    continue
                fetch_file(remote, local)
            elif stat.S_ISDIR(attrs.permissions):
                self.download_tree(remote, local, fetch_file)
            elif stat.S_ISREG(attrs.permissions):
                fetch_file(remote, local)
            else:
                logger.warning("Not copying %s from %s: not a regular file or directory",
                               remote, where(self.client))
