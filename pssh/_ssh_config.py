"""Reading OpenSSH client configuration (``ssh_config(5)``) for one host at a time.

Theory of operation
-------------------
OpenSSH resolves a host in passes over its configuration files. Lines before any
``Host``/``Match`` apply to every host; each ``Host`` or ``Match`` line starts a block
that applies while its condition holds. For every keyword the *first* value obtained
wins (``IdentityFile`` and ``CertificateFile`` accumulate instead). After the first pass
the target name becomes ``HostName`` (its ``%h`` expanded, lower-cased); if any ``Match
final`` line was seen, a second pass runs in which ``Host`` lines match that name and
``Match final``/``canonical`` hold. ``Include`` splices files in place (globs and ``~``
allowed; a relative path is under ``~/.ssh``, as for a user configuration); an
``Include`` inside a block that does not apply includes nothing that can apply.

:class:`SSHConfig` parses its files once and answers :meth:`SSHConfig.lookup` for any
number of hosts with no I/O, in the layout ``ssh -G`` prints for the keywords pssh maps
(see ``REPORTED``), so the two can be compared line for line. ``ssh -G`` itself
(:func:`lookup_with_ssh`) gives OpenSSH's own answer, but costs a process per host,
about 9 ms each here, 9 s for 1,000 hosts; the pure reader takes tens of microseconds
per host, so pssh uses it and keeps ``ssh -G`` as the oracle the tests compare with.

``Match exec`` runs a shell command from the file: a library that runs commands because
a configuration file it was asked to *read* says so surprises its caller, and the command
would block the event loop. It is evaluated only with ``allow_exec=True``; otherwise the
criterion does not match and the first such line is logged.

:mod:`pssh._ssh_settings` turns a lookup into pssh's settings.

Pure: this module imports neither an SSH library nor gevent.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Union

__all__ = ["DEFAULT_FILES", "REPORTED", "SSHConfig", "SSHConfigError", "lookup_many_with_ssh",
           "lookup_with_ssh"]

logger = logging.getLogger("pssh.ssh_config")

DEFAULT_FILES = ("~/.ssh/config", "/etc/ssh/ssh_config")
"""What ``ssh_config=True`` reads, in OpenSSH's order."""

MAX_INCLUDE_DEPTH = 16  # as OpenSSH's READCONF_MAX_DEPTH

MULTI = frozenset({"identityfile", "certificatefile"})
"""Keywords whose values accumulate over the blocks that apply."""

HONOURED = frozenset({
    "hostname", "user", "port", "identityfile", "identitiesonly", "identityagent",
    "certificatefile", "proxyjump", "connecttimeout", "serveraliveinterval",
    "serveralivecountmax", "compression", "addressfamily", "userknownhostsfile",
    "globalknownhostsfile", "stricthostkeychecking", "passwordauthentication",
    "kbdinteractiveauthentication", "batchmode"})
"""The keywords pssh maps onto its settings."""

REPORTED = HONOURED | {"host", "proxycommand"}
"""What :meth:`SSHConfig.lookup` reports, as ``ssh -G`` prints it."""

_OFF_VALUES = frozenset({"no", "none", "false", "off"})
_DEFAULT_IDENTITIES = tuple(f"~/.ssh/{name}" for name in (
    "id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"))
_FLAGS = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}
_CHOICES = {
    "identitiesonly": _FLAGS, "batchmode": _FLAGS, "passwordauthentication": _FLAGS,
    "kbdinteractiveauthentication": _FLAGS, "compression": {"yes": "yes", "no": "no"},
    "addressfamily": {"any": "any", "inet": "inet", "inet6": "inet6"},
    "stricthostkeychecking": {"yes": "true", "true": "true", "no": "false",
                              "false": "false", "off": "false", "ask": "ask",
                              "accept-new": "accept-new"}}
_DEFAULTS = {
    "identitiesonly": "no", "batchmode": "no", "passwordauthentication": "yes",
    "kbdinteractiveauthentication": "yes", "compression": "no", "addressfamily": "any",
    "stricthostkeychecking": "ask", "connecttimeout": "none", "serveraliveinterval": "0",
    "serveralivecountmax": "3",
    "globalknownhostsfile": "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2",
    "userknownhostsfile": "~/.ssh/known_hosts ~/.ssh/known_hosts2"}
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SSHConfigError(ValueError):
    """A configuration file pssh was asked to read has a line OpenSSH would refuse.

    ``path`` and ``line`` name it (``line`` is 0 when the file as a whole is at fault).
    """

    def __init__(self, message: str, path: str, line: int = 0) -> None:
        super().__init__(f"{path} line {line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class _Option:
    keyword: str
    args: tuple[str, ...]
    path: str
    line: int


@dataclass(frozen=True)
class _Block:
    """A ``Host`` or ``Match`` line: what follows applies while it holds."""

    kind: str
    args: tuple[str, ...]
    path: str
    line: int


@dataclass(frozen=True)
class _Include:
    files: tuple[tuple[_Entry, ...], ...]


_Entry = Union[_Option, _Block, _Include]


# -- parsing ---------------------------------------------------------------------------

def _split_args(text: str, path: str, line: int) -> list[str]:
    """Words as OpenSSH's ``argv_split`` makes them: quotes group, a backslash escapes a
    quote, a backslash or (outside quotes) a space, and ``#`` starting a word ends the
    line."""
    args: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] == "#":
            return args
        word: list[str] = []
        quote = ""
        while i < n:
            char = text[i]
            if char == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or (
                    not quote and text[i + 1] == " ")):
                i += 1
                word.append(text[i])
            elif not quote and char in " \t":
                break
            elif not quote and char in "'\"":
                quote = char
            elif quote and char == quote:
                quote = ""
            else:
                word.append(char)
            i += 1
        if quote:
            raise SSHConfigError("unterminated quote", path, line)
        args.append("".join(word))


_KEYWORD = re.compile(r"\s*([^\s=]+)\s*(?:=\s*)?(.*)")


def _parse_line(text: str, path: str, line: int) -> tuple[str, list[str]] | None:
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    found = _KEYWORD.match(stripped)
    assert found is not None
    keyword, rest = found.group(1).lower(), found.group(2)
    args = _split_args(rest, path, line)
    if not args:
        raise SSHConfigError(f'no argument after keyword "{keyword}"', path, line)
    return keyword, args


def _include_paths(pattern: str, including: str) -> list[str]:
    path = os.path.expanduser(pattern)
    if not os.path.isabs(path):
        path = os.path.join(os.path.expanduser("~/.ssh"), path)
    return sorted(glob.glob(path))


def _parse_file(path: str, depth: int = 0) -> tuple[_Entry, ...]:
    """The entries of ``path``, ``Include`` files parsed in place."""
    if depth > MAX_INCLUDE_DEPTH:
        raise SSHConfigError(f"Include nested more than {MAX_INCLUDE_DEPTH} deep", path)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            lines = file.read().splitlines()
    except OSError as exc:
        raise SSHConfigError(f"cannot read it: {exc.strerror or exc}", path) from exc
    entries: list[_Entry] = []
    for number, text in enumerate(lines, 1):
        parsed = _parse_line(text, path, number)
        if parsed is None:
            continue
        keyword, args = parsed
        if keyword in ("host", "match"):
            entries.append(_Block(keyword, tuple(args), path, number))
        elif keyword == "include":
            files = [included for pattern in args
                     for included in _include_paths(pattern, path)]
            entries.append(_Include(tuple(_parse_file(included, depth + 1)
                                          for included in files)))
        else:
            entries.append(_Option(keyword, tuple(args), path, number))
    return tuple(entries)


# -- matching --------------------------------------------------------------------------

def _pattern_list_matches(name: str, patterns: str, lower: bool) -> bool:
    """OpenSSH's ``match_pattern_list``: a negated pattern that matches fails the list,
    else any pattern that matches passes it."""
    if lower:
        name = name.lower()
    found = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if lower:
            pattern = pattern.lower()
        if fnmatchcase(name, _literal_brackets(pattern)):
            if negated:
                return False
            found = True
    return found


def _literal_brackets(pattern: str) -> str:
    # OpenSSH's patterns know only * and ?; fnmatch would read [...] as a class.
    return pattern.replace("[", "[[]")


def _host_line_matches(name: str, patterns: Sequence[str]) -> bool:
    """A ``Host`` line: each word one pattern (a negated one vetoes), case as given."""
    found = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if fnmatchcase(name, _literal_brackets(pattern)):
            if negated:
                return False
            found = True
    return found


@dataclass
class _Pass:
    """One pass over the files for one host: what was set, and what it matches with."""

    host: str  # what Host lines match: the argument, or in the final pass the HostName
    original: str
    final: bool
    options: dict[str, list[tuple[str, ...]]]
    seen: dict[str, tuple[str, ...]]
    local_user: str
    allow_exec: bool
    wants_final: bool = False

    def current_host(self) -> str:
        """What ``Match host`` compares: HostName as set so far (``%h`` expanded)."""
        hostname = self.options.get("hostname")
        if self.final:
            return self.host
        if hostname:
            return _expand_hostname(hostname[0][0], self.original)
        return self.original

    def current(self, keyword: str, default: str) -> str:
        values = self.options.get(keyword)
        return values[0][0] if values else default


def _expand_hostname(value: str, host: str) -> str:
    return re.sub(r"%([h%])", lambda m: host if m.group(1) == "h" else "%", value)


@dataclass
class SSHConfig:
    """The ssh_config files ``paths``, read once, in order (first match wins across them).

    A file that does not exist is skipped, as OpenSSH skips a missing ``~/.ssh/config``.

    :param allow_exec: evaluate ``Match exec`` by running its command (off by default:
        reading a file should not run commands from it).
    :raises SSHConfigError: a file cannot be read or has a line OpenSSH would refuse.
    """

    paths: tuple[str, ...]
    allow_exec: bool = False
    _entries: tuple[tuple[_Entry, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.paths = tuple(os.path.expanduser(os.fspath(path)) for path in self.paths)
        self._entries = tuple(_parse_file(path) for path in self.paths
                              if os.path.exists(path))

    def lookup(self, host: str, user: str | None = None, port: int | None = None,
               ) -> dict[str, list[str]]:
        """What ``ssh -G [-l user] [-p port] host`` prints for the ``REPORTED`` keywords:
        keyword -> its lines' values (several for ``identityfile``), plus ``_set``, the
        keywords a block that applied set (for ``pssh._ssh_settings``)."""
        first = self._pass(host, host, final=False, user=user, port=port)
        hostname = first.current_host().lower()
        if first.wants_final:
            final = self._pass(hostname, host, final=True, user=user, port=port,
                               options=first.options, seen=first.seen)
            if "hostname" in final.options and "hostname" not in first.options:
                hostname = final.current_host().lower()
            first = final
        return _report(first, host, hostname)

    def _pass(self, host: str, original: str, final: bool, user: str | None,
              port: int | None, options: dict[str, list[tuple[str, ...]]] | None = None,
              seen: dict[str, tuple[str, ...]] | None = None) -> _Pass:
        if options is None:
            options = {}
            if user is not None:
                options["user"] = [(user,)]
            if port is not None:
                options["port"] = [(str(port),)]
        state = _Pass(host, original, final, options, seen if seen is not None else {},
                      _local_user(), self.allow_exec)
        for entries in self._entries:
            self._walk(entries, state, active=True, never=False)
        return state

    def _walk(self, entries: Iterable[_Entry], state: _Pass, active: bool,
              never: bool) -> None:
        for entry in entries:
            if isinstance(entry, _Block):
                active = not never and _block_matches(entry, state)
            elif isinstance(entry, _Include):
                for included in entry.files:
                    self._walk(included, state, active, never or not active)
            elif active:
                _apply(entry, state)


def _block_matches(block: _Block, state: _Pass) -> bool:
    if block.kind == "host":
        return _host_line_matches(state.host, block.args)
    return _match_line(block, state)


def _match_line(block: _Block, state: _Pass) -> bool:
    """A ``Match`` line: every criterion must hold (``!`` negates one)."""
    args = list(block.args)
    result = True
    while args:
        criterion = args.pop(0).lower()
        negated = criterion.startswith("!")
        criterion = criterion[1:] if negated else criterion
        if criterion == "all":
            holds = True
        elif criterion in ("final", "canonical"):
            state.wants_final = state.wants_final or criterion == "final"
            holds = state.final
        else:
            if not args:
                raise SSHConfigError(f"Match {criterion} needs an argument", block.path,
                                     block.line)
            holds = _criterion_holds(criterion, args.pop(0), block, state)
        if holds == negated:
            result = False
    return result


def _criterion_holds(criterion: str, value: str, block: _Block, state: _Pass) -> bool:
    if criterion == "host":
        return _pattern_list_matches(state.current_host(), value, lower=True)
    if criterion == "originalhost":
        return _pattern_list_matches(state.original, value, lower=True)
    if criterion == "user":
        return _pattern_list_matches(state.current("user", state.local_user), value, False)
    if criterion == "localuser":
        return _pattern_list_matches(state.local_user, value, lower=False)
    if criterion == "exec":
        return _exec_holds(value, block, state)
    raise SSHConfigError(f"unsupported Match criterion {criterion!r}", block.path,
                         block.line)


_EXEC_LOGGED: set[tuple[str, int]] = set()


def _exec_holds(command: str, block: _Block, state: _Pass) -> bool:
    if not state.allow_exec:
        if (block.path, block.line) not in _EXEC_LOGGED:
            _EXEC_LOGGED.add((block.path, block.line))
            logger.warning("%s line %d: Match exec is not evaluated (it would run %r); "
                           "treated as not matching. Pass allow_exec=True to run it",
                           block.path, block.line, command)
        return False
    tokens = _tokens(state, state.current_host(), state.original)
    run = subprocess.run(_percent_expand(command, tokens), shell=True, check=False,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return run.returncode == 0


def _apply(option: _Option, state: _Pass) -> None:
    """First value wins; ``MULTI`` keywords accumulate; ProxyJump and ProxyCommand
    shut each other out, whichever comes first."""
    keyword, args = option.keyword, option.args
    state.seen.setdefault(keyword, args)
    if keyword in _CHOICES or keyword in ("connecttimeout", "serveraliveinterval",
                                          "serveralivecountmax", "port"):
        args = (_checked_value(keyword, args[0], option),)
    if keyword in MULTI:
        state.options.setdefault(keyword, []).append(args)
    elif keyword in ("proxyjump", "proxycommand"):
        if "proxyjump" not in state.options and "proxycommand" not in state.options:
            state.options[keyword] = [args]
    elif keyword not in state.options:
        state.options[keyword] = [args]


def _checked_value(keyword: str, value: str, option: _Option) -> str:
    """``value`` in the form ``ssh -G`` prints it; a value OpenSSH refuses raises."""
    choices = _CHOICES.get(keyword)
    if choices is not None:
        if value.lower() not in choices:
            raise SSHConfigError(f"unsupported option {value!r} for {keyword}", option.path,
                                 option.line)
        return choices[value.lower()]
    if keyword in ("connecttimeout", "serveraliveinterval"):
        seconds = _seconds(value)
        if seconds is None:
            raise SSHConfigError(f"invalid time value {value!r}", option.path, option.line)
        return str(seconds)
    if not value.isdigit() or (keyword == "port" and not 0 < int(value) < 65536):
        raise SSHConfigError(f"invalid {keyword} {value!r}", option.path, option.line)
    return str(int(value))


def _seconds(value: str) -> int | None:
    """OpenSSH's time format: ``90``, ``1m30s``, ``2h``."""
    parts = re.findall(r"(\d+)([smhdwSMHDW]?)", value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(int(number) * _TIME_UNITS[unit.lower()] for number, unit in parts)


# -- reporting -------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _local_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


@lru_cache(maxsize=1)
def _home() -> str:
    return pwd.getpwuid(os.getuid()).pw_dir


@lru_cache(maxsize=1)
def _local_host() -> str:
    return socket.gethostname()


def _tokens(state: _Pass, hostname: str, original: str) -> dict[str, str]:
    """The ``%`` tokens of ssh_config(5), as known at this point of a pass."""
    jump = state.current("proxyjump", "")
    return _token_map(hostname, original, state.current("user", state.local_user),
                      state.current("port", "22"), "" if jump == "none" else jump)


def _token_map(hostname: str, original: str, user: str, port: str, jump: str,
               ) -> dict[str, str]:
    local = _local_host()
    tokens = {"%": "%", "d": _home(), "h": hostname, "i": str(os.getuid()), "j": jump,
              "k": original, "L": local.split(".")[0], "l": local, "n": original,
              "p": port, "r": user, "u": _local_user()}
    tokens["C"] = hashlib.sha1("".join(tokens[key] for key in "lhprj").encode()).hexdigest()
    return tokens


def _percent_expand(value: str, tokens: dict[str, str]) -> str:
    def one(found: re.Match[str]) -> str:
        if found.group(1) not in tokens:
            raise ValueError(f"unknown token %{found.group(1)} in {value!r}")
        return tokens[found.group(1)]
    return re.sub(r"%(.)", one, value)


def _expand_path(value: str, tokens: dict[str, str]) -> str:
    if value.startswith("~"):
        value = _home() + value[1:] if value[:2] in ("~", "~/") else os.path.expanduser(value)
    return _percent_expand(value, tokens)


def _report(state: _Pass, host: str, hostname: str) -> dict[str, list[str]]:
    options = state.options
    tokens = _tokens(state, hostname, host)
    report: dict[str, list[str]] = {
        "host": [host], "hostname": [hostname],
        "user": [state.current("user", state.local_user)],
        "port": [state.current("port", "22")]}
    for keyword, default in _DEFAULTS.items():
        report[keyword] = [" ".join(options[keyword][0]) if keyword in options else default]
    known = options.get("userknownhostsfile", [tuple(_DEFAULTS["userknownhostsfile"].split())])
    report["userknownhostsfile"] = [" ".join(
        value if value == "none" else _expand_path(value, tokens) for value in known[0])]
    report["identityfile"] = [args[0] for args in options.get("identityfile", [])] or list(
        _DEFAULT_IDENTITIES)
    for keyword in ("certificatefile", "proxycommand"):
        if keyword in options:
            report[keyword] = [" ".join(args) for args in options[keyword]]
    if options.get("proxyjump", [("none",)])[0][0] != "none":
        report["proxyjump"] = [options["proxyjump"][0][0]]
    agent = options.get("identityagent")
    if agent:
        value = agent[0][0]
        special = value in ("none", "SSH_AUTH_SOCK") or value.startswith("$")
        report["identityagent"] = [value if special else _expand_path(value, tokens)]
    # A keyword set to "no" or "none" asks for nothing pssh would have to do.
    report["_set"] = sorted(keyword for keyword, args in state.seen.items()
                            if keyword in HONOURED or args[0].lower() not in _OFF_VALUES)
    return report


# -- ssh -G ----------------------------------------------------------------------------

def lookup_with_ssh(path: str | None, host: str, user: str | None = None,
                    port: int | None = None) -> dict[str, list[str]]:
    """OpenSSH's own answer: ``ssh -G`` for ``host`` with the file ``path`` (``None``:
    the user's and the system's files), cached per (file, host, user, port). The
    ``REPORTED`` keywords only, like :meth:`SSHConfig.lookup` (without ``_set``).

    Runs a process (about 9 ms): call it before connecting, never on a busy event loop.

    :raises FileNotFoundError: there is no ``ssh`` on ``PATH``.
    :raises SSHConfigError: ``ssh`` refused the file; its message is included.
    """
    return _ssh_g(path, host, user, port)


@lru_cache(maxsize=4096)
def _ssh_g(path: str | None, host: str, user: str | None,
           port: int | None) -> dict[str, list[str]]:
    ssh = shutil.which("ssh")
    if ssh is None:
        raise FileNotFoundError("no ssh program on PATH")
    command = [ssh, "-G"] + (["-F", path] if path else [])
    command += (["-l", user] if user else []) + (["-p", str(port)] if port else [])
    run = subprocess.run([*command, "--", host], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, check=False)
    if run.returncode != 0:
        raise SSHConfigError(f"ssh -G refused it: {run.stderr.strip()}", path or "ssh_config")
    report: dict[str, list[str]] = {}
    for text in run.stdout.splitlines():
        keyword, _, value = text.partition(" ")
        if keyword.lower() in REPORTED:
            report.setdefault(keyword.lower(), []).append(value)
    return report


def lookup_many_with_ssh(path: str | None, hosts: Sequence[str],
                         workers: int | None = None) -> list[dict[str, list[str]]]:
    """:func:`lookup_with_ssh` for many hosts, a few processes at a time (threads: each
    waits on its process, so the GIL is no limit)."""
    with ThreadPoolExecutor(max_workers=workers or (os.cpu_count() or 1) * 2) as pool:
        return list(pool.map(lambda host: lookup_with_ssh(path, host), hosts))
