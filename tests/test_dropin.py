"""parallel-ssh 2.x scripts' ways of calling the library, on both engines.

``test_parity.py`` checks that every name binds; these check that the calls do what a
parallel-ssh user expects, against the real sshd.
"""

from __future__ import annotations

import logging

import pytest
from gevent.pool import Pool

import pssh
from pssh.clients.base.single import PollMixIn, Stdin
from pssh.clients.common import logger as clients_logger
from pssh.config import HostConfig
from pssh.exceptions import InvalidAPIUseError, Timeout
from pssh.output import HostOutput


def test_module_loggers_are_importable_where_parallel_ssh_had_them():
    assert pssh.logger is logging.getLogger("pssh")
    assert pssh.host_logger is logging.getLogger("pssh.host_logger")
    assert clients_logger.name.startswith("pssh")


def test_a_zero_timeout_means_no_limit(engine, hosts, client_kwargs):
    with engine.SSHClient(hosts[0], **{**client_kwargs, "timeout": 0}) as client:
        assert client.timeout is None
        output = client.run_command("echo ran")
        assert list(output.stdout) == ["ran"]
    parallel = engine.ParallelSSHClient(hosts[:2], **{**client_kwargs, "timeout": 0})
    output = parallel.run_command("echo ran")
    parallel.join(output)
    assert [list(out.stdout) for out in output] == [["ran"], ["ran"]]
    parallel.disconnect()


def test_keyboard_interactive_without_a_password_is_refused_before_connecting(
        engine, client_kwargs, closed_port):
    kwargs = {**client_kwargs, "port": closed_port, "keyboard_interactive": True}
    with pytest.raises(InvalidAPIUseError, match="password"):
        engine.SSHClient("127.0.0.1", **kwargs)
    with pytest.raises(InvalidAPIUseError, match="127.0.0.1"):
        engine.ParallelSSHClient(["127.0.0.1"], **kwargs)
    with pytest.raises(InvalidAPIUseError, match="127.0.0.3"):
        engine.ParallelSSHClient(["127.0.0.2", "127.0.0.3"],
                                 **{**client_kwargs, "port": closed_port},
                                 host_config=[HostConfig(),
                                              HostConfig(keyboard_interactive=True)])


def test_finished_and_wait_finished_take_what_parallel_ssh_took(client):
    assert client.finished(None) is False
    with pytest.raises(ValueError, match="HostOutput"):
        client.wait_finished(None)
    output = client.run_command("echo done")
    with pytest.raises(ValueError, match="HostOutput"):
        client.wait_finished(output.channel)
    client.wait_finished(output)
    assert output.exit_code == 0
    never_started = HostOutput(client.host, None, None, client)
    client.wait_finished(never_started, timeout=0.1)  # returns at once


def test_execute_starts_a_command_on_a_channel(client):
    channel = client.execute("exit 4")
    client.wait_finished(HostOutput(client.host, channel, None, client,
                                    buffers=client._reader_class(client, channel).host_buffers()))
    assert client.get_exit_status(channel) == 4


def test_execute_refuses_a_non_command_before_touching_the_connection(client):
    with pytest.raises(TypeError, match="cmd"):
        client.execute(None)
    with pytest.raises(ValueError, match="empty"):
        client.execute("  ")


def test_read_output_buffer_decodes_logs_and_calls_back(client, caplog):
    called = []
    lines = client.read_output_buffer([b"caf\xc3\xa9", "plain"], prefix=" out",
                                      callback=called.append, callback_args=("end",))
    with caplog.at_level(logging.INFO, logger="pssh.host_logger"):
        assert list(lines) == ["café", "plain"]
    assert called == ["end"]
    assert f"[{client.host}] out\tcafé" in caplog.messages


def test_auth_poll_and_configure_keepalive_are_callable(client):
    client.auth()  # already authenticated: nothing to do
    assert [list(client.run_command("echo still").stdout)] == [["still"]]
    client.poll(timeout=0.05)
    client.keepalive_seconds = 0
    client.configure_keepalive()
    assert client._keepalive is None
    client.keepalive_seconds = 30
    client.configure_keepalive()
    assert client._keepalive is not None and client._keepalive.active


def test_auth_reconnects_a_disconnected_client(client):
    client.disconnect()
    client.auth()
    assert client.is_connected()
    assert list(client.run_command("echo back").stdout) == ["back"]


def test_base_names_parallel_ssh_exported(client):
    assert isinstance(client, PollMixIn)
    output = client.run_command("cat")
    assert isinstance(output.stdin, Stdin)
    output.stdin.write("typed\n")
    output.stdin.close()
    assert list(output.stdout) == ["typed"]


def test_shell_run_takes_cmd(client):
    with client.open_shell() as shell:
        shell.run(cmd="echo from-shell")
    assert list(shell.stdout) == ["from-shell"]


def test_get_last_output_of_given_cmds_and_the_pool(parallel):
    assert isinstance(parallel.pool, Pool)
    first = parallel.run_command("echo first")
    parallel.join(first)
    cmds = parallel.cmds
    parallel.run_command("echo second")
    again = parallel.get_last_output(cmds)
    assert [out.host for out in again] == parallel.hosts
    assert [list(out.stdout) for out in parallel.get_last_output()] == [["second"]] * 3


def test_join_timeout_args_are_parallel_ssh_s(parallel):
    output = parallel.run_command("sleep 30")
    with pytest.raises(Timeout) as caught:
        parallel.join(output, timeout=0.2)
    message, timeout, finished, unfinished = caught.value.args
    assert timeout == 0.2 and finished == [] and unfinished == output


def test_scp_send_with_recurse_creates_a_files_missing_directory(hosts, client_kwargs,
                                                                 tmp_path):
    from pssh.clients.native import SSHClient

    source = tmp_path / "file"
    source.write_bytes(b"payload")
    target = tmp_path / "made" / "by" / "scp" / "file"
    with SSHClient(hosts[0], **client_kwargs) as client:
        client.scp_send(str(source), str(target), recurse=True)
    assert target.read_bytes() == b"payload"


def test_read_output_and_read_stderr_yield_the_raw_buffers_lines(client):
    output = client.run_command("echo one; echo two >&2; sleep 0.2; echo three")
    stdout = list(client.read_output(output.buffers.stdout.rw_buffer, timeout=10))
    stderr = list(client.read_stderr(output.buffers.stderr.rw_buffer, timeout=10))
    assert (stdout, stderr) == ([b"one", b"three"], [b"two"])
    client.wait_finished(output)
    assert output.exit_code == 0


def test_read_output_times_out_keeping_what_came(client):
    output = client.run_command("echo early; sleep 30")
    lines = client.read_output(output.buffers.stdout.rw_buffer, timeout=0.5)
    assert next(lines) == b"early"
    with pytest.raises(Timeout):
        next(lines)


def test_repr_of_a_client_whose_construction_failed_does_not_raise(engine):
    client = engine.ParallelSSHClient.__new__(engine.ParallelSSHClient)
    assert "0 hosts" in repr(client)
