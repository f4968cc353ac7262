"""Interactive shells: one login shell per channel, fed commands through its stdin.

A shell's output is an ordinary :class:`~pssh.output.HostOutput`, read the same lazy
way as a command's. Closing the shell sends EOF on its stdin, so the shell exits after
the commands it was given, and then waits for the channel to close; ``exit_code`` is
the shell's exit status, which is that of the last command it ran.
"""

from __future__ import annotations

from typing import Any

from ..._deadline import deadline_after
from ...exceptions import ShellError
from ...output import HostOutput
from ._seams import ChannelClient, where

__all__ = ["InteractiveShell"]


class InteractiveShell:
    """A shell on one host. Use it as a context manager: leaving the block closes the
    shell and waits for its commands to finish; then read ``stdout`` and ``exit_code``.

    .. code-block:: python

        with client.open_shell() as shell:
            shell.run('cd /tmp')
            shell.run('pwd')
        print(list(shell.stdout), shell.exit_code)

    :param channel: a channel from the client's ``open_session()``.
    :param client: the client that opened ``channel``; kept as ``client``.
    :param encoding: how commands are encoded and output lines decoded.
    :param read_timeout: seconds one iteration of the output may take.
    """

    _EOL = b"\n"

    def __init__(self, channel: Any, client: ChannelClient, encoding: str = "utf-8",
                 read_timeout: float | None = None) -> None:
        reader, stdin = client.start_shell(channel, deadline_after(client.timeout))
        self.client = client
        self._encoding = encoding
        self._closed = False
        self.output = HostOutput(client.host, channel, stdin, client, alias=client.alias,
                                 encoding=encoding, read_timeout=read_timeout,
                                 buffers=reader.host_buffers())

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<InteractiveShell on {where(self.client)} {state}>"

    def __enter__(self) -> InteractiveShell:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stdout(self) -> Any:
        """The shell's stdout lines (``output.stdout``)."""
        return self.output.stdout

    @property
    def stderr(self) -> Any:
        """The shell's stderr lines (``output.stderr``)."""
        return self.output.stderr

    @property
    def stdin(self) -> Any:
        """The shell's stdin (``output.stdin``)."""
        return self.output.stdin

    @property
    def exit_code(self) -> int | None:
        """The shell's exit status once it has ended, else ``None``."""
        return self.output.exit_code

    def run(self, cmd: str) -> None:
        """Send ``cmd`` and a newline to the shell; returns once it is sent, not when the
        command ends.

        :raises ShellError: the shell was closed.
        """
        if self._closed:
            raise ShellError(f"the shell on {where(self.client)} is closed; open a new "
                             f"one to run {cmd!r}", host=self.client.host,
                             port=self.client.port)
        self.output.stdin.write(cmd.encode(self._encoding) + self._EOL)

    def close(self, timeout: float | None = None) -> InteractiveShell:
        """Send EOF so the shell exits after its commands, and wait until it has.

        Output stays readable afterwards. Closing again only waits again.

        :param timeout: seconds to wait; ``None`` for no limit.
        :raises Timeout: the shell's commands were still running after ``timeout``.
        """
        if not self._closed:
            self.output.stdin.close()
            self._closed = True
        self.client.wait_finished(self.output, timeout=timeout)
        return self
