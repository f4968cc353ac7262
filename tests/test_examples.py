"""The scripts in ``examples/``, run the way a reader of the README runs them.

Each example starts its own throwaway sshd (pssh.testing.LocalSSHD), so it runs here as a
subprocess of this interpreter, from the repository root, with a small host count. The
checks are on what the reader sees: the lines printed, nothing on stderr, the exit status,
and no temporary directory left behind. Timings in the output are not checked.

A new script in ``examples/`` fails ``test_every_example_is_run`` until it gets an entry
in ``EXAMPLES`` below, so no example can go unrun.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
NUMBER = r"\d+(?:\.\d+)?"
# Far beyond what either script needs (about a second each); only a hang gets near it.
RUN_TIMEOUT = 300


def _run_example(name: str, args: list[str], tmp_path: Path) -> list[str]:
    """Run ``examples/<name>`` with ``args``; its stdout lines, once it exited 0 quietly.

    TMPDIR points at a fresh directory, so the sshd work directory and any scratch files
    the script makes land there, where the caller can see whether they were removed.
    """
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, os.path.join("examples", name), *args], cwd=REPO,
        env={**os.environ, "TMPDIR": str(scratch)}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=RUN_TIMEOUT)
    report = f"exit status {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert result.stderr == "", report
    assert os.listdir(scratch) == [], f"left behind in TMPDIR: {os.listdir(scratch)}"
    return result.stdout.splitlines()


def _check_local_demo(lines: list[str]) -> None:
    banner, *per_host, summary = lines
    port = re.fullmatch(rf"sshd on 3 loopback hosts, port (\d+), ready in {NUMBER} s",
                        banner)
    assert port, banner
    uname = subprocess.run(["uname", "-sr"], capture_output=True, text=True,
                           check=True).stdout.strip()
    expected = []
    for host in HOSTS:
        expected += [rf"{re.escape(host)} hello from 127\.0\.0\.1 \d+ {re.escape(host)} "
                     rf"{port[1]}",
                     re.escape(f"{host} {uname}"),
                     re.escape(f"{host} exit code 0")]
    assert len(per_host) == len(expected), lines
    for line, pattern in zip(per_host, expected):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert re.fullmatch(rf"3 hosts, 3 ok, {NUMBER} s wall time", summary), summary


def _check_copy_files(lines: list[str]) -> None:
    # Each step lists the hosts in the order they finish, then a summary line.
    steps = ["sftp upload", "sftp download", "scp upload", "scp download"]
    *body, verdict = lines
    assert verdict == "all copies verified", lines
    assert len(body) == len(steps) * (len(HOSTS) + 1), lines
    for step, start in zip(steps, range(0, len(body), len(HOSTS) + 1)):
        *finished, summary = body[start:start + len(HOSTS) + 1]
        done = [re.fullmatch(rf"  {step} (\S+): done after {NUMBER} s", line)
                for line in finished]
        assert all(done), finished
        assert sorted(match[1] for match in done) == HOSTS
        assert re.fullmatch(rf"{step}: 3/3 hosts, 3 MB in {NUMBER} s \({NUMBER} MB/s\)",
                            summary), summary


def _check_cli_demo(lines: list[str]) -> None:
    uname = subprocess.run(["uname", "-sr"], capture_output=True, text=True,
                           check=True).stdout.strip()
    rule = "-" * 15
    assert re.fullmatch(r"sshd on 3 loopback hosts, port \d+", lines[0]), lines
    first, second = "\n".join(lines[2:]).split("\n\n")[:2]
    assert first.splitlines()[0] == "$ pssh -H '127.0.0.[2-4]' -b 'uname -sr'"
    assert first.splitlines()[1:5] == [rule, "127.0.0.[2-4] (3)", rule, uname]
    assert re.fullmatch(rf"3 hosts in {NUMBER} s: 3 ok", first.splitlines()[5])
    assert first.splitlines()[6] == "(exit status 0)"
    assert second.splitlines()[1:9] == [rule, "127.0.0.[2,4] (2)", rule, "deployed",
                                        rule, "127.0.0.3 (1)", rule, "broken"]
    assert second.splitlines()[-2:] == ["  exit 3: 127.0.0.3", "(exit status 5)"]


def _check_dask_demo(lines: list[str]) -> None:
    assert lines[:2] == ["sshd on 3 loopback hosts, Dask cluster of 2 workers", "first run:"]
    assert lines[5] == "second run:", lines
    runs = []
    for block in (lines[2:5], lines[6:9]):
        ports = [re.fullmatch(rf"  {re.escape(host)} exit code 0, connected from port (\d+)",
                              line) for host, line in zip(HOSTS, block)]
        assert all(ports), block
        runs.append([port[1] for port in ports])
    assert runs[0] == runs[1]
    assert lines[9:] == ["3 of 3 hosts answered on the first run's connection",
                         "closed 2 client sets on the workers"]


# examples/<name>: (command-line arguments, check of the printed lines)
EXAMPLES = {
    "cli_demo.py": (["--hosts", "3"], _check_cli_demo),
    "local_demo.py": (["--hosts", "3"], _check_local_demo),
    "copy_files.py": (["--hosts", "3", "--size-mb", "1"], _check_copy_files),
    "dask_demo.py": (["--hosts", "3", "--workers", "2"], _check_dask_demo),
}


def test_every_example_is_run():
    on_disk = sorted(path.name for path in (REPO / "examples").glob("*.py"))

    assert on_disk == sorted(EXAMPLES), "give each script in examples/ an entry in EXAMPLES"


@pytest.mark.timeout(2 * RUN_TIMEOUT)
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_and_prints_what_it_promises(name, tmp_path):
    args, check = EXAMPLES[name]

    lines = _run_example(name, args, tmp_path)

    check(lines)
