"""The published parallel-ssh, from its own venv (its package is also called pssh)."""

import _pssh_api

if __name__ == "__main__":
    _pssh_api.main("parallel-ssh")
