"""Kept for parallel-ssh's import path: ``from pssh.clients.common import logger``.

pssh's engines share their code through :mod:`pssh.clients.base`; this module only names
the clients' logger.
"""

import logging

__all__ = ["logger"]

logger = logging.getLogger("pssh.clients")
