"""Jump host chains (``proxy_host='a,b'``, OpenSSH's ``ProxyJump``): each hop one shared
connection, a dead hop failing only the hosts behind it and named in their errors.

The hops are other addresses of the shared sshd, so every hop is a real SSH server that
forwards TCP to the next.
"""

from __future__ import annotations

import pytest

from pssh.clients.native import ParallelSSHClient, SSHClient
from pssh.clients.native._proxy import Hop, parse_jump_chain
from pssh.config import HostConfig
from pssh.exceptions import ProxyError


@pytest.fixture
def chain_kwargs(sshd, client_kwargs):
    """Client arguments reaching the targets through two jump hosts."""
    first, second = sshd.hosts[40], sshd.hosts[41]
    return {**client_kwargs, "proxy_host": f"{first},{second}", "proxy_port": sshd.port,
            "proxy_user": client_kwargs["user"], "proxy_pkey": client_kwargs["pkey"]}


def test_parse_jump_chain_reads_ssh_j_syntax():
    hops = parse_jump_chain("a, deploy@b:2222,[::1]:2200,[fe80::1]", 22)
    assert hops == (Hop("a", 22), Hop("b", 2222, "deploy"), Hop("::1", 2200),
                    Hop("fe80::1", 22))
    assert str(hops[1]) == "deploy@b:2222" and str(hops[2]) == "[::1]:2200"


@pytest.mark.parametrize("chain", ["a,,b", "a:0", "a:http", "@"])
def test_a_malformed_chain_is_refused_before_connecting(chain, client_kwargs, closed_port):
    kwargs = {**client_kwargs, "port": closed_port, "proxy_host": chain}
    with pytest.raises(ValueError, match="proxy_host"):
        ParallelSSHClient(["127.0.0.1"], **kwargs)
    with pytest.raises(ValueError, match="proxy_host"):
        SSHClient("127.0.0.1", **kwargs)


def test_commands_run_through_two_hops_sharing_each_hop(hosts, chain_kwargs):
    client = ParallelSSHClient(hosts[:3], **chain_kwargs)
    output = client.run_command("echo through")
    client.join(output)

    assert [list(out.stdout) for out in output] == [["through"]] * 3
    assert [out.exit_code for out in output] == [0, 0, 0]
    hops = {bastion.where for bastion in client._bastions.values()}
    assert len(client._bastions) == 2 and len(hops) == 2  # one connection per hop
    client.disconnect()


def test_a_single_client_goes_through_its_own_chain(hosts, chain_kwargs):
    with SSHClient(hosts[0], **chain_kwargs) as client:
        assert list(client.run_command("echo alone").stdout) == ["alone"]


def test_a_dead_middle_hop_fails_only_the_hosts_behind_it_naming_the_hop(
        sshd, hosts, client_kwargs, chain_kwargs, closed_port):
    dead = f"127.0.0.1:{closed_port}"
    # The first host's chain shares its first hop with the others' chain.
    config = [HostConfig(proxy_host=f"{sshd.hosts[40]},{dead}"), HostConfig(), HostConfig()]
    client = ParallelSSHClient(hosts[:3], **chain_kwargs, host_config=config)
    behind_dead, *behind_good = client.run_command("echo ok", stop_on_errors=False)
    client.join(behind_good)

    assert isinstance(behind_dead.exception, ProxyError)
    assert dead in str(behind_dead.exception)
    assert [list(out.stdout) for out in behind_good] == [["ok"], ["ok"]]
    client.disconnect()
