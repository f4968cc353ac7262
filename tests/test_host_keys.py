"""Host key verification: the known_hosts parser on its own, then both engines against a
real sshd (unknown, changed, hashed, ``[host]:port``, wildcards, ``accept-new`` read back
by OpenSSH's own tools, ``@cert-authority``, ``@revoked``, proxies)."""

from __future__ import annotations

import base64
import multiprocessing
import os
import pickle
import subprocess
import time
from pathlib import Path

import pytest
from conftest import NATIVE_ONLY, assert_names_host, keygen

from pssh._known_hosts import (
    CHANGED,
    KNOWN,
    REVOKED,
    UNKNOWN,
    KnownHosts,
    check_known_hosts,
    check_policy,
    host_key_name,
)
from pssh._ssh_certs import fingerprint, parse_certificate, verify_signature
from pssh.config import HostConfig
from pssh.exceptions import HostKeyError, SSHError
from pssh.testing import LocalSSHD

# --- helpers -------------------------------------------------------------------------------


def blob_of(public_key_file: str | Path) -> bytes:
    """The key blob of an OpenSSH public key (or certificate) file."""
    return base64.b64decode(Path(public_key_file).read_text().split()[1])


def line_of(patterns: str, public_key_file: str | Path, marker: str = "") -> str:
    key_type, encoded = Path(public_key_file).read_text().split()[:2]
    return f"{marker + ' ' if marker else ''}{patterns} {key_type} {encoded}\n"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two ed25519 keys, an RSA key, an ed25519 CA and an RSA CA, each with a host
    certificate for "good.example" and "*.wild.example"."""
    folder = tmp_path_factory.mktemp("keys")
    made = {name: Path(keygen(folder / name, kind)) for name, kind in
            [("a", "ed25519"), ("b", "ed25519"), ("r", "rsa"), ("ca", "ed25519"),
             ("carsa", "rsa")]}
    for ca in ("ca", "carsa"):
        subprocess.run(["ssh-keygen", "-q", "-s", str(made[ca]), "-I", "test", "-h",
                        "-n", "good.example,*.wild.example", "-V", "-1d:+1d",
                        str(made["a"]) + ".pub"], check=True)
        os.rename(str(made["a"]) + "-cert.pub", folder / f"a-{ca}-cert.pub")
    return {**{name: Path(str(path) + ".pub") for name, path in made.items()},
            "cert": folder / "a-ca-cert.pub", "cert_rsa": folder / "a-carsa-cert.pub"}


def known(tmp_path: Path, *lines: str) -> KnownHosts:
    path = tmp_path / "known_hosts"
    path.write_text("".join(lines))
    return KnownHosts([str(path)])


# --- the parser and lookups, without a server -------------------------------------------


def test_fingerprint_is_what_ssh_keygen_prints(keys):
    printed = subprocess.run(["ssh-keygen", "-lf", str(keys["a"])], capture_output=True,
                             text=True, check=True).stdout.split()[1]
    assert fingerprint(blob_of(keys["a"])) == printed


def test_name_is_host_for_port_22_else_bracketed():
    assert host_key_name("Host.Example", 22) == "host.example"
    assert host_key_name("10.0.0.1", 2222) == "[10.0.0.1]:2222"


def test_plain_entry_known_changed_unknown(tmp_path, keys):
    hosts = known(tmp_path, "# comment\n\n", line_of("alpha,beta", keys["a"]))
    assert hosts.check("beta", 22, blob_of(keys["a"])).status == KNOWN
    changed = hosts.check("ALPHA", 22, blob_of(keys["b"]))
    assert changed.status == CHANGED
    assert (changed.line.path, changed.line.line) == (str(tmp_path / "known_hosts"), 3)
    assert changed.line.fingerprint == fingerprint(blob_of(keys["a"]))
    assert hosts.check("gamma", 22, blob_of(keys["a"])).status == UNKNOWN
    assert hosts.check("alpha", 2222, blob_of(keys["a"])).status == UNKNOWN


def test_known_hosts_sent_to_another_process_reads_its_files_again(tmp_path, keys):
    hosts = known(tmp_path, line_of("alpha", keys["a"]))
    copy = pickle.loads(pickle.dumps(hosts))
    assert (copy.paths, copy.lines) == (hosts.paths, 1)
    assert copy.check("alpha", 22, blob_of(keys["a"])).status == KNOWN


def test_a_different_key_type_for_a_listed_host_is_a_change(tmp_path, keys):
    hosts = known(tmp_path, line_of("alpha", keys["a"]))
    assert hosts.check("alpha", 22, blob_of(keys["r"])).status == CHANGED
    assert hosts.key_types("alpha", 22) == ["ssh-ed25519"]


def test_bracketed_port_entries(tmp_path, keys):
    hosts = known(tmp_path, line_of("[alpha]:2222", keys["a"]))
    assert hosts.check("alpha", 2222, blob_of(keys["a"])).status == KNOWN
    assert hosts.check("alpha", 22, blob_of(keys["a"])).status == UNKNOWN
    assert hosts.check("alpha", 2223, blob_of(keys["b"])).status == UNKNOWN


def test_wildcards_and_negation(tmp_path, keys):
    hosts = known(tmp_path, line_of("*.example.com,!bad.example.com,h?st", keys["a"]),
                  line_of("[*.example.org]:*", keys["b"]))
    a, b = blob_of(keys["a"]), blob_of(keys["b"])
    assert hosts.check("web.example.com", 22, a).status == KNOWN
    assert hosts.check("host", 22, a).status == KNOWN
    assert hosts.check("hoost", 22, a).status == UNKNOWN
    assert hosts.check("bad.example.com", 22, a).status == UNKNOWN
    assert hosts.check("web.example.org", 2222, b).status == KNOWN
    assert hosts.check("web.example.com", 22, b).status == CHANGED


def test_hashed_entries_from_ssh_keygen(tmp_path, keys):
    path = tmp_path / "known_hosts"
    path.write_text(line_of("alpha", keys["a"]) + line_of("[beta]:2200", keys["b"]))
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(path)], check=True,
                   capture_output=True)
    assert "alpha" not in path.read_text()
    hosts = KnownHosts([str(path)])
    assert hosts.check("alpha", 22, blob_of(keys["a"])).status == KNOWN
    assert hosts.check("beta", 2200, blob_of(keys["b"])).status == KNOWN
    assert hosts.check("beta", 2200, blob_of(keys["a"])).status == CHANGED
    assert hosts.check("beta", 22, blob_of(keys["b"])).status == UNKNOWN


def test_revoked_key_is_refused_even_when_listed(tmp_path, keys):
    hosts = known(tmp_path, line_of("alpha", keys["a"]), line_of("*", keys["a"], "@revoked"))
    verdict = hosts.check("alpha", 22, blob_of(keys["a"]))
    assert verdict.status == REVOKED and verdict.line.line == 2


@pytest.mark.parametrize("cert", ["cert", "cert_rsa"])
def test_host_certificate_signed_by_listed_authority(tmp_path, keys, cert):
    ca = "ca" if cert == "cert" else "carsa"
    hosts = known(tmp_path, line_of("*.example", keys[ca], "@cert-authority"))
    blob = blob_of(keys[cert])
    assert hosts.check("good.example", 22, blob).status == KNOWN
    assert hosts.check("x.wild.example", 22, blob).status == KNOWN
    not_principal = hosts.check("other.example", 22, blob)
    assert not_principal.status == UNKNOWN and "principals" in not_principal.note
    expired = hosts.check("good.example", 22, blob, now=time.time() + 3 * 86400)
    assert expired.status == UNKNOWN and "not valid" in expired.note


def test_forged_or_foreign_certificates_are_not_accepted(tmp_path, keys):
    cert = parse_certificate(blob_of(keys["cert"]))
    assert verify_signature(cert.signature_key, cert.signature, cert.signed_data)
    assert not verify_signature(cert.signature_key, cert.signature,
                                cert.signed_data[:-1] + b"x")
    other_ca = known(tmp_path, line_of("*", keys["carsa"], "@cert-authority"))
    assert other_ca.check("good.example", 22, blob_of(keys["cert"])).status == UNKNOWN
    # A listed CA does not make the plain key known; the plain key's own line does.
    listed_plain = known(tmp_path, line_of("*", keys["ca"], "@cert-authority"),
                         line_of("good.example", keys["b"]))
    assert listed_plain.check("good.example", 22, blob_of(keys["a"])).status == CHANGED
    revoked_ca = known(tmp_path, line_of("*", keys["ca"], "@cert-authority"),
                       line_of("*", keys["ca"], "@revoked"))
    assert revoked_ca.check("good.example", 22, blob_of(keys["cert"])).status == REVOKED


def test_bad_lines_are_skipped_and_missing_files_are_empty(tmp_path, keys):
    hosts = known(tmp_path, "garbage\n", "alpha ssh-ed25519 !!notbase64\n",
                  "@unknown-marker alpha ssh-ed25519 AAAA\n", line_of("alpha", keys["a"]))
    assert hosts.lines == 1 and hosts.skipped == 3
    assert KnownHosts([str(tmp_path / "missing")]).check(
        "alpha", 22, blob_of(keys["a"])).status == UNKNOWN


def test_settings_are_validated():
    assert check_known_hosts("~/kh") == (os.path.expanduser("~/kh"),)
    assert check_known_hosts(None) is None
    with pytest.raises(TypeError):
        check_known_hosts(3)
    with pytest.raises(ValueError, match="host_key_policy"):
        check_policy("yes")


def test_lookup_does_not_scan_plain_lines(tmp_path, keys):
    lines = [line_of(f"host{index}.example", keys["b"]) for index in range(10_000)]
    hosts = known(tmp_path, *lines, line_of("target.example", keys["a"]))
    assert hosts.lines == 10_001
    assert hosts.lines_for("target.example")[0].line == 10_001
    assert len(hosts._by_name) == 10_001 and not hosts._wild and not hosts._hashed


def test_add_writes_lines_ssh_keygen_finds(tmp_path, keys):
    path = tmp_path / "sub" / "known_hosts"
    hosts = KnownHosts([str(path)])
    path.parent.mkdir()
    path.write_text(line_of("old", keys["b"]).rstrip("\n"))  # no final newline
    hosts.add("127.0.0.9", 2222, blob_of(keys["a"]))
    hosts.add("127.0.0.9", 2222, blob_of(keys["a"]))  # already added: not written again
    assert hosts.check("127.0.0.9", 2222, blob_of(keys["a"])).status == KNOWN
    found = subprocess.run(["ssh-keygen", "-F", "[127.0.0.9]:2222", "-f", str(path)],
                           capture_output=True, text=True)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout
    assert len(path.read_text().splitlines()) == 2
    assert KnownHosts([str(path)]).lines == 2


def _add_many(path: str, start: int, blob: bytes) -> None:
    hosts = KnownHosts([path])
    for index in range(start, start + 250):
        hosts.add(f"10.0.{index // 250}.{index % 250}", 2222, blob)


def test_concurrent_writers_in_several_processes_give_whole_lines(tmp_path, keys):
    path = str(tmp_path / "known_hosts")
    blob = blob_of(keys["r"])
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(path, start, blob))
               for start in (0, 250)]
    for worker in workers:
        worker.start()
    _add_many(path, 500, blob)
    for worker in workers:
        worker.join(60)
    lines = Path(path).read_text().splitlines()
    assert len(lines) == 750 and len(set(lines)) == 750
    reread = KnownHosts([path])
    assert reread.lines == 750 and reread.skipped == 0


# --- both engines against the real sshd -----------------------------------------------------


def server_line(sshd, host: str, key: str = "host_ed25519", marker: str = "") -> str:
    """A known_hosts line for ``host`` on the test sshd's port with one of its keys."""
    return line_of(f"[{host}]:{sshd.port}", os.path.join(sshd.workdir, key + ".pub"), marker)


def connect(engine, host, client_kwargs, **settings):
    client = engine.SSHClient(host, **client_kwargs, **settings)
    output = client.run_command("echo ok")
    assert list(output.stdout) == ["ok"]
    client.disconnect()


def test_unknown_host_under_each_policy(engine, hosts, client_kwargs, tmp_path, caplog):
    path = tmp_path / "known_hosts"
    for policy in ("accept-unknown", "warn", "off"):
        caplog.clear()
        connect(engine, hosts[0], client_kwargs, known_hosts=str(path),
                host_key_policy=policy)
        warned = [r for r in caplog.records if r.levelname == "WARNING"
                  and "not in known_hosts" in r.getMessage()]
        assert bool(warned) == (policy == "warn")
    assert not path.exists()
    with pytest.raises(HostKeyError) as refused:
        connect(engine, hosts[0], client_kwargs, known_hosts=str(path),
                host_key_policy="strict")
    assert refused.value.reason == "unknown" and refused.value.fingerprint.startswith("SHA256:")
    assert_names_host(refused.value, hosts[0], client_kwargs["port"])
    assert not path.exists()


def test_changed_key_refused_by_default_and_strict_accepted_when_off(
        engine, sshd, hosts, client_kwargs, tmp_path, keys, caplog):
    path = tmp_path / "known_hosts"
    path.write_text("# mine\n" + line_of(f"[{hosts[0]}]:{sshd.port}", keys["b"]))
    for policy in ("accept-unknown", "strict", "accept-new", "warn"):
        caplog.clear()
        with pytest.raises(HostKeyError) as refused:
            connect(engine, hosts[0], {**client_kwargs, "num_retries": 2},
                    known_hosts=str(path), host_key_policy=policy)
        error = refused.value
        assert error.reason == "changed"
        assert (error.known_hosts_file, error.known_hosts_line) == (str(path), 2)
        assert error.expected_fingerprint == fingerprint(blob_of(keys["b"]))
        assert error.fingerprint == fingerprint(blob_of(f"{sshd.workdir}/host_ed25519.pub"))
        assert error.expected_fingerprint in str(error) and error.fingerprint in str(error)
        assert f"{path} line 2" in str(error)
        assert not [r for r in caplog.records if "retry" in r.getMessage()]
    connect(engine, hosts[0], client_kwargs, known_hosts=str(path), host_key_policy="off")
    connect(engine, hosts[0], client_kwargs, known_hosts=None)


def test_second_server_with_another_key_on_the_same_address_is_refused(
        engine, hosts, client_kwargs, tmp_path):
    path = tmp_path / "known_hosts"
    with LocalSSHD(first_address=240) as first:
        kwargs = {**client_kwargs, **first.client_kwargs()}
        connect(engine, first.hosts[0], kwargs, known_hosts=str(path),
                host_key_policy="accept-new")
        port = first.port
    with LocalSSHD(first_address=240, port=port) as rotated:  # new keys, same address
        with pytest.raises(HostKeyError, match="line 1"):
            connect(engine, rotated.hosts[0], {**kwargs, **rotated.client_kwargs()},
                    known_hosts=str(path))


def test_key_of_another_type_on_file_is_the_one_negotiated(engine, sshd, hosts,
                                                           client_kwargs, tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(server_line(sshd, hosts[0], "host_rsa"))
    connect(engine, hosts[0], client_kwargs, known_hosts=str(path), host_key_policy="strict")


def test_hashed_bracketed_wildcard_and_negated_entries(engine, sshd, hosts, client_kwargs,
                                                       tmp_path):
    hashed = tmp_path / "hashed"
    hashed.write_text(server_line(sshd, hosts[0]))
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True,
                   capture_output=True)
    assert hosts[0] not in hashed.read_text()
    connect(engine, hosts[0], client_kwargs, known_hosts=str(hashed),
            host_key_policy="strict")
    key = os.path.join(sshd.workdir, "host_ed25519.pub")
    wild = tmp_path / "wild"
    wild.write_text(line_of(f"[127.0.0.*]:{sshd.port},![{hosts[1]}]:{sshd.port}", key))
    connect(engine, hosts[0], client_kwargs, known_hosts=[str(hashed), str(wild)],
            host_key_policy="strict")
    connect(engine, hosts[2], client_kwargs, known_hosts=str(wild), host_key_policy="strict")
    with pytest.raises(HostKeyError, match="not in known_hosts"):
        connect(engine, hosts[1], client_kwargs, known_hosts=str(wild),
                host_key_policy="strict")


def test_revoked_key_is_refused(engine, sshd, hosts, client_kwargs, tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(server_line(sshd, hosts[0]) +
                    line_of("*", os.path.join(sshd.workdir, "host_ed25519.pub"), "@revoked"))
    with pytest.raises(HostKeyError, match="@revoked") as refused:
        connect(engine, hosts[0], client_kwargs, known_hosts=str(path))
    assert refused.value.reason == "revoked" and refused.value.known_hosts_line == 2


def test_accept_new_writes_lines_openssh_reads(engine, sshd, hosts, client_kwargs, tmp_path):
    path = tmp_path / "dir" / "known_hosts"
    connect(engine, hosts[0], client_kwargs, known_hosts=str(path),
            host_key_policy="accept-new")
    name = f"[{hosts[0]}]:{sshd.port}"
    found = subprocess.run(["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True,
                           text=True)
    assert found.returncode == 0 and name in found.stdout
    ssh = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={path}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
         "-o", "IdentitiesOnly=yes", "-F", "/dev/null", "-i", sshd.pkey,
         "-p", str(sshd.port), f"{sshd.user}@{hosts[0]}", "echo from-openssh"],
        capture_output=True, text=True, timeout=30)
    assert ssh.stdout.strip() == "from-openssh", ssh.stderr
    connect(engine, hosts[0], client_kwargs, known_hosts=str(path), host_key_policy="strict")
    assert len(path.read_text().splitlines()) == 1


def test_many_hosts_at_once_with_accept_new(engine, sshd, client_kwargs, tmp_path):
    path = tmp_path / "known_hosts"
    hosts = sshd.hosts[:60]
    client = engine.ParallelSSHClient(hosts, **client_kwargs, known_hosts=str(path),
                                      host_key_policy="accept-new", pool_size=60)
    output = client.run_command("true", stop_on_errors=False)
    client.join()
    assert [host_out.exception for host_out in output] == [None] * len(hosts)
    lines = path.read_text().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(
        f"[{host}]:{sshd.port}" for host in hosts)
    reread = KnownHosts([str(path)])
    assert reread.lines == len(hosts) and reread.skipped == 0
    client.disconnect()


def test_refused_host_fails_alone_with_per_host_policy(engine, sshd, hosts, client_kwargs,
                                                       tmp_path):
    path = tmp_path / "known_hosts"
    path.write_text(server_line(sshd, hosts[0]))
    client = engine.ParallelSSHClient(
        hosts[:3], **client_kwargs, known_hosts=str(path),
        host_config=[HostConfig(), HostConfig(host_key_policy="strict"),
                     HostConfig(host_key_policy="strict", known_hosts=str(tmp_path / "x"))])
    files = client._client_settings(0)["known_hosts"]
    assert client._client_settings(1)["known_hosts"] is files  # parsed once, shared
    output = client.run_command("echo ok", stop_on_errors=False)
    assert list(output[0].stdout) == ["ok"]
    assert isinstance(output[1].exception, HostKeyError)
    assert isinstance(output[2].exception, HostKeyError)
    client.disconnect()


@pytest.mark.parametrize("settings", [{"host_key_policy": "yes"}, {"known_hosts": 5},
                                      {"known_hosts": None, "host_key_policy": "strict"}])
def test_bad_settings_refused_before_connecting(engine, closed_port, client_kwargs,
                                                settings):
    kwargs = {**client_kwargs, "port": closed_port}
    with pytest.raises((ValueError, TypeError)):
        engine.ParallelSSHClient(["127.0.0.1"], **kwargs, **settings)
    with pytest.raises((ValueError, TypeError)):
        engine.SSHClient("127.0.0.1", **kwargs, **settings)
    with pytest.raises(ValueError):
        HostConfig(host_key_policy="never")


@pytest.fixture(scope="module")
def cert_sshd(tmp_path_factory):
    """A LocalSSHD whose ed25519 host key has a host certificate signed by its own CA."""
    workdir = tmp_path_factory.mktemp("cert-sshd")
    keygen(workdir / "host_ed25519")
    ca = keygen(workdir / "host_ca")
    subprocess.run(["ssh-keygen", "-q", "-s", ca, "-I", "sshd", "-h", "-n", "127.0.0.245",
                    str(workdir / "host_ed25519.pub")], check=True)
    server = LocalSSHD(first_address=245, workdir=str(workdir), extra_config={
        "HostCertificate": str(workdir / "host_ed25519-cert.pub")})
    with server:
        yield server


def test_cert_authority_line(engine, cert_sshd, tmp_path):
    """OpenSSH's ssh accepts the server by its certificate; neither library negotiates
    host certificates (libssh2 fails the key exchange, libssh shows the plain key), so
    pssh sees the plain key: a CA line alone leaves the host unknown, never accepted on
    the CA's word without a verified certificate."""
    host = cert_sshd.hosts[0]
    path = tmp_path / "known_hosts"
    path.write_text(line_of("127.0.0.*", Path(cert_sshd.workdir) / "host_ca.pub",
                            "@cert-authority"))
    ssh = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={path}",
         "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
         "-F", "/dev/null", "-i", cert_sshd.pkey, "-p", str(cert_sshd.port),
         f"{cert_sshd.user}@{host}", "echo cert-ok"], capture_output=True, text=True,
        timeout=30)
    assert ssh.stdout.strip() == "cert-ok", ssh.stderr
    with pytest.raises(HostKeyError, match="not in known_hosts"):
        connect(engine, host, cert_sshd.client_kwargs(), known_hosts=str(path),
                host_key_policy="strict")
    with path.open("a") as known_hosts:
        known_hosts.write(server_line(cert_sshd, host))
    connect(engine, host, cert_sshd.client_kwargs(), known_hosts=str(path),
            host_key_policy="strict")


@NATIVE_ONLY
@pytest.mark.parametrize("make", ["single", "parallel"])
def test_proxy_host_key_is_checked(engine, sshd, hosts, client_kwargs, tmp_path, keys, make):
    path = tmp_path / "known_hosts"
    path.write_text(server_line(sshd, hosts[0]) +
                    line_of(f"[{hosts[1]}]:{sshd.port}", keys["b"]))
    settings = {**client_kwargs, "proxy_host": hosts[1], "proxy_port": sshd.port,
                "proxy_pkey": sshd.pkey, "known_hosts": str(path)}
    with pytest.raises(SSHError) as refused:
        if make == "single":
            engine.SSHClient(hosts[0], **settings)
        else:
            engine.ParallelSSHClient([hosts[0]], **settings).run_command("true")
    error, causes = refused.value, []
    while error is not None:
        causes.append(error)
        error = error.__cause__
    assert any(isinstance(each, HostKeyError) and each.host == hosts[1] for each in causes)
    path.write_text(server_line(sshd, hosts[0]) + server_line(sshd, hosts[1]))
    settings["host_key_policy"] = "strict"
    connect(engine, hosts[0], {}, **settings)
