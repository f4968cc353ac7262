"""pssh: run SSH commands and copy files on many hosts at once, on libssh2 and gevent.

Importing pssh has no side effects: no monkey-patching, no logging configuration, no
change to gevent's hub. The clients live in :mod:`pssh.clients`.
"""

import logging

from ._version import __version__

logging.getLogger("pssh").addHandler(logging.NullHandler())

__all__ = ["__version__"]
