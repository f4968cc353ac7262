"""parallel-ssh's ``pssh.clients.reader``: a byte buffer written and read by greenlets.

pssh itself needs no background greenlet per stream (output is pulled; see
``pssh.output``), so each stream's buffer is a :class:`pssh.output.LineBuffer`, which has
the same three members. :class:`ConcurrentRWBuffer` is that buffer without a limit, for
code that makes one itself.
"""

from __future__ import annotations

from ..output import LineBuffer

__all__ = ["ConcurrentRWBuffer"]


class ConcurrentRWBuffer(LineBuffer):
    """Bytes written by one greenlet and read by another, in order.

    - ``write(data)`` appends bytes;
    - ``read()`` returns every byte written and not read yet (``b""`` if none), never
      waiting;
    - ``eof`` is a flag (``eof.is_set()``, ``eof.set()``) the writer sets at the end.

    No call yields to other greenlets in between, so a read never sees half a write. It
    holds everything written until it is read (no limit, no temporary file).
    """

    def __init__(self) -> None:
        super().__init__(limit=None)
