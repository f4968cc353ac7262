"""Host lists from the command line: ``-H`` node sets, ``-h`` files, ``-x`` exclusions.

Ranges and folding are ClusterShell's :class:`~ClusterShell.NodeSet.NodeSet`; this module
only peels what a node set does not know off each comma-separated entry: a ``user@``
prefix and a ``:port`` suffix (``root@web[1-4]:2222``). Entries keep the order they were
given in, and a host named twice with the same user and port counts once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ClusterShell.NodeSet import NodeSet, NodeSetException

__all__ = ["Target", "UsageError", "fold", "parse_targets", "read_host_file", "exclude"]

_PORT = re.compile(r"^(?P<hosts>.*?):(?P<port>\d+)$")


class UsageError(Exception):
    """The command line is wrong: a one-line message, exit status 2, nothing connected."""


@dataclass(frozen=True)
class Target:
    """One host to reach, with the user and port its entry named (``None``: the
    defaults from the options)."""

    host: str
    user: str | None = None
    port: int | None = None

    def entry(self) -> str:
        """The target written back as an entry: ``[user@]host[:port]``."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{self.host}{port}"


def split_entries(text: str) -> list[str]:
    """``text`` cut at the commas that are not inside ``[...]`` ranges."""
    entries, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            entries.append(text[start:index])
            start = index + 1
    entries.append(text[start:])
    return [entry.strip() for entry in entries]


def _expand(pattern: str, origin: str) -> list[str]:
    if pattern.count(":") > 1:  # an IPv6 address: no ranges in those
        return [pattern]
    try:
        return list(NodeSet(pattern))
    except NodeSetException as exc:
        raise UsageError(f"bad host range {pattern!r} in {origin}: {exc}") from None


def parse_entry(entry: str, origin: str) -> list[Target]:
    """The targets of one entry, ``[user@]nodeset[:port]``."""
    if not entry:
        raise UsageError(f"empty host entry in {origin}")
    user, at, rest = entry.rpartition("@")
    if at and not user:
        raise UsageError(f"node groups ({entry!r} in {origin}) are not supported; "
                         f"name the hosts")
    port = None
    match = _PORT.match(rest) if rest.count(":") == 1 else None
    if match:
        rest, port = match["hosts"], int(match["port"])
        if not 0 < port < 65536:
            raise UsageError(f"bad port {port} in {entry!r} ({origin})")
    hosts = _expand(rest, origin)
    if not hosts:
        raise UsageError(f"host entry {entry!r} in {origin} names no host")
    return [Target(host, user or None, port) for host in hosts]


def parse_targets(text: str, origin: str) -> list[Target]:
    """The targets of a ``-H`` value (or a host file line): entries cut at commas."""
    return [target for entry in split_entries(text) for target in parse_entry(entry, origin)]


def read_host_file(path: str) -> list[Target]:
    """The targets in a host file: one entry (or node set) a line, ``#`` comments."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read host file {path!r}: {exc.strerror}") from None
    targets = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if text:
            targets.extend(parse_targets(text, f"{path}:{number}"))
    return targets


def exclude(targets: list[Target], patterns: list[str]) -> list[Target]:
    """``targets`` without the hosts the ``-x`` node sets name; duplicates dropped."""
    excluded: set[str] = set()
    for text in patterns:
        excluded.update(target.host for target in parse_targets(text, "-x"))
    seen: set[Target] = set()
    kept = []
    for target in targets:
        if target.host not in excluded and target not in seen:
            seen.add(target)
            kept.append(target)
    return kept


def fold(names: list[str]) -> str:
    """``names`` folded into one node set: ``web[01-03],db1``."""
    try:
        return str(NodeSet.fromlist(names))
    except NodeSetException:  # a name a node set cannot hold (IPv6): list them
        return ",".join(names)
