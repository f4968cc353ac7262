"""Messages between a sharded client and one of its workers, over a socket pair.

A frame is a 4-byte big-endian length and a pickle. Both sides hold a gevent socket,
so waiting for a frame or for room to send one parks only the calling greenlet.
Pickle is safe here: both ends are this library, in processes the caller started.

An exception crosses as itself when it pickles (pssh's errors do, with their
``host``, ``port`` and ``reason``); one that does not is replaced by an
:class:`~pssh.exceptions.SSHError` carrying its text, so one odd error never loses a
whole batch.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

from gevent.lock import Semaphore

from ...exceptions import SSHError

__all__ = ["Wire", "portable"]

_HEADER = struct.Struct("!I")
_RECEIVE_SIZE = 256 * 1024


class Wire:
    """Framed pickles over one end of a socket pair (a gevent socket).

    Any number of greenlets may :meth:`send`; one greenlet :meth:`receive`\\ s.
    """

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._sending = Semaphore()
        self._received = bytearray()

    def __repr__(self) -> str:
        return f"<Wire fd={self.sock.fileno()}>"

    def send(self, message: object) -> None:
        """Send one message, whole.

        :raises OSError: the other end has gone.
        """
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        with self._sending:
            self.sock.sendall(_HEADER.pack(len(data)) + data)

    def receive(self) -> Any:
        """The next message, or ``None`` once the other end has closed.

        :raises OSError: the connection broke.
        """
        header = self._take(_HEADER.size)
        if header is None:
            return None
        body = self._take(_HEADER.unpack(header)[0])
        if body is None:
            return None
        return pickle.loads(body)

    def _take(self, size: int) -> bytes | None:
        received = self._received
        while len(received) < size:
            chunk = self.sock.recv(max(_RECEIVE_SIZE, size - len(received)))
            if not chunk:
                return None
            received += chunk
        data = bytes(received[:size])
        del received[:size]
        return data

    def close(self) -> None:
        self.sock.close()


def portable(error: BaseException | None) -> BaseException | None:
    """``error`` if it survives pickling, else an ``SSHError`` with its text and host."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error, pickle.HIGHEST_PROTOCOL))
    except Exception:
        host = getattr(error, "host", None)
        return SSHError(f"{type(error).__name__}: {error}",
                        host=host if isinstance(host, str) else None)
    return error
