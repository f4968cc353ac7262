"""Interactive shells on one host and on many, and stdin EOF for commands reading it.

Each test runs as ``[native]`` (libssh2) and ``[ssh]`` (libssh) through the ``client``
and ``parallel`` (three hosts) fixtures of conftest.py.
"""

from __future__ import annotations

import pytest

from pssh.clients.base.shell import InteractiveShell
from pssh.exceptions import ShellError, Timeout


def test_shell_runs_commands_in_one_session(client):
    with client.open_shell() as shell:
        shell.run("cd /tmp")
        shell.run("pwd")
        shell.run("echo oops >&2")
        shell.run("(exit 3)")

    assert isinstance(shell, InteractiveShell)
    assert list(shell.stdout) == ["/tmp"]
    assert list(shell.stderr) == ["oops"]
    assert shell.exit_code == 3


def test_shell_output_can_be_read_while_it_runs(client):
    shell = client.open_shell(read_timeout=5)
    shell.run("echo first")

    assert next(iter(shell.stdout)) == "first"

    shell.run("echo second")
    shell.close()
    assert list(shell.stdout) == ["second"]
    assert shell.exit_code == 0


def test_closed_shell_refuses_commands(client):
    shell = client.open_shell()
    shell.close()

    with pytest.raises(ShellError, match="closed"):
        shell.run("true")


def test_shell_close_times_out_when_a_command_keeps_running(client):
    shell = client.open_shell()
    shell.run("sleep 30")

    with pytest.raises(Timeout):
        shell.close(timeout=0.5)
    assert shell.exit_code is None


def test_parallel_shells(parallel, hosts):
    shells = parallel.open_shell()
    parallel.run_shell_commands(shells, ["cd /", "echo $SSH_CONNECTION | cut -d' ' -f3"])
    parallel.run_shell_commands(shells, "pwd")
    parallel.join_shells(shells, timeout=30)

    assert [list(shell.stdout) for shell in shells] == [[host, "/"] for host in hosts[:3]]
    assert [shell.exit_code for shell in shells] == [0, 0, 0]


def test_join_shells_timeout_lists_the_unfinished(parallel):
    shells = parallel.open_shell()
    parallel.run_shell_commands(shells[:1], "sleep 30")
    parallel.join_shells(shells[1:])  # those have ended: the timeout below is the first's

    with pytest.raises(Timeout) as timed_out:
        parallel.join_shells(shells, timeout=0.5)

    assert timed_out.value.unfinished_output == shells[:1]
    assert timed_out.value.finished_output == shells[1:]
    assert shells[0].exit_code is None
    assert [shell.exit_code for shell in shells[1:]] == [0, 0]


def test_run_shell_commands_on_closed_shells_names_the_host(parallel, hosts):
    shells = parallel.open_shell()
    parallel.join_shells(shells)

    with pytest.raises(ShellError, match=hosts[0]):
        parallel.run_shell_commands(shells, "true")


@pytest.mark.parametrize("make", ["single", "parallel"])
def test_closing_stdin_lets_cat_finish(make, client, parallel):
    outputs = [client.run_command("cat")] if make == "single" else parallel.run_command("cat")
    for output in outputs:
        output.stdin.write("line one\n")
        output.stdin.write(b"line two\n")
        output.stdin.flush()
        output.stdin.close()
    for output in outputs:
        output.client.wait_finished(output, timeout=10)

    assert [list(out.stdout) for out in outputs] == [["line one", "line two"]] * len(outputs)
    assert [out.exit_code for out in outputs] == [0] * len(outputs)


def test_wait_finished_with_stdin_open_times_out(client):
    output = client.run_command("cat")

    with pytest.raises(Timeout):
        client.wait_finished(output, timeout=0.5)
    output.stdin.close()
    client.wait_finished(output, timeout=10)
    assert output.exit_code == 0
