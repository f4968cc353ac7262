"""Arguments that are wrong are rejected before any connection is attempted.

Most cases point the client at a closed port: had the client tried to connect first, the
test would see a ConnectionError instead of the argument error it expects.
"""

from __future__ import annotations

import pytest

from pssh.clients import ParallelSSHClient, SSHClient
from pssh.exceptions import HostArgumentError, PKeyFileError

HOST = "127.0.0.1"


@pytest.fixture
def refused_kwargs(client_kwargs, closed_port):
    """Client arguments that work, except that nothing listens on the port."""
    return {**client_kwargs, "port": closed_port}


# --- hosts -------------------------------------------------------------------------------

@pytest.mark.parametrize("hosts", [HOST, HOST.encode(), None, 42])
def test_hosts_must_be_a_list(hosts, refused_kwargs):
    with pytest.raises(TypeError):
        ParallelSSHClient(hosts, **refused_kwargs)


def test_assigned_hosts_must_be_a_list(refused_kwargs):
    client = ParallelSSHClient([HOST], **refused_kwargs)

    with pytest.raises(TypeError):
        client.hosts = HOST

    assert client.hosts == [HOST]


def test_hosts_as_a_tuple_are_accepted(refused_kwargs):
    client = ParallelSSHClient((HOST, HOST), **refused_kwargs)

    assert list(client.hosts) == [HOST, HOST]


# --- timeouts ----------------------------------------------------------------------------

BAD_TIMEOUTS = [-1, -0.5, float("nan"), True]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_parallel_client_rejects_bad_timeout(timeout, refused_kwargs):
    with pytest.raises(ValueError) as caught:
        ParallelSSHClient([HOST], **{**refused_kwargs, "timeout": timeout})

    assert str(timeout) in str(caught.value)


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_single_client_rejects_bad_timeout(timeout, refused_kwargs):
    with pytest.raises(ValueError) as caught:
        SSHClient(HOST, **{**refused_kwargs, "timeout": timeout})

    assert str(timeout) in str(caught.value)


@pytest.fixture
def live_client(hosts, client_kwargs):
    return ParallelSSHClient(hosts[:1], **client_kwargs)


@pytest.mark.parametrize("timeout", [-1, float("nan")], ids=repr)
def test_join_rejects_bad_timeout(live_client, timeout):
    output = live_client.run_command("true")

    with pytest.raises(ValueError) as caught:
        live_client.join(output, timeout=timeout)

    assert str(timeout) in str(caught.value)
    live_client.join(output)
    assert output[0].exit_code == 0


@pytest.mark.parametrize("timeout", [-1, float("nan")], ids=repr)
def test_run_command_rejects_bad_read_timeout(live_client, timeout):
    with pytest.raises(ValueError) as caught:
        live_client.run_command("true", read_timeout=timeout)

    assert str(timeout) in str(caught.value)


def test_single_run_command_rejects_bad_read_timeout(hosts, client_kwargs):
    client = SSHClient(hosts[0], **client_kwargs)

    with pytest.raises(ValueError) as caught:
        client.run_command("true", read_timeout=float("nan"))

    assert "nan" in str(caught.value)
    client.disconnect()


def test_wait_finished_rejects_bad_timeout(hosts, client_kwargs):
    client = SSHClient(hosts[0], **client_kwargs)
    output = client.run_command("true")

    with pytest.raises(ValueError) as caught:
        client.wait_finished(output, timeout=-2)

    assert "-2" in str(caught.value)
    client.disconnect()


# --- ports and keys ----------------------------------------------------------------------

@pytest.mark.parametrize("port", [0, 70000, -22])
def test_parallel_client_rejects_bad_port(port, client_kwargs):
    with pytest.raises(ValueError) as caught:
        ParallelSSHClient([HOST], **{**client_kwargs, "port": port})

    assert str(port) in str(caught.value)


@pytest.mark.parametrize("port", [0, 70000])
def test_single_client_rejects_bad_port(port, client_kwargs):
    with pytest.raises(ValueError) as caught:
        SSHClient(HOST, **{**client_kwargs, "port": port})

    assert str(port) in str(caught.value)


def test_parallel_client_missing_key(refused_kwargs):
    with pytest.raises(PKeyFileError) as caught:
        ParallelSSHClient([HOST], **{**refused_kwargs, "pkey": "/nonexistent"})

    assert "/nonexistent" in str(caught.value)


def test_single_client_missing_key(refused_kwargs):
    with pytest.raises(PKeyFileError) as caught:
        SSHClient(HOST, **{**refused_kwargs, "pkey": "/nonexistent"})

    assert "/nonexistent" in str(caught.value)


def test_key_that_is_a_directory(refused_kwargs, tmp_path):
    with pytest.raises(PKeyFileError) as caught:
        SSHClient(HOST, **{**refused_kwargs, "pkey": str(tmp_path)})

    assert str(tmp_path) in str(caught.value)


# --- host_args ---------------------------------------------------------------------------

def test_host_args_shorter_than_hosts(refused_kwargs):
    client = ParallelSSHClient([HOST] * 3, **refused_kwargs)

    with pytest.raises(HostArgumentError):
        client.run_command("echo %s", host_args=("a", "b"))


def test_host_args_not_fitting_the_command(hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:2], **client_kwargs)

    with pytest.raises(HostArgumentError) as caught:
        client.run_command("echo %s %s", host_args=("a", "b"))

    assert "echo %s %s" in str(caught.value)
