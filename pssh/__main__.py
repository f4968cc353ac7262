"""``python -m pssh``: the ``pssh`` command line (see :mod:`pssh.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
