"""The SSH clients; the native (libssh2) ones are the default."""

from .native import ParallelSSHClient, SSHClient
from .sharded import ShardedSSHClient

__all__ = ["ParallelSSHClient", "SSHClient", "ShardedSSHClient"]
