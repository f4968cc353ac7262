"""Defaults shared by the clients (parallel-ssh's values)."""

DEFAULT_RETRIES = 3
"""Connection attempts retried after the first one fails."""

RETRY_DELAY = 5
"""Seconds between connection attempts."""

DEFAULT_BUFFER_LIMIT = 32 * 1024 * 1024
"""Bytes of complete, unread lines one stream of one host may hold before pssh stops
reading that stream (the remote command then waits; nothing is dropped)."""

SPOOL_CHUNK = 1024 * 1024
"""Bytes written to, or read back from, a stream's temporary file at a time, once its
unread output has passed the buffer limit."""

DEFAULT_HANDSHAKE_LIMIT = 8
"""Connections one parallel client has between TCP connect and the end of authentication
at once, per destination (address and port): below the 10 at which OpenSSH's sshd, by
default (``MaxStartups 10:30:100``), starts dropping new connections."""
