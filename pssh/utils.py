"""Logging helpers.

pssh logs on the ``pssh`` logger tree and never configures logging on import. Remote
output goes to ``pssh.host_logger`` as ``[host]<TAB>line`` when that logger is enabled.
"""

from __future__ import annotations

import logging

__all__ = ["logger", "host_logger", "enable_logger", "enable_host_logger",
           "enable_debug_logger"]

logger = logging.getLogger("pssh")
host_logger = logging.getLogger("pssh.host_logger")

_FORMAT = "%(asctime)s %(levelname)-8s %(name)s %(message)s"


def enable_logger(_logger: logging.Logger, level: int = logging.INFO) -> None:
    """Send ``_logger``'s records at ``level`` and above to stderr (once)."""
    if not any(isinstance(handler, logging.StreamHandler) for handler in _logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        _logger.addHandler(handler)
    _logger.setLevel(level)


def enable_host_logger() -> None:
    """Print remote output as ``[host]<TAB>line`` to stdout while it is read or consumed."""
    if not any(isinstance(handler, logging.StreamHandler) for handler in host_logger.handlers):
        handler = logging.StreamHandler(_Stdout())
        handler.setFormatter(logging.Formatter("%(message)s"))
        host_logger.addHandler(handler)
    host_logger.setLevel(logging.INFO)
    host_logger.propagate = False


def enable_debug_logger() -> None:
    """Log pssh's debug messages to stderr."""
    enable_logger(logger, logging.DEBUG)


class _Stdout:
    """Writes to whatever ``sys.stdout`` is at the time (pytest and users may swap it)."""

    def write(self, text: str) -> int:
        import sys
        return sys.stdout.write(text)

    def flush(self) -> None:
        import sys
        sys.stdout.flush()
