"""How a command line is wrapped before it is sent to the remote host.

The remote sshd runs the string we send through the account's login shell, so wrapping
for ``sudo``, another ``user`` or a chosen ``shell`` means quoting the user's command as
one word for that outer shell. ``shlex.quote`` is exact for POSIX shells: a command with
single quotes, backticks or ``$VAR`` arrives unchanged (parallel-ssh did not escape
single quotes).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["wrap_command", "format_host_command", "host_commands", "per_host_entries"]


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


def per_host_entries(values: Iterable[Any] | None, hosts: Sequence[str],
                     argument: str) -> list[Any] | None:
    """``values`` (``host_args``, ``copy_args``) as a list with an entry for each of
    ``hosts``, in host order; ``None`` when not given.

    :raises HostArgumentError: there are fewer entries than hosts.
    """
    from .exceptions import HostArgumentError

    if values is None:
        return None
    values = list(values)
    if len(values) < len(hosts):
        raise HostArgumentError(f"{argument} has {len(values)} entries for {len(hosts)} "
                                f"hosts; give one entry per host")
    return values


def host_commands(command: str, host_args: Iterable[Any] | None,
                  hosts: Sequence[str]) -> list[str]:
    """Each host's command line: ``command`` filled with its ``host_args`` entry, or
    ``command`` itself for every host when there are no ``host_args``.

    :raises HostArgumentError: too few entries, or one that does not fit ``command``.
    """
    entries = per_host_entries(host_args, hosts, "host_args")
    if entries is None:
        return [command] * len(hosts)
    return [format_host_command(command, entries[position], position, host=host)
            for position, host in enumerate(hosts)]


def _for(host: str | None) -> str:
    return "" if host is None else f" (for host {host})"
