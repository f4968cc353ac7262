"""The ``pssh`` command line, run as a user runs it: a child process (``python -m pssh``,
and the installed ``pssh`` script when there is one) against the local sshd, with what
it prints and its exit status asserted. A pseudo-terminal stands in for a terminal where
colour and the progress line are concerned."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import command_line, keygen, process_table, wait_until

from pssh.testing import LocalSSHD

SCRIPT = shutil.which("pssh", path=os.path.dirname(sys.executable))
RUNNERS = [[sys.executable, "-m", "pssh"]] + ([[SCRIPT]] if SCRIPT else [])
ESC = "\x1b["


def pssh(*args: str, runner: list[str] | None = None, timeout: float = 60,
         ) -> subprocess.CompletedProcess[str]:
    """Run the command line with ``args``, stdout and stderr captured (pipes)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([*(runner or RUNNERS[0]), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def login(sshd: LocalSSHD) -> list[str]:
    """The options that reach the test sshd: port, user, key."""
    kwargs = sshd.client_kwargs()
    return ["-O", f"Port={kwargs['port']}", "-l", kwargs["user"], "-i", kwargs["pkey"]]


def _lines(text: str) -> list[str]:
    return text.splitlines()


# -- running a command --------------------------------------------------------------------


@pytest.mark.parametrize("runner", RUNNERS, ids=lambda runner: os.path.basename(runner[-1]))
def test_inline_output_in_a_pipe(runner: list[str], hosts: list[str],
                                 login: list[str]) -> None:
    result = pssh("-H", ",".join(hosts[:3]), *login, "echo out-$((20+1)); echo err >&2",
                  runner=runner)
    assert result.returncode == 0, result.stderr
    assert sorted(_lines(result.stdout)) == sorted(f"{host}: out-21" for host in hosts[:3])
    for host in hosts[:3]:
        assert f"{host}: err" in _lines(result.stderr)
    assert _lines(result.stderr)[-1].startswith("3 hosts in ")
    assert _lines(result.stderr)[-1].endswith(": 3 ok")
    assert ESC not in result.stdout + result.stderr  # no colour, no progress in pipes


def test_node_set_ranges_and_words_after_the_command(sshd: LocalSSHD, login: list[str],
                                                    ) -> None:
    result = pssh("-H", "127.0.0.[2-5]", "-x", "127.0.0.4", *login, "echo", "a", "-b")
    assert result.returncode == 0, result.stderr
    assert sorted(_lines(result.stdout)) == [f"127.0.0.{n}: a -b" for n in (2, 3, 5)]


def test_host_file_with_comments_users_and_ports(sshd: LocalSSHD, hosts: list[str],
                                                 tmp_path: Path) -> None:
    kwargs = sshd.client_kwargs()
    host_file = tmp_path / "hosts"
    host_file.write_text(f"# the web tier\n{kwargs['user']}@{hosts[0]}:{kwargs['port']}\n\n"
                         f"{hosts[1]}:{kwargs['port']}  # second\n")
    result = pssh("-h", str(host_file), "-i", kwargs["pkey"], "whoami")
    assert result.returncode == 0, result.stderr
    assert sorted(_lines(result.stdout)) == sorted(f"{host}: {kwargs['user']}"
                                                   for host in hosts[:2])


def test_gather_shows_identical_output_once(hosts: list[str], login: list[str]) -> None:
    odd = hosts[0]
    command = f'echo same; case "$SSH_CONNECTION" in *" {odd} "*) echo odd one;; esac'
    result = pssh("-b", "-H", ",".join(hosts[:4]), *login, command)
    assert result.returncode == 0, result.stderr
    rule = "-" * 15
    assert _lines(result.stdout) == [rule, f"{odd} (1)", rule, "same", "odd one",
                                     rule, "127.0.0.[3-5] (3)", rule, "same"]


def test_json_lines_with_exit_codes(hosts: list[str], login: list[str]) -> None:
    result = pssh("--json", "-H", ",".join(hosts[:3]), *login,
                  "echo out; echo err >&2; exit 3")
    assert result.returncode == 5  # some command exited non-zero
    records = [json.loads(line) for line in _lines(result.stdout)]
    assert sorted(record["host"] for record in records) == sorted(hosts[:3])
    for record in records:
        assert record["status"] == "failed"
        assert record["exit_code"] == 3
        assert record["stdout"] == "out\n"
        assert record["stderr"] == "err\n"
        assert record["error"] is None
        assert record["end"] - record["start"] == pytest.approx(record["elapsed"], abs=1e-3)
    assert "exit 3: 127.0.0.[2-4]" in result.stderr


def test_unreachable_host_exit_status_and_json_error(sshd: LocalSSHD, hosts: list[str],
                                                     login: list[str]) -> None:
    # nothing listens on 127.0.0.1 at the test sshd's port
    result = pssh("--json", "-H", f"{hosts[0]},127.0.0.1", *login, "true")
    assert result.returncode == 4
    records = {record["host"]: record for record in map(json.loads, _lines(result.stdout))}
    assert records[hosts[0]]["status"] == "ok"
    refused = records["127.0.0.1"]
    assert refused["status"] == "unreachable"
    assert refused["exit_code"] is None
    assert refused["error"]["type"] == "RefusedConnectionError"
    assert "127.0.0.1" in refused["error"]["message"]
    assert "RefusedConnectionError: 127.0.0.1" in result.stderr


def test_wrong_key_is_an_authentication_failure(sshd: LocalSSHD, hosts: list[str],
                                                tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger")
    result = pssh("-H", hosts[0], "-O", f"Port={sshd.port}", "-l", sshd.user, "-i", stranger,
                  "-O", "IdentitiesOnly=yes", "true")
    assert result.returncode == 4
    assert f"{hosts[0]}: [AuthenticationError]" in result.stderr
    assert "1 unreachable" in result.stderr


def test_output_and_error_directories(hosts: list[str], login: list[str],
                                      tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    result = pssh("-o", str(out), "-e", str(err), "-H", ",".join(hosts[:2]), *login,
                  "echo one; echo two; echo bad >&2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    for host in hosts[:2]:
        assert (out / host).read_text() == "one\ntwo\n"
        assert (err / host).read_text() == "bad\n"


def test_timeout_keeps_partial_output(hosts: list[str], login: list[str]) -> None:
    result = pssh("-t", "1", "-H", ",".join(hosts[:2]), *login, "echo before; sleep 30")
    assert result.returncode == 3
    assert sorted(_lines(result.stdout)) == sorted(f"{host}: before" for host in hosts[:2])
    assert "2 timed out" in result.stderr
    assert "timed out: 127.0.0.[2-3]" in result.stderr


def test_timeout_in_json_mode_keeps_partial_output(hosts: list[str], login: list[str]) -> None:
    result = pssh("--json", "-t", "1", "-H", hosts[0], *login, "echo before; sleep 30")
    assert result.returncode == 3
    (record,) = map(json.loads, _lines(result.stdout))
    assert record["status"] == "timeout"
    assert record["stdout"] == "before\n"


def test_libssh_engine_runs_commands(hosts: list[str], login: list[str]) -> None:
    result = pssh("--engine", "libssh", "-H", ",".join(hosts[:2]), *login, "echo", "libssh")
    assert result.returncode == 0, result.stderr
    assert sorted(_lines(result.stdout)) == sorted(f"{host}: libssh" for host in hosts[:2])


def test_processes_spread_the_hosts_over_workers_with_the_same_output(
        hosts: list[str], login: list[str], tmp_path: Path) -> None:
    result = pssh("--processes", "2", "--json", "-H", ",".join(hosts[:5]), *login,
                  "echo hi; exit 3")
    assert result.returncode == 5, result.stderr
    ended = [json.loads(line) for line in _lines(result.stdout)]
    assert sorted(line["host"] for line in ended) == sorted(hosts[:5])
    assert {line["exit_code"] for line in ended} == {3}

    copied = pssh("put", "--processes", "2", "-H", ",".join(hosts[:3]), *login,
                  str(Path(__file__)), str(tmp_path / "copied.py"))
    assert copied.returncode == 0, copied.stderr
    assert _lines(copied.stderr)[-1].startswith("3 hosts in ")
    assert (tmp_path / "copied.py").read_bytes() == Path(__file__).read_bytes()


def test_a_remote_command_named_put_after_double_dash(hosts: list[str],
                                                      login: list[str]) -> None:
    result = pssh("-H", hosts[0], *login, "--", "put", "x")
    assert result.returncode == 5  # bash: put: command not found
    assert f"exit 127: {hosts[0]}" in result.stderr


def test_bare_ssh_config_does_not_take_the_command(hosts: list[str],
                                                   login: list[str]) -> None:
    result = pssh("-H", hosts[0], *login, "--ssh-config", "echo", "hi")
    assert result.returncode in (0, 2), result.stderr
    if result.returncode == 0:
        assert result.stdout == f"{hosts[0]}: hi\n"


def test_strict_host_key_policy_refuses_unknown_hosts(hosts: list[str], login: list[str],
                                                      tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    result = pssh("--host-key-policy", "strict", "-O", f"UserKnownHostsFile={known_hosts}",
                  "-H", ",".join(hosts[:2]), *login, "true")
    assert result.returncode == 4
    assert f"{hosts[0]}: [HostKeyError]" in result.stderr
    assert "HostKeyError: 127.0.0.[2-3]" in result.stderr


def test_a_reader_that_goes_away_stops_the_run_quietly(hosts: list[str],
                                                      login: list[str]) -> None:
    """``pssh ... | head -1``: exit status 141, as for a program SIGPIPE ended."""
    child = subprocess.Popen([sys.executable, "-m", "pssh", "-H", ",".join(hosts[:5]),
                              *login, "seq 1 100000"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    first = child.stdout.readline()
    child.stdout.close()
    status = child.wait(timeout=30)
    err = child.stderr.read()
    child.stderr.close()
    assert first.endswith(": 1\n")
    assert status == 141
    assert err == ""


# -- copies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scp", [False, True], ids=["sftp", "scp"])
def test_put_then_get(scp: bool, hosts: list[str], login: list[str], tmp_path: Path) -> None:
    data = os.urandom(200_000)
    local = tmp_path / "payload.bin"
    local.write_bytes(data)
    remote = tmp_path / "remote" / "payload.bin"  # the "remote" hosts share this machine
    remote.parent.mkdir()  # SCP makes no directories
    scp_flag = ["--scp"] if scp else []
    put = pssh("put", *scp_flag, "--json", "-H", hosts[0], *login, str(local), str(remote))
    assert put.returncode == 0, put.stderr
    (record,) = map(json.loads, _lines(put.stdout))
    assert record["status"] == "ok" and record["bytes"] == len(data)
    assert remote.read_bytes() == data
    got = tmp_path / "got"
    get = pssh("get", *scp_flag, "-H", ",".join(hosts[:3]), *login, str(remote), str(got))
    assert get.returncode == 0, get.stderr
    assert sorted(_lines(get.stdout)) == sorted(f"{host}: ok, 200.0 kB" for host in hosts[:3])
    for host in hosts[:3]:
        assert (got / f"payload.bin_{host}").read_bytes() == data


def test_put_recursive(hosts: list[str], login: list[str], tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("deep\n")
    target = tmp_path / "copied"
    result = pssh("put", "-r", "-H", hosts[0], *login, str(tree), str(target))
    assert result.returncode == 0, result.stderr
    assert (target / "sub" / "file").read_text() == "deep\n"


def test_get_of_a_missing_file_fails_each_host(hosts: list[str], login: list[str],
                                                tmp_path: Path) -> None:
    result = pssh("get", "-H", ",".join(hosts[:2]), *login, "/nonexistent/file",
                  str(tmp_path / "got"))
    assert result.returncode == 5
    assert "2 failed" in result.stderr
    assert "SFTPError: 127.0.0.[2-3]" in result.stderr or "SFTPIOError" in result.stderr


# -- bad usage ------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Any:
    """A socket that would see any connection attempt: (port, socket)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server.getsockname()[1], server
    server.close()


BAD_USAGE = {
    "unknown option": ["--frobnicate", "-H", "{host}", "true"],
    "no hosts": ["true"],
    "empty host list": ["-H", "{host}", "-x", "127.0.0.1", "true"],
    "bad range": ["-H", "web[3-1]", "true"],
    "unclosed range": ["-H", "web[1-", "true"],
    "missing key file": ["-H", "{host}", "-i", "/nonexistent/key", "true"],
    "unknown -O keyword": ["-H", "{host}", "-O", "Frobnicate=yes", "true"],
    "bad -O value": ["-H", "{host}", "-O", "Port=eighty", "true"],
    "no command": ["-H", "{host}"],
    "bad timeout": ["-H", "{host}", "-t", "-1", "true"],
    "missing host file": ["-h", "/nonexistent/hosts", "true"],
    "put with one path": ["put", "-H", "{host}", "only-one"],
    "copies on libssh": ["get", "--engine", "libssh", "-H", "{host}", "/etc/hostname", "d"],
    "gather and json": ["-b", "--json", "-H", "{host}", "true"],
    "no processes": ["--processes", "0", "-H", "{host}", "true"],
    "processes on libssh": ["--processes", "2", "--engine", "libssh", "-H", "{host}", "true"],
}


@pytest.mark.parametrize("case", sorted(BAD_USAGE))
def test_bad_usage_is_one_line_and_exit_2_before_connecting(case: str, listener: Any) -> None:
    port, server = listener
    args = [arg.replace("{host}", "127.0.0.1") for arg in BAD_USAGE[case]]
    result = pssh(*args, "-O", f"Port={port}") if case not in (
        "no command", "put with one path") else pssh(*args[:1], "-O", f"Port={port}",
                                                     *args[1:])
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert len(_lines(result.stderr)) == 1, result.stderr
    assert result.stderr.startswith("pssh: ")
    with pytest.raises(BlockingIOError):
        server.accept()  # nobody tried to connect


def test_help_exits_0() -> None:
    result = pssh("--help")
    assert result.returncode == 0
    assert "pssh put [options] LOCAL REMOTE" in result.stdout
    assert "Exit status" in result.stdout


def test_ssh_config_option(hosts: list[str], login: list[str], tmp_path: Path) -> None:
    """--ssh-config is refused by a client without ssh_config=, and works with it."""
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    ConnectTimeout 20\n")
    result = pssh(f"--ssh-config={config}", "-H", hosts[0], *login, "echo ok")
    if result.returncode == 2:
        assert "--ssh-config is not available yet" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{hosts[0]}: ok\n"


# -- a terminal -----------------------------------------------------------------------------


def run_in_pty(args: list[str], interrupt_after: str | None = None,
               timeout: float = 60) -> tuple[int, str]:
    """Run the command line on a pseudo-terminal; its exit status and everything it
    wrote. With ``interrupt_after``, send SIGINT once that text has appeared."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "40", "TERM": "xterm-256color"}
    for name in ("NO_COLOR", "FORCE_COLOR"):
        env.pop(name, None)
    child = subprocess.Popen([sys.executable, "-m", "pssh", *args], stdin=slave,
                             stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
                if interrupt_after and interrupt_after in b"".join(chunks).decode(
                        errors="replace"):
                    child.send_signal(signal.SIGINT)
                    interrupt_after = None
            elif child.poll() is not None:
                break
        return child.wait(timeout=10), b"".join(chunks).decode(errors="replace")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)


def test_terminal_gets_colour_and_a_progress_line(hosts: list[str], login: list[str]) -> None:
    status, screen = run_in_pty(["-H", ",".join(hosts[:3]), *login, "echo hi; sleep 0.5"])
    assert status == 0, screen
    assert f"{ESC}" in screen
    assert "3 running" in screen and "3/3 done" in screen and " s" in screen
    for host in hosts[:3]:
        assert f"{host}: " in screen and "hi" in screen
    assert "3 hosts in " in screen and ": 3 ok" in screen


def test_terminal_progress_of_copies_shows_bytes(hosts: list[str], login: list[str],
                                                 tmp_path: Path) -> None:
    local = tmp_path / "big"
    local.write_bytes(os.urandom(3_000_000))
    status, screen = run_in_pty(["put", "-H", ",".join(hosts[:2]), *login, str(local),
                                 str(tmp_path / "remote-big")])
    assert status == 0, screen
    assert "6.0 MB / 6.0 MB" in screen
    assert "2 hosts in " in screen


# -- Ctrl-C ---------------------------------------------------------------------------------


def _sshd_sessions(sshd: LocalSSHD) -> set[int]:
    """The per-connection sshd processes of the test sshd."""
    masters = set(sshd.pids)
    return {pid for pid, parent in process_table().items() if parent in masters}


def test_ctrl_c_stops_cleanly_and_closes_every_session(sshd: LocalSSHD, hosts: list[str],
                                                       login: list[str]) -> None:
    before = _sshd_sessions(sshd)
    marker = "sleep 30.0417"  # ours, to find the commands left behind
    status, screen = run_in_pty(["-H", ",".join(hosts[:3]), *login, "-b",
                                 f"echo started; {marker}"],
                                interrupt_after="3 running")
    try:
        assert status == 130, screen
        assert "interrupted: 3 hosts in " in screen
        assert "3 interrupted" in screen
        assert "Traceback" not in screen
        wait_until(lambda: not _sshd_sessions(sshd) - before, 10,
                   "the sshd sessions of the interrupted run to end")
    finally:
        for pid in process_table():
            if command_line(pid).strip() == marker:
                os.kill(pid, signal.SIGTERM)


def test_ctrl_c_in_a_pipe_prints_what_finished(hosts: list[str], login: list[str]) -> None:
    child = subprocess.Popen([sys.executable, "-m", "pssh", "-H", ",".join(hosts[:2]), *login,
                              f'case "$SSH_CONNECTION" in *" {hosts[0]} "*) echo quick;; '
                              f'*) echo slow; sleep 30.0418;; esac'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        seen = [child.stdout.readline(), child.stdout.readline()]
        assert sorted(seen) == sorted([f"{hosts[0]}: quick\n", f"{hosts[1]}: slow\n"])
        time.sleep(0.3)  # let the quick host's end be recorded
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pid in process_table():
            if command_line(pid).strip() == "sleep 30.0418":
                os.kill(pid, signal.SIGTERM)
    assert child.returncode == 130
    assert "interrupted: 2 hosts in " in err
    assert "1 ok, 1 interrupted" in err
    assert f"interrupted: {hosts[1]}" in err
