"""What travels between the caller and the Dask workers: a shard of work going out,
one :class:`HostOutcome` per host coming back, and the two errors a shard itself can
end with. Plain data, so it pickles; nothing here imports Dask or gevent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ShardError, WorkerLostError

__all__ = ["HostOutcome", "Shard", "ShardError", "WorkerLostError"]


@dataclass(frozen=True)
class HostOutcome:
    """One host's result from :mod:`pssh.distributed`, complete when the caller gets it.

    :ivar host: the host name as given.
    :ivar position: the host's index in the host list given (a host may appear twice).
    :ivar exit_code: the command's exit code; ``None`` for a copy, a host that failed,
        or a command still running when ``join_timeout`` passed.
    :ivar stdout: the output lines, without line endings, decoded with ``encoding``.
    :ivar stderr: the same for standard error.
    :ivar exception: what stopped this host (a :class:`~pssh.exceptions.SSHError` that
        names it, a :class:`ShardError` or :class:`WorkerLostError`), else ``None``.
    :ivar worker: the address of the Dask worker that ran it, when known.
    """

    host: str
    position: int
    exit_code: int | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exception: BaseException | None = None
    worker: str | None = None

    def __repr__(self) -> str:
        # Output can be long: its size, not its lines.
        return (f"HostOutcome(host={self.host!r}, position={self.position}, "
                f"exit_code={self.exit_code!r}, stdout={len(self.stdout)} lines, "
                f"stderr={len(self.stderr)} lines, exception={self.exception!r}, "
                f"worker={self.worker!r})")

    def is_ok(self) -> bool:
        """Whether the host did its part: no exception, and exit code 0 for a command."""
        return self.exception is None and self.exit_code in (0, None)


@dataclass(frozen=True)
class Shard:
    """A contiguous run of the host list, and what to do on it: the payload of one Dask
    task.

    :ivar operation: the ``ParallelSSHClient`` method to call (``run_command``,
        ``copy_file``, ...).
    :ivar start: the position of ``hosts[0]`` in the whole host list.
    :ivar hosts: this shard's hosts.
    :ivar settings: ``ParallelSSHClient`` keywords, ``host_config`` cut to this shard
        and key files already read into bytes. They hold secrets: never log them.
    :ivar arguments: the method's keywords, ``host_args``/``copy_args`` cut to this shard.
    :ivar guard: the name of the Dask ``Event`` a started shard sets, so that a shard
        Dask reschedules after its worker died can tell it already ran.
    """

    operation: str
    start: int
    hosts: tuple[str, ...]
    settings: dict[str, Any] = field(repr=False)
    arguments: dict[str, Any] = field(repr=False)
    guard: str

    def failed(self, error_for: Callable[[str], BaseException],
               worker: str | None = None) -> list[HostOutcome]:
        """An outcome per host, each carrying ``error_for(host)``."""
        return [HostOutcome(host, self.start + offset, exception=error_for(host),
                            worker=worker)
                for offset, host in enumerate(self.hosts)]
