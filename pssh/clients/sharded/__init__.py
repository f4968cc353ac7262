"""A client that spreads its hosts over worker processes, one gevent hub (one core)
each; see :mod:`pssh.clients.sharded.client`."""

from .client import ShardedSSHClient

__all__ = ["ShardedSSHClient"]
