"""The SSH clients; the native (libssh2) ones are the default."""

from .native import ParallelSSHClient, SSHClient

__all__ = ["ParallelSSHClient", "SSHClient"]
