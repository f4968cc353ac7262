"""Ours on its second engine: pssh.clients.ssh (libssh, through ssh-python)."""

import _pssh_api

from pssh.clients.ssh import ParallelSSHClient

if __name__ == "__main__":
    _pssh_api.main("pssh", ParallelSSHClient)
