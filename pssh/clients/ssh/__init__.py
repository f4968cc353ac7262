"""The clients on libssh (ssh-python): the alternative engine, with certificate and
GSS-API authentication but no file copies or proxies."""

from .parallel import ParallelSSHClient
from .single import SSHClient

__all__ = ["ParallelSSHClient", "SSHClient"]
