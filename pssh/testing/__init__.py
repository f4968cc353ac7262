"""Test helpers: a real OpenSSH server on loopback addresses.

For pssh's own tests, its demo, and users who test their code against a local server.
Only the standard library is imported here, never gevent or ssh2.
"""

from pssh.testing._sshd import LocalSSHD, SSHDError

__all__ = ["LocalSSHD", "SSHDError"]
