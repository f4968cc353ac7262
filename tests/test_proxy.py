"""Connecting through a bastion: a second sshd acts as the proxy for the shared sshd's
hosts, so each test can count and kill the bastion's own connections."""

from __future__ import annotations

import os
import signal

import gevent
import pytest
from conftest import process_table, wait_for_exit

from pssh.clients import ParallelSSHClient, SSHClient
from pssh.config import HostConfig
from pssh.exceptions import PKeyFileError, ProxyError
from pssh.testing import LocalSSHD

SERVER_ADDRESS = "echo $SSH_CONNECTION | cut -d' ' -f3"


@pytest.fixture(scope="module")
def bastion():
    server = LocalSSHD(num_hosts=1, first_address=240, ipv6=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxy_kwargs(bastion):
    return {"proxy_host": bastion.hosts[0], "proxy_port": bastion.port,
            "proxy_user": bastion.user, "proxy_pkey": bastion.pkey}


def _connections(server):
    """The sshd children serving connections to ``server``, one per connection."""
    return [pid for pid, parent in process_table().items() if parent == server.pid]


@pytest.fixture
def new_connections(bastion):
    """A function listing the bastion connections made since the test began.

    A connection of an earlier test may still be closing; it is not this test's to count.
    """
    before = set(_connections(bastion))
    return lambda: sorted(set(_connections(bastion)) - before)


def test_every_host_is_reached_through_one_bastion_connection(hosts, client_kwargs,
                                                              proxy_kwargs, new_connections):
    client = ParallelSSHClient(hosts[:5], **client_kwargs, **proxy_kwargs)

    output = client.run_command(SERVER_ADDRESS)
    client.join(output)

    assert [list(out.stdout) for out in output] == [[host] for host in hosts[:5]]
    connections = new_connections()
    assert len(connections) == 1
    client.disconnect()
    wait_for_exit(connections)


def test_single_client_through_proxy(hosts, client_kwargs, proxy_kwargs):
    with SSHClient(hosts[0], **client_kwargs, **proxy_kwargs) as client:
        output = client.run_command(SERVER_ADDRESS)
        client.wait_finished(output)

        assert list(output.stdout) == [hosts[0]]


def test_large_output_and_copies_through_proxy(hosts, client_kwargs, proxy_kwargs, tmp_path):
    client = ParallelSSHClient(hosts[:3], **client_kwargs, **proxy_kwargs)
    output = client.run_command("seq 1 200000")
    # Read host by host: the hosts not being read must not stall the one being read.
    assert [sum(1 for _ in out.stdout) for out in output] == [200000] * 3

    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3_000_000))
    copies = client.copy_file(str(source), str(tmp_path / "copy_%s.bin"),
                              copy_args=[(host,) for host in hosts[:3]])
    gevent.joinall(copies, raise_error=True)
    for host in hosts[:3]:
        assert (tmp_path / f"copy_{host}.bin").read_bytes() == source.read_bytes()


def test_per_host_proxy_from_host_config(hosts, client_kwargs, proxy_kwargs, new_connections):
    config = [HostConfig(**proxy_kwargs), HostConfig()]
    client = ParallelSSHClient(hosts[:2], host_config=config, **client_kwargs)

    output = client.run_command(SERVER_ADDRESS)
    client.join(output)

    assert [list(out.stdout) for out in output] == [[hosts[0]], [hosts[1]]]
    assert len(new_connections()) == 1
    assert client._host_clients[(0, hosts[0])]._bastion is not None
    assert client._host_clients[(1, hosts[1])]._bastion is None


def test_unreachable_bastion_is_a_proxy_error(hosts, client_kwargs, closed_port):
    client = ParallelSSHClient(hosts[:2], proxy_host="127.0.0.1", proxy_port=closed_port,
                               **client_kwargs)

    output = client.run_command("true", stop_on_errors=False)

    for out in output:
        assert isinstance(out.exception, ProxyError)
        assert f"127.0.0.1:{closed_port}" in str(out.exception)


def test_target_refused_by_bastion_names_target_and_proxy(bastion, client_kwargs,
                                                          proxy_kwargs, closed_port):
    with pytest.raises(ProxyError) as refused:
        SSHClient("127.0.0.1", **{**client_kwargs, "port": closed_port}, **proxy_kwargs)

    assert f"127.0.0.1:{closed_port}" in str(refused.value)
    assert bastion.hosts[0] in str(refused.value)


def test_bastion_dropping_mid_run_fails_its_hosts_with_proxy_error(bastion, hosts,
                                                                   client_kwargs,
                                                                   proxy_kwargs,
                                                                   new_connections):
    client = ParallelSSHClient(hosts[:3], **client_kwargs, **proxy_kwargs)
    output = client.run_command("sleep 30")
    # run_command returns once every command runs, so the bastion connection is there.
    connections = new_connections()
    assert len(connections) == 1

    os.kill(connections[0], signal.SIGKILL)
    client.join(output, timeout=20)

    for out in output:
        assert isinstance(out.exception, ProxyError), out.exception
        assert out.host in str(out.exception) and bastion.hosts[0] in str(out.exception)

    # The next command reconnects through a new bastion connection.
    output = client.run_command(SERVER_ADDRESS)
    client.join(output, timeout=20)
    assert [list(out.stdout) for out in output] == [[host] for host in hosts[:3]]


def test_bad_proxy_arguments_fail_before_connecting(hosts, client_kwargs, tmp_path):
    with pytest.raises(ValueError, match="port"):
        ParallelSSHClient(hosts[:1], proxy_host="127.0.0.1", proxy_port=0, **client_kwargs)
    with pytest.raises(PKeyFileError, match="does not exist"):
        ParallelSSHClient(hosts[:1], proxy_host="127.0.0.1",
                          proxy_pkey=str(tmp_path / "missing"), **client_kwargs)


def test_ipv6_only_reaches_the_bastion_over_ipv6(bastion, hosts, client_kwargs, proxy_kwargs):
    client = ParallelSSHClient(hosts[:2], ipv6_only=True,
                               **{**proxy_kwargs, "proxy_host": bastion.ipv6_host},
                               **client_kwargs)
    try:
        output = client.run_command(SERVER_ADDRESS)
        client.join(output, timeout=20)
        assert [list(out.stdout) for out in output] == [[host] for host in hosts[:2]]
        # The one bastion connection is an IPv6 one.
        (bastion_connection,) = [proxy.client for proxy in client._bastions.values()]
        remote = bastion_connection.run_command("echo $SSH_CONNECTION | cut -d' ' -f1")
        assert list(remote.stdout) == ["::1"]
    finally:
        client.disconnect()


def test_ipv6_only_applies_to_the_bastion_connection(hosts, client_kwargs, proxy_kwargs):
    client = ParallelSSHClient(hosts[:1], ipv6_only=True, **proxy_kwargs, **client_kwargs)
    try:
        output = client.run_command("true", stop_on_errors=False)
        error = output[0].exception
        assert isinstance(error, ProxyError)
        assert "IPv6" in str(error)
        assert proxy_kwargs["proxy_host"] in str(error)
    finally:
        client.disconnect()
