"""Ours: pssh from the checkout (run.py puts the repository on PYTHONPATH)."""

import _pssh_api

if __name__ == "__main__":
    _pssh_api.main("pssh")
