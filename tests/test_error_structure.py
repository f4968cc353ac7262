"""Errors a program can act on without reading their sentences: the builtin classes they
also are, the library's or server's words in ``reason``, and failures that land on the
host's result instead of vanishing."""

from __future__ import annotations

import pytest
from conftest import wait_until
from gevent import joinall

from pssh.clients import native
from pssh.clients import ssh as libssh
from pssh.exceptions import SCPError, SessionError, SFTPIOError, SSHError, Timeout

ENGINES = [pytest.param(native, id="native"), pytest.param(libssh, id="libssh")]


def test_timeout_is_also_the_builtin_timeout_error():
    assert issubclass(Timeout, TimeoutError)


@pytest.mark.parametrize("engine", ENGINES)
def test_join_timeout_is_caught_as_builtin_timeout_error(engine, hosts, client_kwargs):
    client = engine.ParallelSSHClient(hosts[:2], **client_kwargs)
    output = client.run_command("sleep 30")
    with pytest.raises(TimeoutError) as caught:
        client.join(output, timeout=0.2)
    assert isinstance(caught.value, Timeout)
    assert caught.value.unfinished_output == output
    client.disconnect()


def test_sftp_error_reason_is_the_servers_status(hosts, client_kwargs, tmp_path):
    client = native.ParallelSSHClient(hosts[:1], **client_kwargs)
    results = client.copy_remote_file("/no/such/file", str(tmp_path / "copy"))
    joinall(results)
    error = results[0].exception
    assert isinstance(error, SFTPIOError)
    assert error.reason == "no such file or directory"
    assert error.reason in str(error) and error.host == hosts[0]
    client.disconnect()


def test_scp_error_reason_is_the_remote_scps_words(hosts, client_kwargs, tmp_path):
    source = tmp_path / "source"
    source.write_bytes(b"data")
    with native.SSHClient(hosts[0], **client_kwargs) as client:
        with pytest.raises(SCPError) as caught:
            client.scp_send(str(source), "/no/such/dir/target")
    assert caught.value.reason
    assert caught.value.reason in str(caught.value)
    assert "/no/such/dir" in str(caught.value) and caught.value.host == hosts[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ENGINES)
def test_connection_lost_while_polling_exit_code_is_recorded_on_the_output(
        engine, hosts, client_kwargs):
    client = engine.SSHClient(hosts[0], **client_kwargs)
    # The command kills the sshd process serving its own connection.
    output = client.run_command("echo started; kill -9 $PPID; sleep 30")

    wait_until(lambda: output.exit_code is None and output.exception is not None,
               timeout=30, what="the lost connection to show on the output")

    assert isinstance(output.exception, SSHError)
    assert output.exception.host == hosts[0]
    assert output.exit_code is None
    client.disconnect()


def test_a_refused_channel_carries_the_libraries_words(hosts, client_kwargs, closed_port):
    with native.SSHClient(hosts[0], **client_kwargs) as client:
        with pytest.raises(SessionError) as caught:
            client.open_channel("direct_tcpip_ex", "127.0.0.1", closed_port, "127.0.0.1", 0,
                                deadline=None, action="opening a tunnel")
        assert client.is_connected()  # a refused channel leaves the connection up
    assert caught.value.host == hosts[0]
    assert caught.value.reason
    assert caught.value.reason in str(caught.value)


def test_libssh_clients_have_no_copy_methods_and_say_where_to_find_them(
        hosts, client_kwargs, closed_port):
    parallel = libssh.ParallelSSHClient(hosts[:1], **{**client_kwargs, "port": closed_port})
    assert not hasattr(parallel, "copy_file")
    with pytest.raises(NotImplementedError, match="pssh.clients.native"):
        parallel.scp_send("a", "b")
    with libssh.SSHClient(hosts[0], **client_kwargs) as single:
        assert not hasattr(single, "sftp_put")
        with pytest.raises(NotImplementedError, match=f"host '{hosts[0]}'.*native"):
            single.copy_file("a", "b")
