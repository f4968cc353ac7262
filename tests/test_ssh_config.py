"""OpenSSH client configuration: the pure reader against ``ssh -G``, and clients that
connect through an alias only a config file knows.

Every case of the table is resolved twice, by :class:`pssh._ssh_config.SSHConfig` and by
OpenSSH's ``ssh -G`` on the same file, and the keywords pssh maps must agree.
"""

from __future__ import annotations

import logging
import os
import shutil
import textwrap

import pytest

from pssh import _ssh_settings
from pssh._ssh_config import SSHConfig, SSHConfigError, lookup_with_ssh
from pssh._ssh_settings import host_settings

needs_ssh = pytest.mark.skipif(shutil.which("ssh") is None,
                               reason="no OpenSSH ssh program to compare with")

# (id, config text, host, {"user": ..., "port": ...}); {dir} is the case's directory.
CASES = [
    ("alias", """
        Host web
          HostName 127.0.0.5
          Port 2222
          User bob
          IdentityFile ~/.ssh/k1
          IdentityFile /tmp/k2
        """, "web", {}),
    ("first-match-wins", """
        Host web1
          Port 1
        Host web*
          Port 2
          User w
        Host *
          User everyone
          Port 3
        """, "web1", {}),
    ("question-mark", """
        Host web?
          User one
        Host *
          User other
        """, "web12", {}),
    ("negation", """
        Host *.b !bad.b
          User star
        """, "bad.b", {}),
    ("negation-passes-others", """
        Host *.b !bad.b
          User star
        """, "ok.b", {}),
    ("negation-only-never-matches", """
        Host !foo
          User never
        """, "bar", {}),
    ("host-word-with-comma-is-one-pattern", """
        Host db,x
          User comma
        Host x
          User plain
        """, "x", {}),
    ("host-patterns-are-case-sensitive", """
        Host webx
          User lower
        """, "WebX", {}),
    ("global-lines-first", """
        HostName %h.example.net
        Host foo
          HostName bar
        """, "foo", {}),
    ("include-glob-sorted", """
        Include {dir}/conf.d/*.conf
        Host *
          User last
        """, "web", {}),
    ("include-inside-block-that-does-not-apply", """
        Host other
          Include {dir}/inc
        Host *
          Port 4
        """, "web", {}),
    ("include-inside-block-that-applies", """
        Host web
          Include {dir}/inc
        """, "web", {}),
    ("match-host-sees-hostname", """
        Host short
          HostName %h.example.com
        Match host *.example.com
          Port 2300
        """, "short", {}),
    ("match-originalhost", """
        Host short
          HostName 10.0.0.1
        Match originalhost short
          User orig
        """, "short", {}),
    ("match-user-from-command-line", """
        Match user alice
          Port 2201
        Match user bob
          Port 2202
        """, "h", {"user": "bob"}),
    ("match-localuser-negated", """
        Match !localuser nobody-here
          User local-matched
        """, "h", {}),
    ("match-all", """
        Match all
          ConnectTimeout 1m30s
        """, "h", {}),
    ("match-final-and-host-on-hostname", """
        HostName 10.1.2.3
        Match final
          Port 9
        Host 10.1.2.*
          User ip
        """, "foo", {}),
    ("match-host-list-with-negation", """
        Match host "a*,!ab*"
          User a-not-ab
        """, "abc", {}),
    ("match-host-list-passes", """
        Match host "a*,!ab*"
          User a-not-ab
        """, "acd", {}),
    ("tokens", """
        Host t
          HostName real.example
          User u1
          Port 2022
          UserKnownHostsFile ~/kh_%h_%p_%r_%n_%u_%d_%% /tmp/%C
          IdentityFile ~/.ssh/id_%h_%r
          IdentityAgent ~/agent_%h
          CertificateFile ~/c1_%h
          CertificateFile /tmp/c2
        """, "t", {}),
    ("proxyjump-first-wins-over-proxycommand", """
        Host j
          ProxyJump alice@bastion1:2200,bastion2
        Host *
          ProxyCommand nc %h %p
        """, "j", {}),
    ("proxycommand-first-wins-over-proxyjump", """
        Host j
          ProxyCommand nc %h %p
        Host *
          ProxyJump bastion
        """, "j", {}),
    ("proxyjump-none", """
        Host j
          ProxyJump none
        Host *
          ProxyJump bastion
        """, "j", {}),
    ("values", """
        Host v
          StrictHostKeyChecking accept-new
          Compression yes
          ServerAliveInterval 2m
          ServerAliveCountMax 5
          AddressFamily inet6
          BatchMode true
          IdentitiesOnly yes
          PasswordAuthentication no
          KbdInteractiveAuthentication false
          GlobalKnownHostsFile /etc/ssh/other_known_hosts
        """, "v", {}),
    ("strict-off", """
        StrictHostKeyChecking off
        """, "v", {}),
    ("syntax-equals-quotes-comments", """
        # a comment
        HOST = s
          Port=2022
          User "a b"
          HostName = quoted.example # trailing comment
        """, "s", {}),
    ("command-line-port-wins", """
        Port 2222
        """, "p", {"port": 2200}),
]

INCLUDED = {
    "conf.d/20-b.conf": "Host web\n  Port 2020\n",
    "conf.d/10-a.conf": "Host web\n  User from-a\n",
    "inc": "Host *\n  User included\n",
}


def _write_case(tmp_path, text):
    for name, content in INCLUDED.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    config = tmp_path / "config"
    config.write_text(textwrap.dedent(text).replace("{dir}", str(tmp_path)))
    return str(config)


@needs_ssh
@pytest.mark.parametrize(("text", "host", "args"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_pure_reader_resolves_as_ssh_g_does(tmp_path, text, host, args):
    path = _write_case(tmp_path, text)
    ours = SSHConfig((path,)).lookup(host, **args)
    ours.pop("_set")
    openssh = lookup_with_ssh(path, host, **args)
    assert ours == openssh


def test_identity_file_tokens_are_expanded_for_pssh(tmp_path):
    path = _write_case(tmp_path, CASES[[case[0] for case in CASES].index("tokens")][1])
    settings = host_settings(SSHConfig((path,)).lookup("t"))
    home = os.path.expanduser("~")
    assert settings.hostname == "real.example"
    assert settings.identity_files == (f"{home}/.ssh/id_real.example_u1",)
    assert settings.cert_files == (f"{home}/c1_real.example", "/tmp/c2")
    assert settings.user == "u1" and settings.port == 2022


def test_defaults_are_left_to_pssh(tmp_path):
    path = _write_case(tmp_path, "Host other\n  Port 1\n")
    settings = host_settings(SSHConfig((path,)).lookup("plain"))
    assert settings.identity_files == () and settings.user_known_hosts is None
    assert settings.strict_host_key_checking is None and settings.connect_timeout is None
    assert settings.compression is None and settings.proxy_jump == ()


def test_unsupported_keywords_are_listed(tmp_path):
    path = _write_case(tmp_path, """
        Host h
          ProxyCommand nc %h %p
          LocalForward 8080 localhost:80
          ControlMaster no
          ForwardX11 no
        """)
    settings = host_settings(SSHConfig((path,)).lookup("h"))
    assert set(settings.unsupported) == {"proxycommand", "localforward"}


def test_match_exec_is_not_run_unless_allowed(tmp_path, caplog):
    marker = tmp_path / "ran"
    path = _write_case(tmp_path, f'Match exec "touch {marker}"\n  Port 1111\n')
    with caplog.at_level(logging.WARNING, logger="pssh.ssh_config"):
        assert SSHConfig((path,)).lookup("h")["port"] == ["22"]
    assert not marker.exists()
    assert "Match exec is not evaluated" in caplog.text
    assert SSHConfig((path,), allow_exec=True).lookup("h")["port"] == ["1111"]
    assert marker.exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("Port 70000\n", "invalid port"),
    ("Compression maybe\n", "unsupported option"),
    ('User "open\n', "unterminated quote"),
    ("Match bogus x\n", "unsupported Match criterion"),
])
def test_bad_lines_name_file_and_line(tmp_path, text, expected):
    path = _write_case(tmp_path, "# first\n" + text)
    with pytest.raises(SSHConfigError, match=expected) as caught:
        SSHConfig((path,)).lookup("h")
    assert caught.value.path == path and caught.value.line == 2


def test_open_config_parses_once_and_rereads_a_changed_file(tmp_path):
    path = _write_case(tmp_path, "Port 1\n")
    first = _ssh_settings.open_config(path)
    assert _ssh_settings.open_config(path) is first
    os.utime(path, (1, 1))
    assert _ssh_settings.open_config(path) is not first
    with pytest.raises(SSHConfigError, match="no such file"):
        _ssh_settings.open_config(str(tmp_path / "missing"))
    with pytest.raises(TypeError):
        _ssh_settings.open_config(3)  # type: ignore[arg-type]


# -- clients connecting through a config file -------------------------------------------

def _alias_config(tmp_path, sshd, extra=""):
    """web-a and web-b: aliases of the shared sshd's first two addresses, known only to
    this file."""
    text = f"""
        Host web-a
          HostName {sshd.hosts[0]}
        Host web-b
          HostName {sshd.hosts[1]}
        {extra}
        Host web-*
          User {sshd.user}
          Port {sshd.port}
          IdentityFile {sshd.pkey}
          IdentitiesOnly yes
          UserKnownHostsFile {tmp_path}/known_hosts
          StrictHostKeyChecking accept-new
        """
    path = tmp_path / "ssh_config"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_parallel_client_connects_through_aliases(engine, sshd, tmp_path):
    path = _alias_config(tmp_path, sshd)
    client = engine.ParallelSSHClient(["web-a", "web-b"], ssh_config=path, num_retries=0,
                                      timeout=10)
    try:
        output = client.run_command("echo $SSH_CONNECTION")
        client.join(output, timeout=30)
    finally:
        client.disconnect()
    assert [host_out.host for host_out in output] == ["web-a", "web-b"]
    assert [host_out.exit_code for host_out in output] == [0, 0]
    # The server saw the HostName addresses; the known_hosts file is the config's, keyed
    # by address and port, as OpenSSH writes it.
    seen = [list(host_out.stdout)[0].split()[2] for host_out in output]
    assert seen == sshd.hosts[:2]
    known = (tmp_path / "known_hosts").read_text()
    assert f"[{sshd.hosts[0]}]:{sshd.port} " in known
    assert f"[{sshd.hosts[1]}]:{sshd.port} " in known


def test_single_client_connects_through_an_alias(engine, sshd, tmp_path):
    path = _alias_config(tmp_path, sshd)
    client = engine.SSHClient("web-b", ssh_config=path, num_retries=0, timeout=10)
    try:
        host_out = client.run_command("echo hello")
        client.wait_finished(host_out, timeout=30)
        assert list(host_out.stdout) == ["hello"]
        assert host_out.host == "web-b"
    finally:
        client.disconnect()


def test_without_ssh_config_an_alias_is_not_resolved(engine, sshd):
    from pssh.exceptions import UnknownHostError
    with pytest.raises(UnknownHostError, match="web-a"):
        engine.SSHClient("web-a", num_retries=0, timeout=10, **{
            key: value for key, value in sshd.client_kwargs().items()
            if key not in ("num_retries", "timeout")})


def test_explicit_arguments_and_host_config_win(engine, sshd, tmp_path, closed_port):
    from pssh.config import HostConfig
    path = _alias_config(tmp_path, sshd, extra=f"""
        Host web-*
          Port {closed_port}
          User nobody-here
        """)
    client = engine.ParallelSSHClient(
        ["web-a", "web-b"], ssh_config=path, user=sshd.user, num_retries=0, timeout=10,
        host_config=[HostConfig(port=sshd.port), HostConfig(port=sshd.port)])
    try:
        output = client.run_command("whoami")
        client.join(output, timeout=30)
    finally:
        client.disconnect()
    assert [list(host_out.stdout) for host_out in output] == [[sshd.user]] * 2
    single = engine.SSHClient("web-a", ssh_config=path, port=sshd.port, user=sshd.user,
                              num_retries=0, timeout=10)
    try:
        assert single.port == sshd.port and single.user == sshd.user
    finally:
        single.disconnect()


def test_unsupported_keyword_is_logged_once_naming_the_hosts(engine, sshd, tmp_path,
                                                             caplog):
    path = _alias_config(tmp_path, sshd, extra="""
        Host web-*
          LocalForward 18080 localhost:80
        """)
    hosts = [f"web-log-{engine.__name__.rsplit('.', 1)[1]}-{i}" for i in range(2)]
    with open(path, "a") as file:
        for host in hosts:
            file.write(f"Host {host}\n  HostName {sshd.hosts[0]}\n")
    with caplog.at_level(logging.WARNING, logger="pssh.ssh_config"):
        for _ in range(2):
            engine.ParallelSSHClient(hosts, ssh_config=path, num_retries=0, timeout=10)
    records = [record.getMessage() for record in caplog.records
               if "localforward" in record.getMessage()]
    assert len(records) == 1
    assert all(host in records[0] for host in hosts)
    assert "cannot honour" in records[0]


def test_host_config_from_ssh_config(engine, sshd, tmp_path):
    from pssh.config import HostConfig
    path = _alias_config(tmp_path, sshd)
    config = HostConfig.from_ssh_config("web-a", path)
    assert config.hostname == sshd.hosts[0]
    assert (config.user, config.port) == (sshd.user, sshd.port)
    assert config.identity_files == (sshd.pkey,)
    assert config.allow_agent is False
    assert config.host_key_policy == "accept-new"
    client = engine.ParallelSSHClient(["web-a"], host_config=[config], num_retries=0,
                                      timeout=10)
    try:
        output = client.run_command("echo via-host-config")
        client.join(output, timeout=30)
    finally:
        client.disconnect()
    assert list(output[0].stdout) == ["via-host-config"]
    assert output[0].host == "web-a"
