"""A whole OpenSSH client configuration, as a user's own: Include, Match, wildcards and a
two-hop ProxyJump over two bastions run by separate sshd processes, resolved as
``ssh -G`` resolves it, and connected through on the default engine."""

from __future__ import annotations

import pytest

from pssh._ssh_config import SSHConfig, lookup_with_ssh
from pssh.clients.native import ParallelSSHClient, SSHClient


@pytest.fixture
def config_file(sshd, tmp_path):
    """Targets ``app-1``/``app-2`` behind ``edge`` then ``core``; the hops' own blocks are
    in an included file. The bastions are addresses of two different sshd processes."""
    pkey, user, port = sshd.pkey, sshd.user, sshd.port
    edge, core = sshd.hosts[40], sshd.hosts[70]
    assert sshd.pid_of(edge) != sshd.pid_of(core)
    (tmp_path / "bastions.conf").write_text(
        f"Host edge\n    HostName {edge}\n    IdentityFile {pkey}\n"
        f"Host core\n    HostName {core}\n")
    path = tmp_path / "config"
    path.write_text(
        f"Include {tmp_path}/bastions.conf\n"
        f"Match originalhost app-1\n    HostName {sshd.hosts[0]}\n"
        f"Match originalhost app-2\n    HostName {sshd.hosts[1]}\n"
        f"Host app-* !app-0\n    ProxyJump edge,core\n    IdentityFile {pkey}\n"
        f"Host *\n    User {user}\n    Port {port}\n    IdentitiesOnly yes\n")
    return str(path)


def test_the_configuration_resolves_as_ssh_g_does(config_file):
    ours = SSHConfig([config_file]).lookup("app-2")
    theirs = lookup_with_ssh(config_file, "app-2")
    for keyword in ("hostname", "user", "port", "proxyjump", "identityfile"):
        assert ours[keyword] == theirs[keyword], keyword


def test_commands_run_through_the_two_hop_jump_of_the_configuration(sshd, config_file):
    client = ParallelSSHClient(["app-1", "app-2"], ssh_config=config_file,
                               num_retries=0, timeout=10)
    output = client.run_command("echo $SSH_CONNECTION")
    client.join(output)

    assert [out.host for out in output] == ["app-1", "app-2"]
    assert [list(out.stdout)[0].split()[2] for out in output] == sshd.hosts[:2]
    hops = sorted(bastion.where for bastion in client._bastions.values())
    assert hops == sorted(f"{sshd.user}@{address}:{sshd.port}"
                          for address in (sshd.hosts[40], sshd.hosts[70]))
    client.disconnect()


def test_a_single_client_takes_the_same_jump(config_file):
    with SSHClient("app-1", ssh_config=config_file, num_retries=0, timeout=10) as client:
        assert list(client.run_command("echo through").stdout) == ["through"]
