"""ParallelSSHClient against the local sshd: fan-out, output, exit codes, stdin, join,
per-host errors; on both engines.

Each test runs as ``[native]`` (libssh2) and ``[ssh]`` (libssh) through the ``engine`` and
``parallel`` (three hosts) fixtures of conftest.py. Every host is a loopback address of
one sshd, so a command can tell which host it ran on by the server address in
``$SSH_CONNECTION``; tests use that to check that each output belongs to the host it
claims.
"""

from __future__ import annotations

import shutil

import gevent
import pytest
from conftest import assert_names_host

from pssh.config import HostConfig
from pssh.exceptions import ConnectionError, SessionError, Timeout
from pssh.output import HostOutput

# Prints the address the sshd accepted the connection on, that is the host we asked for.
SERVER_ADDRESS = "set -- $SSH_CONNECTION; echo $3"


@pytest.fixture(scope="module")
def one_host_clients():
    """The one-host clients of this module, one per engine, disconnected at its end."""
    clients = {}
    yield clients
    for client in clients.values():
        client.disconnect()


@pytest.fixture
def one_host_client(engine, sshd, one_host_clients):
    """A client for one host, shared by the many small quoting cases of its engine."""
    if engine.__name__ not in one_host_clients:
        one_host_clients[engine.__name__] = engine.ParallelSSHClient(
            sshd.hosts[:1], **sshd.client_kwargs())
    return one_host_clients[engine.__name__]


def _read_until_timeout(lines):
    """The lines a stream yields before it raises Timeout."""
    received = []
    with pytest.raises(Timeout):
        while True:
            received.append(next(lines))
    return received


def _run_and_join(parallel, command, **kwargs):
    output = parallel.run_command(command, **kwargs)
    parallel.join(output)
    return output


# --- fan-out -----------------------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 10])
def test_each_output_belongs_to_its_host(engine, sshd, client_kwargs, count):
    targets = sshd.hosts[:count]
    with engine.ParallelSSHClient(targets, **client_kwargs) as client:
        output = _run_and_join(client, SERVER_ADDRESS)

    assert [out.host for out in output] == targets
    assert [list(out.stdout) for out in output] == [[host] for host in targets]
    assert [out.exit_code for out in output] == [0] * count
    assert [out.exception for out in output] == [None] * count


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool_size", [100, 5])
def test_one_hundred_hosts(engine, sshd, client_kwargs, pool_size):
    client = engine.ParallelSSHClient(sshd.hosts, pool_size=pool_size, **client_kwargs)

    output = _run_and_join(client, SERVER_ADDRESS + "; exit 7")

    assert len(output) == 100
    assert [list(out.stdout) for out in output] == [[host] for host in sshd.hosts]
    assert {out.exit_code for out in output} == {7}
    assert all(out.exception is None for out in output)
    client.disconnect()


def test_run_command_returns_host_outputs(parallel, hosts):
    output = parallel.run_command("true")
    parallel.join(output)

    assert isinstance(output, list)
    assert all(isinstance(out, HostOutput) for out in output)
    assert [out.host for out in output] == hosts[:3]


@pytest.mark.parametrize("value", [True, False])
def test_return_list_is_deprecated_but_accepted(parallel, value):
    with pytest.warns(DeprecationWarning):
        output = parallel.run_command("echo hi", return_list=value)
    parallel.join(output)

    assert [list(out.stdout) for out in output] == [["hi"]] * 3


def test_duplicate_hosts_get_separate_outputs(engine, sshd, client_kwargs):
    host = sshd.hosts[0]
    client = engine.ParallelSSHClient([host, host], **client_kwargs)

    output = _run_and_join(client, "echo %s", host_args=("first", "second"))

    assert [out.host for out in output] == [host, host]
    assert output[0] is not output[1]
    assert [list(out.stdout) for out in output] == [["first"], ["second"]]
    client.disconnect()


def test_connections_are_reused_across_commands(parallel):
    first = parallel.run_command("true")
    parallel.join(first)
    clients = [out.client for out in first]

    for _ in range(9):
        output = _run_and_join(parallel, "true")
        assert all(a is b for a, b in zip((out.client for out in output), clients))


def test_assigning_hosts_switches_targets(parallel, hosts):
    _run_and_join(parallel, "true")

    parallel.hosts = hosts[5:7]
    output = _run_and_join(parallel, SERVER_ADDRESS)

    assert parallel.hosts == hosts[5:7]
    assert [list(out.stdout) for out in output] == [[hosts[5]], [hosts[6]]]


def test_get_last_output_is_the_latest_run(parallel, hosts):
    parallel.join(parallel.run_command("echo one"))
    parallel.run_command("echo two")

    last = parallel.get_last_output()
    parallel.join(last)

    assert [out.host for out in last] == hosts[:3]
    assert [list(out.stdout) for out in last] == [["two"]] * 3


def test_connect_auth_then_run(parallel):
    # Like parallel-ssh: connect_auth() returns greenlets for the caller to join.
    gevent.joinall(parallel.connect_auth(), raise_error=True)

    output = _run_and_join(parallel, "echo ready")

    assert [list(out.stdout) for out in output] == [["ready"]] * 3


# --- host_args ---------------------------------------------------------------------------

def test_host_args_scalars(parallel):
    output = _run_and_join(parallel, "echo %s", host_args=("a", "b", "c"))

    assert [list(out.stdout) for out in output] == [["a"], ["b"], ["c"]]


def test_host_args_tuples(parallel):
    output = _run_and_join(parallel, "echo %s-%s", host_args=(("a", 1), ("b", 2), ("c", 3)))

    assert [list(out.stdout) for out in output] == [["a-1"], ["b-2"], ["c-3"]]


def test_host_args_dicts(parallel):
    args = ({"x": "one"}, {"x": "two"}, {"x": "three"})

    output = _run_and_join(parallel, "echo %(x)s", host_args=args)

    assert [list(out.stdout) for out in output] == [["one"], ["two"], ["three"]]


# --- exit codes and join -----------------------------------------------------------------

def test_exit_code_is_set_by_join_without_reading(parallel):
    output = parallel.run_command("echo unread; exit 3")

    parallel.join(output)

    assert [out.exit_code for out in output] == [3] * 3
    assert [list(out.stdout) for out in output] == [["unread"]] * 3


def test_exit_code_is_set_after_reading_stdout_to_the_end(parallel):
    output = parallel.run_command("echo line; exit 5")

    lines = [list(out.stdout) for out in output]

    assert lines == [["line"]] * 3
    assert [out.exit_code for out in output] == [5] * 3


def test_finished_follows_the_command(parallel):
    output = parallel.run_command("cat")
    assert parallel.finished(output) is False

    for out in output:
        out.stdin.close()
    parallel.join(output)

    assert parallel.finished(output) is True
    assert [out.exit_code for out in output] == [0] * 3


def test_join_without_output_joins_the_last_run(parallel):
    output = parallel.run_command("exit 2")

    parallel.join()

    assert [out.exit_code for out in output] == [2] * 3


def test_join_timeout_reports_finished_and_unfinished(parallel, hosts):
    # The middle host's cat runs until its stdin closes; the others have ended before
    # the join that times out.
    output = parallel.run_command("%s", host_args=("true", "echo partial; cat", "true"))
    parallel.join([output[0], output[2]])

    with pytest.raises(Timeout) as caught:
        parallel.join(output, timeout=0.5)

    assert caught.value.finished_output == [output[0], output[2]]
    assert caught.value.unfinished_output == [output[1]]
    assert [out.host for out in caught.value.unfinished_output] == [hosts[1]]
    assert output[1].exit_code is None
    output[1].stdin.close()
    parallel.join(output)
    assert [list(out.stdout) for out in output] == [[], ["partial"], []]
    assert [out.exit_code for out in output] == [0] * 3
    assert parallel.finished(output)


def test_join_after_timeout_keeps_output_and_can_be_retried(parallel):
    output = parallel.run_command("echo before; sleep 2; echo after")
    with pytest.raises(Timeout):
        parallel.join(output, timeout=0.5)

    parallel.join(output, timeout=30)

    assert [list(out.stdout) for out in output] == [["before", "after"]] * 3
    assert [out.exit_code for out in output] == [0] * 3


@pytest.mark.timeout(60)
def test_join_on_large_unread_output(parallel):
    # 3.4 MB per host, more than an SSH channel window: join must keep reading to finish.
    output = parallel.run_command("seq 1 500000")

    parallel.join(output, timeout=30)

    assert [out.exit_code for out in output] == [0] * 3
    assert [len(list(out.stdout)) for out in output] == [500000] * 3


@pytest.mark.timeout(60)
def test_join_consuming_large_output(parallel):
    output = parallel.run_command("seq 1 500000")

    parallel.join(output, consume_output=True, timeout=30)

    assert [out.exit_code for out in output] == [0] * 3
    assert [list(out.stdout) for out in output] == [[]] * 3


def test_join_consume_output_empties_buffers(parallel):
    output = parallel.run_command("echo gone")

    parallel.join(output, consume_output=True)

    assert [list(out.stdout) for out in output] == [[]] * 3
    assert [out.exit_code for out in output] == [0] * 3


# --- reading output ----------------------------------------------------------------------

def test_read_timeout_raises_after_yielding_what_arrived(parallel):
    output = parallel.run_command("echo first; sleep 3", read_timeout=0.5)

    lines = _read_until_timeout(output[0].stdout)

    assert lines == ["first"]
    assert output[0].read_timeout == 0.5


def test_read_timeout_keeps_a_partial_line(parallel):
    output = parallel.run_command("printf 'first\\npartial'; sleep 2", read_timeout=0.5)
    assert _read_until_timeout(output[0].stdout) == ["first"]

    parallel.join(output)

    assert list(output[0].stdout) == ["partial"]
    assert output[0].exit_code == 0


def test_stderr_is_kept_apart_from_stdout(parallel):
    output = _run_and_join(parallel, "echo out; echo err >&2; echo more-err >&2; exit 3")

    assert [list(out.stdout) for out in output] == [["out"]] * 3
    assert [list(out.stderr) for out in output] == [["err", "more-err"]] * 3
    assert [out.exit_code for out in output] == [3] * 3


@pytest.mark.timeout(60)
def test_reading_stdout_is_not_stalled_by_heavy_stderr(parallel):
    # 3.4 MB on stderr, more than an SSH channel window, before the one stdout line.
    output = parallel.run_command("seq 1 500000 >&2; echo done")

    assert list(output[0].stdout) == ["done"]
    assert len(list(output[0].stderr)) == 500000
    parallel.join(output)
    assert [out.exit_code for out in output] == [0] * 3


def test_each_stdout_access_yields_only_unread_lines(parallel):
    output = _run_and_join(parallel, "echo one; echo two")

    assert list(output[0].stdout) == ["one", "two"]
    assert list(output[0].stdout) == []


def test_final_line_without_newline(parallel):
    output = _run_and_join(parallel, "printf 'a\\nb'")

    assert [list(out.stdout) for out in output] == [["a", "b"]] * 3


def test_empty_lines_are_kept(parallel):
    output = _run_and_join(parallel, "printf 'a\\n\\n\\nb\\n'")

    assert list(output[0].stdout) == ["a", "", "", "b"]


@pytest.mark.timeout(120)
def test_long_output_read_host_by_host(parallel):
    # 3.4 MB per host, more than an SSH channel window: hosts not being read meanwhile
    # wait on their windows.
    output = parallel.run_command("seq 1 500000")

    for out in output:
        lines = list(out.stdout)
        assert len(lines) == 500000
        assert lines[0] == "1"
        assert lines[-1] == "500000"
    parallel.join(output)
    assert [out.exit_code for out in output] == [0] * 3


def test_utf8_is_the_default_encoding(parallel):
    output = _run_and_join(parallel, "echo 'café ✓'")

    assert list(output[0].stdout) == ["café ✓"]


def test_latin1_encoding(parallel):
    output = _run_and_join(parallel, "printf '\\xe9\\n'", encoding="latin-1")

    assert [list(out.stdout) for out in output] == [["é"]] * 3
    assert output[0].encoding == "latin-1"


# --- stdin -------------------------------------------------------------------------------

def test_stdin_reaches_the_command(parallel):
    output = parallel.run_command("cat")

    for position, out in enumerate(output):
        out.stdin.write(f"hello {position}\n")
        out.stdin.flush()
        out.stdin.close()

    assert [list(out.stdout) for out in output] == [["hello 0"], ["hello 1"], ["hello 2"]]
    parallel.join(output)
    assert [out.exit_code for out in output] == [0] * 3


def test_stdin_accepts_bytes(parallel):
    output = parallel.run_command("wc -c")

    for out in output:
        out.stdin.write(b"12345")
        out.stdin.close()

    assert [list(out.stdout) for out in output] == [["5"]] * 3


# --- command wrapping --------------------------------------------------------------------

QUOTING_CASES = [
    ("echo 'it'\"'\"'s'", ["it's"]),
    ('echo "double quoted"', ["double quoted"]),
    ("echo `echo backticks`", ["backticks"]),
    ("X=abc; echo \"$X\" '$X'", ["abc $X"]),
    ('test -n "$HOME" && echo has-home', ["has-home"]),
]


@pytest.mark.parametrize("shell", [None, "bash -c", "sh -c"])
@pytest.mark.parametrize("command, expected", QUOTING_CASES)
def test_commands_arrive_unchanged(one_host_client, shell, command, expected):
    output = _run_and_join(one_host_client, command, shell=shell)

    assert list(output[0].stdout) == expected
    assert output[0].exit_code == 0


@pytest.mark.parametrize("shell", ["bash -c", "sh -c"])
def test_shell_runs_the_command(one_host_client, shell):
    output = _run_and_join(one_host_client, 'echo "$0"', shell=shell)

    assert list(output[0].stdout) == [shell.split()[0]]


def test_sudo_wraps_the_command(parallel):
    output = _run_and_join(parallel, "echo as-root", sudo=True)

    if shutil.which("sudo"):
        assert list(output[0].stdout) == ["as-root"]
    else:
        # No sudo on the test machines: the wrapped command fails in the remote shell.
        assert output[0].exit_code == 127
        assert "sudo" in "\n".join(output[0].stderr)


def test_use_pty_gives_a_terminal(parallel):
    with_pty = _run_and_join(parallel, "test -t 0", use_pty=True)
    without_pty = _run_and_join(parallel, "test -t 0")

    assert [out.exit_code for out in with_pty] == [0] * 3
    assert [out.exit_code for out in without_pty] == [1] * 3


# --- other constructor options -----------------------------------------------------------

def test_host_config_overrides_port_user_and_key_and_sets_alias(engine, sshd, hosts,
                                                                closed_port):
    # The client's own port and user would fail: only the per-host settings can log in.
    config = [HostConfig(user=sshd.user, port=sshd.port, private_key=sshd.pkey,
                         alias="node-0"),
              HostConfig(user=sshd.user, port=sshd.port, private_key=sshd.pkey_rsa)]
    client = engine.ParallelSSHClient(hosts[:2], host_config=config, port=closed_port,
                                      user="nobody-here", num_retries=0, timeout=10)

    output = _run_and_join(client, SERVER_ADDRESS + "; whoami")

    assert [out.alias for out in output] == ["node-0", None]
    assert [list(out.stdout) for out in output] == [[hosts[0], sshd.user],
                                                    [hosts[1], sshd.user]]
    client.disconnect()


def test_rsa_key(engine, sshd, hosts, client_kwargs):
    client = engine.ParallelSSHClient(hosts[:2], **{**client_kwargs, "pkey": sshd.pkey_rsa})

    output = _run_and_join(client, "echo rsa")

    assert [list(out.stdout) for out in output] == [["rsa"]] * 2
    client.disconnect()


def test_private_key_given_as_bytes(engine, sshd, hosts, client_kwargs):
    with open(sshd.pkey, "rb") as key_file:
        key_data = key_file.read()
    client = engine.ParallelSSHClient(hosts[:2], **{**client_kwargs, "pkey": key_data})

    output = _run_and_join(client, "echo from-bytes")

    assert [list(out.stdout) for out in output] == [["from-bytes"]] * 2
    client.disconnect()


def test_compression(engine, hosts, client_kwargs):
    client = engine.ParallelSSHClient(hosts[:2], compress=True, **client_kwargs)

    output = _run_and_join(client, "seq 1 1000")

    assert [len(list(out.stdout)) for out in output] == [1000, 1000]
    client.disconnect()


# --- errors stay on their host -----------------------------------------------------------

def test_errors_stay_on_their_host(engine, hosts, client_kwargs, closed_port):
    config = [HostConfig(), HostConfig(port=closed_port)]
    client = engine.ParallelSSHClient(hosts[:2], host_config=config, **client_kwargs)

    output = client.run_command("echo fine", stop_on_errors=False)
    client.join(output, timeout=10)

    assert list(output[0].stdout) == ["fine"]
    assert output[0].exit_code == 0
    assert isinstance(output[1].exception, ConnectionError)
    assert_names_host(output[1].exception, hosts[1], closed_port)
    with pytest.raises(ConnectionError):
        client.run_command("echo again")
    client.disconnect()


@pytest.mark.timeout(60)
def test_connection_lost_mid_command_then_reconnects(parallel, hosts):
    # Killing the command's parent, the sshd process serving the connection, drops it.
    # The first host's command waits for a line on stdin before that, so "started" has
    # been read before the connection breaks.
    output = parallel.run_command("echo started; %s; echo rest",
                                  host_args=("head -n 1 >/dev/null; kill -9 $PPID",
                                             "true", "true"))
    lines = output[0].stdout

    assert next(lines) == "started"
    output[0].stdin.write("go\n")
    output[0].stdin.flush()
    with pytest.raises((ConnectionError, SessionError)) as lost:
        next(lines)
    parallel.join(output, timeout=10)

    assert_names_host(lost.value, hosts[0])
    assert output[0].exception is lost.value
    assert output[0].exit_code is None
    assert [list(out.stdout) for out in output[1:]] == [["started", "rest"]] * 2
    again = parallel.run_command("echo again")
    parallel.join(again, timeout=10)
    assert [list(out.stdout) for out in again] == [["again"]] * 3
