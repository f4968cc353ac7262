"""Defaults shared by the clients (parallel-ssh's values)."""

DEFAULT_RETRIES = 3
"""Connection attempts retried after the first one fails."""

RETRY_DELAY = 5
"""Seconds between connection attempts."""
