"""The clients on libssh2 (ssh2-python): the default engine."""

from .parallel import ParallelSSHClient
from .single import SSHClient, logger

__all__ = ["ParallelSSHClient", "SSHClient", "logger"]
