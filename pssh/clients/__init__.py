"""The SSH clients; the native (libssh2) ones are the default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .native import ParallelSSHClient, SSHClient

if TYPE_CHECKING:
    from .sharded import ShardedSSHClient

__all__ = ["ParallelSSHClient", "SSHClient", "ShardedSSHClient"]


def __getattr__(name: str) -> Any:
    # The sharded client (and multiprocessing with it) is imported when first asked for:
    # a program that never uses it does not pay for the import.
    if name == "ShardedSSHClient":
        from .sharded import ShardedSSHClient
        return ShardedSSHClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
