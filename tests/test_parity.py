"""The drop-in promise, checked name by name against parallel-ssh 2.16's public API.

``data/parallel_ssh_2_16_api.json`` holds the facts: every public name of the published
parallel-ssh 2.16, with its signature as ``inspect.signature`` printed it. A parallel-ssh
call binds to ours when our parameters have the same names, order, kinds and defaults;
ours may add keyword-only parameters. Where we deliberately differ, the name is in
``DIFFERENCES`` with the reason, and doc/migrating.rst says the same to users.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import json
import logging
from pathlib import Path
from typing import Any

import pytest

TABLE = json.loads((Path(__file__).parent / "data" / "parallel_ssh_2_16_api.json").read_text())
MIGRATION_PAGE = Path(__file__).resolve().parent.parent / "doc" / "migrating.rst"

_BASE_COPIES = "file copies are methods of the native clients, not of the base classes"
_LIBSSH_COPIES = ("the libssh client has no file copies: asking for one raises "
                  "NotImplementedError naming pssh.clients.native")

DIFFERENCES: dict[str, str] = {
    "pssh.clients.base.parallel.BaseParallelSSHClient.copy_file": _BASE_COPIES,
    "pssh.clients.base.parallel.BaseParallelSSHClient.copy_remote_file": _BASE_COPIES,
    "pssh.clients.base.single.BaseSSHClient.copy_file": _BASE_COPIES,
    "pssh.clients.base.single.BaseSSHClient.copy_remote_file": _BASE_COPIES,
    "pssh.clients.base.single.BaseSSHClient.scp_send": _BASE_COPIES,
    "pssh.clients.base.single.BaseSSHClient.scp_recv": _BASE_COPIES,
    "pssh.clients.base.single.BaseSSHClient.sftp_put": _BASE_COPIES,
    "pssh.clients.base.single.BaseSSHClient.sftp_get": _BASE_COPIES,
    "pssh.clients.base.single.BaseSSHClient.mkdir": _BASE_COPIES,
    "pssh.clients.ssh.ParallelSSHClient.copy_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.ParallelSSHClient.copy_remote_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.parallel.ParallelSSHClient.copy_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.parallel.ParallelSSHClient.copy_remote_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.SSHClient.copy_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.SSHClient.copy_remote_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.SSHClient.scp_send": _LIBSSH_COPIES,
    "pssh.clients.ssh.SSHClient.scp_recv": _LIBSSH_COPIES,
    "pssh.clients.ssh.SSHClient.sftp_put": _LIBSSH_COPIES,
    "pssh.clients.ssh.SSHClient.sftp_get": _LIBSSH_COPIES,
    "pssh.clients.ssh.SSHClient.mkdir": _LIBSSH_COPIES,
    "pssh.clients.ssh.single.SSHClient.copy_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.single.SSHClient.copy_remote_file": _LIBSSH_COPIES,
    "pssh.clients.ssh.single.SSHClient.scp_send": _LIBSSH_COPIES,
    "pssh.clients.ssh.single.SSHClient.scp_recv": _LIBSSH_COPIES,
    "pssh.clients.ssh.single.SSHClient.sftp_put": _LIBSSH_COPIES,
    "pssh.clients.ssh.single.SSHClient.sftp_get": _LIBSSH_COPIES,
    "pssh.clients.ssh.single.SSHClient.mkdir": _LIBSSH_COPIES,
    "pssh.clients.base.parallel.BaseParallelSSHClient.run_command":
        "the base class takes the engines' parameter order (command, sudo, user, ...)",
    "pssh.config.HostConfig":
        "flag fields default to None (the client's value), since False is honoured",
}
"""Qualified name -> why ours differs. Each is also on the migration page."""

KNOWN_GAPS = frozenset({
})
"""Names not yet in ours (work in progress on the drop-in issue); each is expected to
fail, so one that starts to pass must leave this set."""

_CALLABLE_MEMBERS = ("method", "classmethod", "staticmethod")


def _entries() -> list[tuple[str, str, dict[str, Any]]]:
    """(qualified name, member or '', facts) for every name and class member."""
    found = []
    for module, names in TABLE["modules"].items():
        for name, facts in names.items():
            found.append((f"{module}.{name}", "", facts))
            for member, kind in facts.get("members", {}).items():
                found.append((f"{module}.{name}", member, {"kind": kind}))
    return found


def _theirs(text: str) -> inspect.Signature:
    namespace: dict[str, Any] = {}
    exec(f"def _signature{text}: pass", namespace)  # the table's own signature text
    return inspect.signature(namespace["_signature"])


def _unbindable(theirs: inspect.Signature, ours: inspect.Signature) -> str | None:
    """Why a call written for ``theirs`` might not bind to ``ours``, or ``None``."""
    kinds = inspect.Parameter
    ours_params = list(ours.parameters.values())
    ours_positional = [p for p in ours_params
                       if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    ours_kinds = {p.kind for p in ours_params}
    position = 0
    for param in theirs.parameters.values():
        if param.kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD):
            if param.kind not in ours_kinds:
                return f"no {param}"
            continue
        if param.kind == kinds.KEYWORD_ONLY:
            mine = ours.parameters.get(param.name)
        else:
            mine = ours_positional[position] if position < len(ours_positional) else None
            position += 1
        if mine is None or mine.name != param.name:
            return f"{param} is {mine} here"
        if param.kind != kinds.KEYWORD_ONLY and mine.kind != param.kind:
            return f"{param} is {mine.kind.description} here"
        if mine.default != param.default or (mine.default is None) != (param.default is None):
            return f"{param} defaults to {mine.default!r} here"
    extra = [p for p in ours_positional[position:] if p.default is inspect.Parameter.empty]
    if extra:
        return f"extra required parameters {extra}"
    return None


def _resolve(qualified: str) -> Any:
    module, _, name = qualified.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _check(qualified: str, member: str, facts: dict[str, Any]) -> None:
    kind = facts["kind"]
    if kind == "module":
        importlib.import_module(qualified)
        return
    obj = _resolve(qualified)
    if member:
        if kind == "slot":
            return  # set on instances; the behaviour tests read the ones scripts use
        assert hasattr(obj, member), f"{qualified} has no {member}"
        if kind.startswith(_CALLABLE_MEMBERS) and "(" in kind:
            reason = _unbindable(_theirs(kind[kind.index("("):]),
                                 inspect.signature(getattr(obj, member)))
            assert reason is None, reason
        return
    if kind == "alias":
        builtin_name = facts["of"].rpartition(".")[2]
        assert issubclass(obj, getattr(builtins, builtin_name))
    elif kind == "data" and facts.get("type") == "logging.Logger":
        assert isinstance(obj, logging.Logger)
    elif kind == "class" and facts.get("init"):
        reason = _unbindable(_theirs(facts["init"]), inspect.signature(obj))
        assert reason is None, reason
    elif kind == "func":
        reason = _unbindable(_theirs(facts["signature"]), inspect.signature(obj))
        assert reason is None, reason


@pytest.mark.parametrize("qualified, member, facts", [
    pytest.param(qualified, member, facts, id=f"{qualified}.{member}" if member else qualified)
    for qualified, member, facts in _entries()])
def test_parallel_ssh_name_binds_here(qualified, member, facts):
    name = f"{qualified}.{member}" if member else qualified
    if name in DIFFERENCES:
        pytest.skip(f"a documented difference: {DIFFERENCES[name]}")
    if name not in KNOWN_GAPS:
        _check(qualified, member, facts)
        return
    try:
        _check(qualified, member, facts)
    except (AssertionError, ImportError, AttributeError) as exc:
        pytest.xfail(f"not yet here (the drop-in issue): {exc}")
    pytest.fail(f"{name} binds now: take it out of KNOWN_GAPS")


def test_every_documented_difference_is_on_the_migration_page():
    page = MIGRATION_PAGE.read_text() if MIGRATION_PAGE.exists() else ""
    assert [name for name in DIFFERENCES if name.rpartition(".")[2] not in page] == []
