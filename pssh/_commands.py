"""How a command line is wrapped before it is sent to the remote host.

The remote sshd runs the string we send through the account's login shell, so wrapping
for ``sudo``, another ``user`` or a chosen ``shell`` means quoting the user's command as
one word for that outer shell. ``shlex.quote`` is exact for POSIX shells: a command with
single quotes, backticks or ``$VAR`` arrives unchanged (parallel-ssh did not escape
single quotes).
"""

from __future__ import annotations

import shlex

__all__ = ["wrap_command", "format_host_command"]


def wrap_command(command: str, sudo: bool = False, user: str | None = None,
                 shell: str | None = None) -> str:
    """Return the command line to execute remotely.

    :param command: the command as the user wrote it.
    :param sudo: run it with ``sudo -S``.
    :param user: run it as this user via ``sudo -u``; implies ``sudo``.
    :param shell: the shell to run it with, for example ``'bash -c'``; defaults to
        ``'$SHELL -c'`` when wrapping for sudo, and to no wrapping otherwise.
    """
    if not sudo and user is None:
        return f"{shell} {shlex.quote(command)}" if shell else command
    runner = "sudo -S" if user is None else f"sudo -u {shlex.quote(user)} -S"
    return f"{runner} {shell or '$SHELL -c'} {shlex.quote(command)}"


def format_host_command(command: str, host_arg: object, position: int,
                        argument: str = "host_args", what: str = "the command",
                        host: str | None = None) -> str:
    """Fill ``command``'s ``%`` placeholders with one host's ``host_args`` entry.

    A tuple fills positional placeholders, a dict named ones, anything else one ``%s``.
    ``argument`` and ``what`` name the entry and the template in the error (for copies:
    ``copy_args`` and a path).

    :param host: the host the entry is for, named in the error.
    :raises HostArgumentKeyError: a dict entry lacks a placeholder's key (also a
        :class:`KeyError`, as in parallel-ssh).
    :raises HostArgumentError: the entry does not fit the placeholders otherwise.
    """
    from .exceptions import HostArgumentError, HostArgumentKeyError

    try:
        if isinstance(host_arg, (tuple, dict)):
            return command % host_arg
        return command % (host_arg,)
    except KeyError as exc:
        key = exc.args[0] if exc.args else None
        raise HostArgumentKeyError(
            f"{argument}[{position}]{_for(host)} has no key {key!r}, which {what} "
            f"{command!r} uses; add it to that entry", key=key, host=host) from exc
    except (TypeError, ValueError) as exc:
        raise HostArgumentError(
            f"{argument}[{position}] = {host_arg!r}{_for(host)} does not fit {what} "
            f"{command!r}: {exc}", host=host) from exc


def _for(host: str | None) -> str:
    return "" if host is None else f" (for host {host})"
