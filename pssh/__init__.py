"""pssh: run SSH commands and copy files on many hosts at once, on libssh2 and gevent.

Importing pssh has no side effects: no monkey-patching, no logging configuration, no
change to gevent's hub. The clients live in :mod:`pssh.clients`.
"""

import logging

from ._version import __version__

logger = logging.getLogger("pssh")
"""The root of pssh's loggers (parallel-ssh's name); it has a ``NullHandler`` only."""
host_logger = logging.getLogger("pssh.host_logger")
"""Where remote output is logged as ``[host]<TAB>line`` once enabled (see
:func:`pssh.utils.enable_host_logger`)."""

logger.addHandler(logging.NullHandler())

__all__ = ["__version__", "logger", "host_logger"]
