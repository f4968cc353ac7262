"""Run commands and copies on many hosts from the workers of a Dask cluster.

An optional part of pssh: it needs Dask's distributed scheduler, installed with
``pip install parallel-ssh[distributed]``. The host list is cut into contiguous shards
(the rule of the sharded client), each shard runs as one Dask task with a
``ParallelSSHClient`` on a worker, and each host's :class:`HostOutcome` comes back to
the caller as its shard finishes. Dask does the scheduling and the transport; see
:doc:`/scaling` for the caching of connections on the workers and what happens when a
worker dies.
"""

try:
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - the extra is installed in our tests
    raise ImportError(
        "pssh.distributed needs Dask's distributed scheduler: install the extra with "
        "pip install 'parallel-ssh[distributed]'") from exc

from ._outcome import HostOutcome, ShardError, WorkerLostError
from ._submit import (
    Outcomes,
    copy_file,
    copy_remote_file,
    disconnect,
    run_command,
    scp_recv,
    scp_send,
)

__all__ = ["run_command", "copy_file", "copy_remote_file", "scp_send", "scp_recv",
           "disconnect", "HostOutcome", "Outcomes", "ShardError", "WorkerLostError"]
