"""The ``pssh`` command line: run commands and copy files on many hosts at once.

See doc/cli.rst (or ``pssh --help``) for its options, output modes and exit statuses.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
