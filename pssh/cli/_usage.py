"""The command line's grammar: ``pssh [options] COMMAND``, ``pssh put|get [options] A B``.

Everything here runs before any connection is made, and every mistake it finds is a
:class:`~pssh.cli._hosts.UsageError`: one line, exit status 2. The first word picks
the action (``put``, ``get``, else a command to run); a command named ``put`` or ``get``
goes after ``--``. Options end at the command's first word, as for ``ssh``, so
``pssh -H web1 ls -l`` runs ``ls -l``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ._hosts import Target, UsageError, exclude, parse_targets, read_host_file

__all__ = ["Plan", "parse"]

COPY_ACTIONS = ("put", "get")
ENGINES = {"native": "native", "libssh2": "native", "libssh": "ssh", "ssh": "ssh"}
POLICIES = ("strict", "accept-new", "accept-unknown", "warn", "off")
DEFAULT_SSH_CONFIG = "\0default"  # --ssh-config without a path: OpenSSH's usual files


@dataclass
class Plan:
    """What the command line asks for, checked."""

    action: str  # "run", "put" or "get"
    targets: list[Target]
    command: str = ""
    source: str = ""
    destination: str = ""
    user: str | None = None
    parallelism: int = 100
    timeout: float | None = None
    key_file: str | None = None
    ssh_options: list[str] = field(default_factory=list)
    sudo: bool = False
    ssh_config: str | None = None
    host_key_policy: str | None = None
    engine: str = "native"
    processes: int | None = None
    gather: bool = False
    json: bool = False
    out_dir: str | None = None
    err_dir: str | None = None
    quiet: bool = False
    recursive: bool = False
    scp: bool = False


class _Parser(argparse.ArgumentParser):
    """argparse, with every error as one :class:`UsageError` line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see pssh --help)")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, not {text!r}")
    return value


def _common_options(parser: argparse.ArgumentParser) -> None:
    _host_options(parser.add_argument_group("hosts"))
    _connection_options(parser.add_argument_group("connection"))
    _output_options(parser.add_argument_group("output"))
    parser.add_argument("--help", action="help", help="show this help and exit")


def _host_options(hosts: Any) -> None:
    hosts.add_argument("-H", "--hosts", dest="hosts", action="append", default=[],
                       metavar="HOSTS", help="hosts as a node set: web[01-20],db[1-3], "
                       "user@host:port entries; repeatable")
    hosts.add_argument("-h", "--host-file", dest="host_files", action="append", default=[],
                       metavar="FILE", help="read hosts from FILE, one entry a line, "
                       "# comments; repeatable")
    hosts.add_argument("-x", "--exclude", action="append", default=[], metavar="HOSTS",
                       help="leave out these hosts (a node set); repeatable")


def _connection_options(ssh: Any) -> None:
    ssh.add_argument("-l", "--user", help="log in as USER (default: the local user)")
    ssh.add_argument("-p", "--parallel", dest="parallelism", type=_positive_int,
                     default=100, metavar="N", help="hosts handled at once (default: 100)")
    ssh.add_argument("-t", "--timeout", type=_seconds, metavar="SECONDS",
                     help="time limit for each host, connecting included (default: none)")
    ssh.add_argument("-i", "--identity", dest="key_file", metavar="KEYFILE",
                     help="private key file to authenticate with")
    ssh.add_argument("-O", "--option", dest="ssh_options", action="append", default=[],
                     metavar="KEY=VALUE", help="an ssh -o option: Port=2222, User=, "
                     "IdentityFile=, ConnectTimeout=, ProxyJump=, ...; repeatable")
    ssh.add_argument("--ssh-config", metavar="PATH", help="read OpenSSH client "
                     "configuration (--ssh-config alone: ~/.ssh/config and "
                     "/etc/ssh/ssh_config; --ssh-config=PATH: that file)")
    ssh.add_argument("--host-key-policy", choices=POLICIES,
                     help="what to do with host keys not on file or changed")
    ssh.add_argument("--engine", choices=sorted(ENGINES), default="libssh2",
                     help="SSH library: libssh2 (default) or libssh")
    ssh.add_argument("--processes", type=_positive_int, metavar="N",
                     help="spread the hosts over N worker processes, to use N cores "
                     "(libssh2 engine; default: this process alone)")


def _output_options(out: Any) -> None:
    out.add_argument("-b", "--gather", action="store_true",
                     help="show identical outputs once, under their folded host set")
    out.add_argument("--json", action="store_true",
                     help="one JSON object per host per line (see pssh(1))")
    out.add_argument("-o", "--outdir", dest="out_dir", metavar="DIR",
                     help="write each host's stdout to DIR/HOST instead of showing it")
    out.add_argument("-e", "--errdir", dest="err_dir", metavar="DIR",
                     help="write each host's stderr to DIR/HOST instead of showing it")
    out.add_argument("-q", "--quiet", action="store_true", help="no summary at the end")


def _run_parser() -> _Parser:
    parser = _Parser(prog="pssh", add_help=False, allow_abbrev=False,
                     usage="pssh [options] COMMAND...\n       pssh put [options] LOCAL "
                           "REMOTE\n       pssh get [options] REMOTE LOCALDIR",
                     description="Run COMMAND on many hosts at once over SSH.",
                     epilog="Exit status: 0 all ok; 2 bad usage; 3 some host timed out; "
                            "4 some host could not be reached or authenticated (or its "
                            "session failed); 5 some command exited non-zero or copy "
                            "failed; 130 interrupted.")
    _common_options(parser)
    parser.add_argument("--sudo", action="store_true", help="run COMMAND through sudo")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    return parser


def _copy_parser(action: str) -> _Parser:
    names = ("LOCAL", "REMOTE") if action == "put" else ("REMOTE", "LOCALDIR")
    verb = "Copy LOCAL to REMOTE on" if action == "put" else \
        "Copy REMOTE from every host into LOCALDIR (as NAME_HOST) from"
    parser = _Parser(prog=f"pssh {action}", add_help=False, allow_abbrev=False,
                     description=f"{verb} many hosts at once (SFTP; --scp for SCP).")
    _common_options(parser)
    parser.add_argument("-r", "--recursive", action="store_true", help="copy directories")
    parser.add_argument("--scp", action="store_true", help="copy with SCP instead of SFTP")
    parser.add_argument("source", metavar=names[0])
    parser.add_argument("destination", metavar=names[1])
    return parser


def _bare_ssh_config(argv: list[str]) -> list[str]:
    """``--ssh-config`` given without ``=PATH`` takes no value: it must not swallow the
    command's first word."""
    return [f"--ssh-config={DEFAULT_SSH_CONFIG}" if arg == "--ssh-config" else arg
            for arg in argv]


def parse(argv: list[str]) -> Plan:
    """The checked :class:`Plan` for ``argv`` (without the program name).

    :raises UsageError: anything wrong, in one line.
    """
    action = argv[0] if argv and argv[0] in COPY_ACTIONS else "run"
    parser = _run_parser() if action == "run" else _copy_parser(action)
    args = parser.parse_args(_bare_ssh_config(argv[1:] if action != "run" else argv))
    plan = Plan(action=action, targets=_targets(args), user=args.user,
                parallelism=args.parallelism, timeout=args.timeout,
                key_file=_key_file(args.key_file), ssh_options=args.ssh_options,
                ssh_config=args.ssh_config, host_key_policy=args.host_key_policy,
                engine=ENGINES[args.engine], processes=args.processes,
                gather=args.gather, json=args.json,
                out_dir=args.out_dir, err_dir=args.err_dir, quiet=args.quiet)
    if args.gather and args.json:
        raise UsageError("--gather and --json do not go together; pick one")
    if action == "run":
        words = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not words:
            raise UsageError("no command given (see pssh --help)")
        plan.command, plan.sudo = " ".join(words), args.sudo
    else:
        plan.source, plan.destination = args.source, args.destination
        plan.recursive, plan.scp = args.recursive, args.scp
        if plan.gather or plan.out_dir or plan.err_dir:
            raise UsageError(f"pssh {action} shows no command output: -b, -o and -e "
                             f"are for commands")
    return plan


def _targets(args: argparse.Namespace) -> list[Target]:
    targets = [target for text in args.hosts for target in parse_targets(text, "-H")]
    for path in args.host_files:
        targets.extend(read_host_file(path))
    if not args.hosts and not args.host_files:
        raise UsageError("no hosts given: use -H HOSTS or -h FILE")
    kept = exclude(targets, args.exclude)
    if not kept:
        raise UsageError("the host list is empty" + (" after -x" if targets else ""))
    return kept


def _key_file(path: str | None) -> str | None:
    if path is None:
        return None
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded):
        raise UsageError(f"key file {path!r} does not exist")
    if not os.access(expanded, os.R_OK):
        raise UsageError(f"key file {path!r} is not readable")
    return expanded
