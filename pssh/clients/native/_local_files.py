"""The local side of file copies, kept off the event loop.

Reading and writing local files can block for a long time on a slow or busy disk. Every
such call here runs in gevent's thread pool, so the event loop keeps serving the other
hosts meanwhile. Reads and writes overlap the network: the next chunk is read (or the
last one written) in a thread while the current one travels. Memory stays at two chunks
per copy, whatever the file's size.

Downloads go to a hidden temporary file next to the destination and are renamed into
place only when complete, so a failed copy never leaves a truncated file under the
destination's name.
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from gevent.hub import get_hub

from ..._commands import format_host_command, per_host_entries

__all__ = ["CHUNK_SIZE", "Progress", "BackgroundCall", "LocalDownload", "check_local_source",
           "copy_paths", "local_target", "local_tree", "off_hub", "read_chunks"]

CHUNK_SIZE = 1024 * 1024
"""Bytes read from or written to a local file at a time."""

Progress = Callable[[str, str, int, int], None]
"""A copy's progress callback: ``progress(host, remote_path, bytes_done, bytes_total)``,
called when a file's copy starts (``bytes_done`` 0) and after each chunk. It runs in the
copying greenlet: it must not block."""

T = TypeVar("T")

logger = logging.getLogger("pssh.clients")


def off_hub(func: Callable[..., T], *args: Any) -> T:
    """Run ``func(*args)`` in gevent's thread pool and return its result or raise its
    error here."""
    result: T = BackgroundCall(func, *args).get()
    return result


class BackgroundCall:
    """Start ``func(*args)`` in gevent's thread pool; :meth:`get` waits for it.

    An error in the thread is carried back and raised by :meth:`get` in the calling
    greenlet, rather than reported (with a traceback) by gevent's thread pool.
    """

    def __init__(self, func: Callable[..., T], *args: Any) -> None:
        self._result = get_hub().threadpool.spawn(_capture, func, args)

    def get(self) -> Any:
        failed, value = self._result.get()
        if failed:
            raise value
        return value

    def wait(self) -> None:
        """Wait for the work to end, ignoring its result or error."""
        self._result.wait()


def _capture(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    try:
        return False, func(*args)
    except Exception as exc:
        return True, exc


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()
"""The process umask at import, applied to downloaded files' modes as ``scp`` does."""


def check_local_source(path: str, recurse: bool, host: str) -> os.stat_result:
    """Stat the local file to copy to ``host``; fail clearly if it cannot be sent.

    :raises FileNotFoundError: ``path`` does not exist.
    :raises ValueError: ``path`` is a directory and ``recurse`` is not set.
    """
    try:
        info = off_hub(os.stat, path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"local file to copy to {host} does not exist",
                                path) from None
    if stat.S_ISDIR(info.st_mode) and not recurse:
        raise ValueError(f"{path!r} is a directory: pass recurse=True to copy it to {host}")
    return info


def read_chunks(path: str, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the bytes of the local file ``path``, reading the next chunk ahead."""
    file = off_hub(open, path, "rb", 0)
    pending = BackgroundCall(file.read, size)
    try:
        while True:
            chunk = pending.get()
            if not chunk:
                return
            pending = BackgroundCall(file.read, size)
            yield chunk
    finally:
        pending.wait()
        file.close()


def local_target(local_file: str, remote_file: str) -> str:
    """``local_file``, with the remote file's name appended if it ends in a slash (a
    download into a directory), as uploads do with a remote path ending in ``/``."""
    if local_file.endswith(("/", os.sep)):
        return os.path.join(local_file, posixpath.basename(remote_file.rstrip("/")))
    return local_file


def local_tree(root: str) -> tuple[list[str], list[str]]:
    """The directories and files under ``root``, as paths relative to it, parents first.

    Symbolic links to files count as files; links to directories and broken links are
    skipped (and logged), so a link loop cannot recurse forever.
    """
    def walk() -> tuple[list[str], list[str]]:
        dirs: list[str] = []
        files: list[str] = []
        for top, subdirs, names in os.walk(root):
            relative = os.path.relpath(top, root)
            prefix = "" if relative == os.curdir else relative
            for name in [name for name in subdirs if os.path.islink(os.path.join(top, name))]:
                logger.warning("Not copying %s: a link to a directory", os.path.join(top, name))
                subdirs.remove(name)
            subdirs.sort()
            dirs.extend(os.path.join(prefix, name) for name in subdirs)
            for name in sorted(names):
                if not os.path.exists(os.path.join(top, name)):
                    logger.warning("Not copying %s: a broken link", os.path.join(top, name))
                    continue
                files.append(os.path.join(prefix, name))
        return dirs, files
    return off_hub(walk)


class LocalDownload:
    """A local file being downloaded: written to a temporary name, renamed when complete.

    Use as a context manager: leaving the block without :meth:`commit` (on an error)
    removes the temporary file and leaves any earlier file at ``path`` untouched.
    Missing parent directories of ``path`` are created.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: Any = None
        self._temp_path: str | None = None
        self._pending: BackgroundCall | None = None

    def __enter__(self) -> LocalDownload:
        self._file, self._temp_path = off_hub(self._open_temp)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._finish_pending(raise_error=False)
            off_hub(self._discard)

    def write(self, chunk: bytes) -> None:
        """Write ``chunk`` in a thread while the caller receives the next one."""
        self._finish_pending(raise_error=True)
        self._pending = BackgroundCall(self._file.write, chunk)

    def commit(self, mode: int) -> None:
        """Finish writing, set the permission bits ``mode`` less the umask, rename."""
        self._finish_pending(raise_error=True)
        off_hub(self._rename_into_place, stat.S_IMODE(mode) & ~UMASK)
        self._file = None

    def _finish_pending(self, raise_error: bool) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            if raise_error:
                pending.get()
            else:
                pending.wait()

    def _open_temp(self) -> tuple[Any, str]:
        directory, name = os.path.split(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".pssh-part",
                                         dir=directory)
        return os.fdopen(fd, "wb"), temp_path

    def _rename_into_place(self, mode: int) -> None:
        assert self._temp_path is not None
        self._file.flush()
        os.fchmod(self._file.fileno(), mode)
        self._file.close()
        os.replace(self._temp_path, self.path)

    def _discard(self) -> None:
        self._file.close()
        if self._temp_path is not None:
            try:
                os.unlink(self._temp_path)
            except FileNotFoundError:
                pass


def copy_paths(hosts: list[str], source: str, destination: str, copy_args: Any,
               suffix_separator: str | None = None) -> list[tuple[str, str]]:
    """Each host's ``(source, destination)`` for a copy to or from every host in
    ``hosts``: formatted with its ``copy_args`` entry, or else, for downloads, with the
    host appended to the destination after ``suffix_separator``.

    :raises HostArgumentError: ``copy_args`` is shorter than ``hosts``, or an entry does
        not fit a path's placeholders.
    """
    entries = per_host_entries(copy_args or None, hosts, "copy_args")
    if entries is not None:
        def fill(path: str, position: int) -> str:
            if "%" not in path:
                return path  # nothing to fill (parallel-ssh raised TypeError here)
            return format_host_command(path, entries[position], position, "copy_args",
                                       "the path")
        return [(fill(source, position), fill(destination, position))
                for position in range(len(hosts))]
    if suffix_separator is not None:
        destination = local_target(destination, source)
        return [(source, f"{destination}{suffix_separator}{host}") for host in hosts]
    return [(source, destination)] * len(hosts)
