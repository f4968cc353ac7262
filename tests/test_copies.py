"""File copies over SFTP and SCP, both directions, one host and many, against the local sshd.

The sshd runs on this machine, so a remote path is a local path: an upload is checked by
reading the file it made, and a download reads a file the test wrote. Every host is the
same machine, so uploads that run at the same time get one remote path per host through
``copy_args``; downloads get one local path per host from the host suffix.

Faults are real: files and directories that do not exist, an unprivileged account that
may not read or write, a 1 MB tmpfs that fills up, and the sshd processes of a
connection killed or stopped in the middle of a 100 MB copy.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pwd
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile

import gevent
import pytest
from conftest import connection_processes, signal_all, wait_for_exit, wait_until
from gevent import GreenletExit, joinall

from pssh.clients import ParallelSSHClient, SSHClient
from pssh.clients.base.parallel import HostResult
from pssh.exceptions import (
    ConnectionError,
    HostArgumentError,
    SCPError,
    SessionError,
    SFTPError,
    SFTPIOError,
    SSHError,
    Timeout,
)

MB = 1024 * 1024
SFTP = ("copy_file", "copy_remote_file")
SCP = ("scp_send", "scp_recv")
UPLOADS = ["copy_file", "scp_send"]
DOWNLOADS = ["copy_remote_file", "scp_recv"]
TEST_USER = "pssh-copytest"
UNICODE_DIR = "verzeichnis-ß-目录"
UNICODE_FILE = "daten-äöü-日本.txt"
TEXT = "Grüße aus Köln\r\nzweite Zeile\n\tmit Tab\n日本語のテキスト\nohne Zeilenende".encode()
# Every byte value, then an odd-sized random tail longer than one 1 MB chunk.
BINARY = bytes(range(256)) * 64 + os.urandom(MB + MB // 2 + 7)


@pytest.fixture(params=[SFTP, SCP], ids=["sftp", "scp"])
def methods(request):
    """The (upload, download) method names of one protocol."""
    return request.param


@pytest.fixture
def client(hosts, client_kwargs):
    client = SSHClient(hosts[0], **client_kwargs)
    yield client
    client.disconnect()


@pytest.fixture
def three_hosts(hosts):
    return hosts[:3]


@pytest.fixture
def parallel(three_hosts, client_kwargs):
    client = ParallelSSHClient(three_hosts, **client_kwargs)
    yield client
    client.disconnect()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """A 100 MB file of random bytes and its sha256, made once for the module."""
    directory = tmp_path_factory.mktemp("big")
    path = directory / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        for _ in range(100):
            block = os.urandom(MB)
            digest.update(block)
            file.write(block)
    yield str(path), digest.hexdigest()
    shutil.rmtree(directory, ignore_errors=True)


# --- helpers -----------------------------------------------------------------------------

def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)
    if mode is not None:
        os.chmod(path, mode)
    return str(path)


def _read(path):
    with open(path, "rb") as file:
        return file.read()


def _succeed(results):
    """Wait for every host; the first failure is raised as it is."""
    joinall(results, raise_error=True)
    assert [result.exception for result in results] == [None] * len(results)


def _errors(results):
    """Wait for every host without raising; each host's exception or None."""
    joinall(results)
    assert all(result.ready() for result in results)
    return [result.exception for result in results]


def _per_host(hosts, **fields):
    """copy_args: one dict per host with its name under ``host`` plus ``fields``."""
    return [{"host": host, **fields} for host in hosts]


def _make_host_dirs(root, hosts):
    """SCP creates no directories without recurse: make each host's remote directory."""
    for host in hosts:
        os.makedirs(os.path.join(root, host), exist_ok=True)


def _upload_to_each_host(client, method, local, remote_root, name, **kwargs):
    """Upload ``local`` to ``remote_root/<host>/name`` for every host; return those paths."""
    _make_host_dirs(remote_root, client.hosts)
    template = os.path.join(remote_root, "%(host)s", name)
    _succeed(getattr(client, method)(local, template, copy_args=_per_host(client.hosts),
                                     **kwargs))
    return [template % {"host": host} for host in client.hosts]


def _tree(root):
    """{relative path: file bytes, or None for a directory} of everything under root."""
    found = {}
    for top, dirs, files in os.walk(root):
        relative = os.path.relpath(top, root)
        for name in dirs:
            found[os.path.normpath(os.path.join(relative, name))] = None
        for name in files:
            found[os.path.normpath(os.path.join(relative, name))] = _read(
                os.path.join(top, name))
    return found


def _make_tree(root):
    """Files at several depths, an empty file and two empty directories."""
    _write(os.path.join(root, "top.txt"), TEXT)
    _write(os.path.join(root, "data.bin"), BINARY[:300_000])
    _write(os.path.join(root, "empty-file"), b"")
    _write(os.path.join(root, "a", "sibling.txt"), b"sibling\n")
    _write(os.path.join(root, "a", "b", "c", "deep.txt"), b"deep\n")
    os.makedirs(os.path.join(root, "a", "b", "empty-dir"))
    os.makedirs(os.path.join(root, "empty"))
    return str(root)


def _leftovers(directory):
    """Temporary download files left behind in ``directory``."""
    return [name for name in os.listdir(directory) if name.endswith(".pssh-part")]


def _assert_names(error, host, port, path):
    assert error.host == host
    assert error.port == port
    assert host in str(error)
    assert path in str(error)


def _no_traceback(capfd):
    assert "Traceback" not in capfd.readouterr().err


# --- round trips, every host at once -----------------------------------------------------

@pytest.mark.timeout(60)
def test_text_and_binary_files_round_trip(methods, parallel, tmp_path):
    upload, download = methods
    for name, data in (("text.txt", TEXT), ("data.bin", BINARY)):
        local = _write(tmp_path / "src" / name, data)

        remote = _upload_to_each_host(parallel, upload, local, str(tmp_path / "remote"), name)
        back = str(tmp_path / "back" / "%(host)s" / name)
        _succeed(getattr(parallel, download)(
            str(tmp_path / "remote" / "%(host)s" / name), back,
            copy_args=_per_host(parallel.hosts)))

        expected = hashlib.sha256(data).hexdigest()
        assert [_sha256(path) for path in remote] == [expected] * 3
        assert [_sha256(back % {"host": host}) for host in parallel.hosts] == [expected] * 3


def test_empty_file_round_trip(methods, parallel, tmp_path):
    upload, download = methods
    local = _write(tmp_path / "empty", b"")

    remote = _upload_to_each_host(parallel, upload, local, str(tmp_path / "remote"), "empty")
    _succeed(getattr(parallel, download)(local, str(tmp_path / "back" / "empty")))

    assert [_read(path) for path in remote] == [b""] * 3
    assert sorted(os.listdir(tmp_path / "back")) == sorted(
        f"empty_{host}" for host in parallel.hosts)
    assert all(_read(tmp_path / "back" / name) == b"" for name in os.listdir(tmp_path / "back"))


@pytest.mark.timeout(100)
def test_large_file_round_trip(methods, hosts, client_kwargs, big_file, tmp_path):
    upload, download = methods
    local, digest = big_file
    client = ParallelSSHClient(hosts[:2], **client_kwargs)
    try:
        remote = _upload_to_each_host(client, upload, local, str(tmp_path / "remote"), "big")
        assert [_sha256(path) for path in remote] == [digest] * 2
        for path in remote:
            os.unlink(path)

        _succeed(getattr(client, download)(local, str(tmp_path / "back" / "big")))
        copies = [tmp_path / "back" / f"big_{host}" for host in hosts[:2]]
        assert [_sha256(path) for path in copies] == [digest] * 2
        for path in copies:
            os.unlink(path)
    finally:
        client.disconnect()


def test_tree_round_trip_keeps_nested_and_empty_directories(methods, parallel, tmp_path):
    upload, download = methods
    source = _make_tree(tmp_path / "src")
    expected = _tree(source)
    assert expected["empty"] is None and expected[os.path.join("a", "b", "empty-dir")] is None

    _succeed(getattr(parallel, upload)(source, str(tmp_path / "remote" / "%(host)s" / "tree"),
                                       recurse=True, copy_args=_per_host(parallel.hosts)))
    _succeed(getattr(parallel, download)(source, str(tmp_path / "back" / "tree"),
                                         recurse=True))

    for host in parallel.hosts:
        assert _tree(tmp_path / "remote" / host / "tree") == expected
        assert _tree(tmp_path / "back" / f"tree_{host}") == expected


def test_unicode_file_and_directory_names(methods, parallel, tmp_path):
    upload, download = methods
    source_dir = tmp_path / "src" / UNICODE_DIR
    local = _write(source_dir / UNICODE_FILE, "Inhalt: äöü 日本\n".encode())

    remote_file = _upload_to_each_host(parallel, upload, local, str(tmp_path / "remote"),
                                       UNICODE_FILE)
    _succeed(getattr(parallel, upload)(str(source_dir),
                                       str(tmp_path / "tree" / "%(host)s" / UNICODE_DIR),
                                       recurse=True, copy_args=_per_host(parallel.hosts)))
    _succeed(getattr(parallel, download)(local, str(tmp_path / "back" / UNICODE_DIR /
                                                     UNICODE_FILE)))
    _succeed(getattr(parallel, download)(str(source_dir), str(tmp_path / "trees" / UNICODE_DIR),
                                         recurse=True))

    data = _read(local)
    assert [_read(path) for path in remote_file] == [data] * 3
    assert sorted(os.listdir(tmp_path / "back" / UNICODE_DIR)) == sorted(
        f"{UNICODE_FILE}_{host}" for host in parallel.hosts)
    for host in parallel.hosts:
        assert _tree(tmp_path / "tree" / host / UNICODE_DIR) == {UNICODE_FILE: data}
        assert _tree(tmp_path / "trees" / f"{UNICODE_DIR}_{host}") == {UNICODE_FILE: data}
        assert _read(tmp_path / "back" / UNICODE_DIR / f"{UNICODE_FILE}_{host}") == data


# --- per-host paths ----------------------------------------------------------------------

def test_copy_args_fill_both_paths(methods, parallel, tmp_path):
    upload, download = methods
    names = ["alpha", "beta", "gamma"]
    for name in names:
        _write(tmp_path / "src" / f"{name}.conf", f"config {name}\n".encode())
    copy_args = [{"host": host, "name": name, "unused": 0}
                 for host, name in zip(parallel.hosts, names)]
    _make_host_dirs(str(tmp_path / "remote"), parallel.hosts)

    _succeed(getattr(parallel, upload)(str(tmp_path / "src" / "%(name)s.conf"),
                                       str(tmp_path / "remote" / "%(host)s" / "app.conf"),
                                       copy_args=copy_args))
    _succeed(getattr(parallel, download)(str(tmp_path / "remote" / "%(host)s" / "app.conf"),
                                         str(tmp_path / "back" / "%(name)s-%(host)s.conf"),
                                         copy_args=copy_args))

    for host, name in zip(parallel.hosts, names):
        assert _read(tmp_path / "remote" / host / "app.conf") == f"config {name}\n".encode()
    # With copy_args the download paths are exactly the ones given: no host suffix.
    assert sorted(os.listdir(tmp_path / "back")) == sorted(
        f"{name}-{host}.conf" for host, name in zip(parallel.hosts, names))
    for host, name in zip(parallel.hosts, names):
        assert _read(tmp_path / "back" / f"{name}-{host}.conf") == f"config {name}\n".encode()


def test_copy_args_tuples_and_a_path_without_placeholders(methods, parallel, tmp_path):
    upload, download = methods
    local = _write(tmp_path / "src" / "same.txt", b"one source for all\n")
    copy_args = [(host,) for host in parallel.hosts]
    _make_host_dirs(str(tmp_path / "remote"), parallel.hosts)

    # The local path has no placeholder: every host gets the same file.
    _succeed(getattr(parallel, upload)(local, str(tmp_path / "remote" / "%s" / "same.txt"),
                                       copy_args=copy_args))
    # And the other way round: one remote path, a local path per host.
    _succeed(getattr(parallel, download)(local, str(tmp_path / "back" / "%s.txt"),
                                         copy_args=copy_args))

    for host in parallel.hosts:
        assert _read(tmp_path / "remote" / host / "same.txt") == b"one source for all\n"
    assert sorted(os.listdir(tmp_path / "back")) == sorted(
        f"{host}.txt" for host in parallel.hosts)


def test_scp_copy_args_with_local_file_and_remote_file_keys(parallel, tmp_path):
    # parallel-ssh's SCP methods took both paths from entries of this form.
    hosts = parallel.hosts
    for host in hosts:
        _write(tmp_path / "src" / f"{host}.txt", f"for {host}\n".encode())
    _make_host_dirs(str(tmp_path / "remote"), hosts)
    sends = [{"local_file": str(tmp_path / "src" / f"{host}.txt"),
              "remote_file": str(tmp_path / "remote" / host / "got.txt")} for host in hosts]
    receives = [{"remote_file": str(tmp_path / "remote" / host / "got.txt"),
                 "local_file": str(tmp_path / "back" / f"from-{host}.txt")} for host in hosts]

    _succeed(parallel.scp_send("ignored", "ignored", copy_args=sends))
    _succeed(parallel.scp_recv("ignored", "ignored", copy_args=receives))

    for host in hosts:
        assert _read(tmp_path / "remote" / host / "got.txt") == f"for {host}\n".encode()
    assert sorted(os.listdir(tmp_path / "back")) == sorted(f"from-{host}.txt" for host in hosts)
    for host in hosts:
        assert _read(tmp_path / "back" / f"from-{host}.txt") == f"for {host}\n".encode()


@pytest.mark.parametrize("method", UPLOADS + DOWNLOADS)
def test_copy_args_shorter_than_the_host_list(method, parallel, tmp_path):
    source = _write(tmp_path / "src", b"x")

    with pytest.raises(HostArgumentError) as caught:
        getattr(parallel, method)(source, str(tmp_path / "out" / "%s"),
                                  copy_args=[("a",), ("b",)])

    assert "copy_args" in str(caught.value)
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("method", UPLOADS + DOWNLOADS)
def test_copy_args_entry_that_does_not_fit_the_path(method, parallel, tmp_path):
    source = _write(tmp_path / "src", b"x")
    copy_args = [{"name": "a"}, {"other": "b"}, {"name": "c"}]

    with pytest.raises(HostArgumentError) as caught:
        getattr(parallel, method)(source, str(tmp_path / "out" / "%(name)s"),
                                  copy_args=copy_args)

    assert "copy_args[1]" in str(caught.value)
    assert not os.path.exists(tmp_path / "out")


def test_downloads_get_the_host_appended(methods, parallel, tmp_path):
    _, download = methods
    remote = _write(tmp_path / "remote.log", b"log line\n")

    _succeed(getattr(parallel, download)(remote, str(tmp_path / "got" / "remote.log")))

    assert sorted(os.listdir(tmp_path / "got")) == sorted(
        f"remote.log_{host}" for host in parallel.hosts)


@pytest.mark.parametrize("separator", ["--", ".from.", "@"])
def test_suffix_separator(methods, separator, parallel, tmp_path):
    _, download = methods
    remote = _write(tmp_path / "remote.log", b"log line\n")

    _succeed(getattr(parallel, download)(remote, str(tmp_path / "got" / "remote.log"),
                                         suffix_separator=separator))

    assert sorted(os.listdir(tmp_path / "got")) == sorted(
        f"remote.log{separator}{host}" for host in parallel.hosts)
    assert all(_read(tmp_path / "got" / name) == b"log line\n"
               for name in os.listdir(tmp_path / "got"))


def test_relative_local_destination_with_folders(methods, parallel, tmp_path, monkeypatch):
    _, download = methods
    remote = _write(tmp_path / "var" / "log" / "syslog", b"Nov 22 kernel: hello\n")
    monkeypatch.chdir(tmp_path)

    _succeed(getattr(parallel, download)(remote, os.path.join("logs", "syslog")))

    assert sorted(os.listdir(tmp_path / "logs")) == sorted(
        f"syslog_{host}" for host in parallel.hosts)
    for host in parallel.hosts:
        assert _read(tmp_path / "logs" / f"syslog_{host}") == b"Nov 22 kernel: hello\n"


# --- modes and times ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o750, 0o600, 0o777, 0o444, 0o640], ids=oct)
def test_upload_keeps_the_mode(methods, mode, client, tmp_path):
    upload, _ = methods
    local = _write(tmp_path / "src" / "script", b"#!/bin/sh\n", mode=mode)
    os.makedirs(tmp_path / "remote")

    getattr(client, upload)(local, str(tmp_path / "remote" / "script"))

    assert stat.S_IMODE(os.stat(tmp_path / "remote" / "script").st_mode) == mode


def test_upload_over_an_existing_file_sets_content_and_mode(methods, client, tmp_path):
    upload, _ = methods
    remote = _write(tmp_path / "remote" / "file", b"old and longer content\n", mode=0o600)
    local = _write(tmp_path / "src" / "file", b"new\n", mode=0o755)

    getattr(client, upload)(local, remote)

    assert _read(remote) == b"new\n"
    assert stat.S_IMODE(os.stat(remote).st_mode) == 0o755


def test_sftp_upload_keeps_special_mode_bits(client, tmp_path):
    local = _write(tmp_path / "src" / "tool", b"#!/bin/sh\n", mode=0o4755)

    client.copy_file(local, str(tmp_path / "remote" / "tool"))

    assert stat.S_IMODE(os.stat(tmp_path / "remote" / "tool").st_mode) == 0o4755


@pytest.mark.parametrize("mode", [0o4755, 0o2750, 0o1777], ids=oct)
def test_scp_upload_of_a_file_with_special_mode_bits(mode, client, tmp_path):
    local = _write(tmp_path / "src" / "tool", b"#!/bin/sh\n", mode=mode)
    os.makedirs(tmp_path / "remote")

    client.scp_send(local, str(tmp_path / "remote" / "tool"))

    assert _read(tmp_path / "remote" / "tool") == b"#!/bin/sh\n"
    assert stat.S_IMODE(os.stat(tmp_path / "remote" / "tool").st_mode) & 0o777 == mode & 0o777


def test_scp_upload_keeps_the_modification_time(parallel, tmp_path):
    local = _write(tmp_path / "src" / "old.txt", b"from 2001\n")
    os.utime(local, (1_000_000_000.25, 1_000_000_123.75))
    tree = _make_tree(tmp_path / "tree")
    os.utime(os.path.join(tree, "a", "b", "c", "deep.txt"), (1_200_000_000, 1_234_567_890))

    remote = _upload_to_each_host(parallel, "scp_send", local, str(tmp_path / "remote"),
                                  "old.txt")
    _succeed(parallel.scp_send(tree, str(tmp_path / "trees" / "%(host)s"), recurse=True,
                               copy_args=_per_host(parallel.hosts)))

    assert [int(os.stat(path).st_mtime) for path in remote] == [1_000_000_123] * 3
    for host in parallel.hosts:
        deep = tmp_path / "trees" / host / "a" / "b" / "c" / "deep.txt"
        assert int(os.stat(deep).st_mtime) == 1_234_567_890


@pytest.mark.parametrize("mode", [0o666, 0o755, 0o600, 0o640], ids=oct)
def test_download_mode_is_the_remote_mode_less_the_umask(methods, mode, client, tmp_path):
    _, download = methods
    remote = _write(tmp_path / "remote" / "file", b"data\n", mode=mode)
    umask = os.umask(0)
    os.umask(umask)

    getattr(client, download)(remote, str(tmp_path / "local" / "file"))

    assert stat.S_IMODE(os.stat(tmp_path / "local" / "file").st_mode) == mode & ~umask


# --- one host ----------------------------------------------------------------------------

def test_single_host_round_trip(methods, client, tmp_path):
    upload, download = methods
    os.makedirs(tmp_path / "remote")
    for name, data in (("text.txt", TEXT), ("data.bin", BINARY), ("empty", b"")):
        local = _write(tmp_path / "src" / name, data)

        assert getattr(client, upload)(local, str(tmp_path / "remote" / name)) is None
        assert getattr(client, download)(str(tmp_path / "remote" / name),
                                         str(tmp_path / "back" / name)) is None

        assert _read(tmp_path / "remote" / name) == data
        assert _read(tmp_path / "back" / name) == data
    assert _leftovers(tmp_path / "back") == []


def test_single_host_tree_round_trip(methods, client, tmp_path):
    upload, download = methods
    source = _make_tree(tmp_path / "src")

    getattr(client, upload)(source, str(tmp_path / "remote" / "deeper" / "tree"), recurse=True)
    getattr(client, download)(str(tmp_path / "remote" / "deeper" / "tree"),
                              str(tmp_path / "back" / "tree"), recurse=True)

    assert _tree(tmp_path / "remote" / "deeper" / "tree") == _tree(source)
    assert _tree(tmp_path / "back" / "tree") == _tree(source)


def test_remote_path_ending_in_slash_gets_the_local_name(methods, client, tmp_path):
    upload, _ = methods
    local = _write(tmp_path / "src" / "report.csv", b"a,b\n1,2\n")
    os.makedirs(tmp_path / "remote")

    getattr(client, upload)(local, str(tmp_path / "remote") + "/")

    assert os.listdir(tmp_path / "remote") == ["report.csv"]
    assert _read(tmp_path / "remote" / "report.csv") == b"a,b\n1,2\n"


def test_local_path_ending_in_slash_gets_the_remote_name(methods, client, tmp_path):
    _, download = methods
    remote = _write(tmp_path / "remote" / "report.csv", b"a,b\n1,2\n")

    getattr(client, download)(remote, str(tmp_path / "down") + "/")

    assert os.listdir(tmp_path / "down") == ["report.csv"]
    assert _read(tmp_path / "down" / "report.csv") == b"a,b\n1,2\n"


def test_parallel_download_into_a_directory_names_each_copy_after_the_file(
        methods, parallel, tmp_path):
    _, download = methods
    remote = _write(tmp_path / "remote" / "report.csv", b"a,b\n")

    joinall(getattr(parallel, download)(remote, str(tmp_path / "down") + "/"),
            raise_error=True)

    assert sorted(os.listdir(tmp_path / "down")) == sorted(
        f"report.csv_{host}" for host in parallel.hosts)


def test_sftp_upload_creates_missing_remote_parents(client, tmp_path):
    local = _write(tmp_path / "src" / "report.csv", b"a,b\n")

    client.copy_file(local, str(tmp_path / "remote" / "x" / "y" / "z" / "report.csv"))
    client.copy_file(local, str(tmp_path / "other" / "new" / "dir") + "/")

    assert _read(tmp_path / "remote" / "x" / "y" / "z" / "report.csv") == b"a,b\n"
    assert _read(tmp_path / "other" / "new" / "dir" / "report.csv") == b"a,b\n"


def test_download_creates_missing_local_parents(methods, client, tmp_path):
    _, download = methods
    remote = _write(tmp_path / "remote" / "file", b"data\n")

    getattr(client, download)(remote, str(tmp_path / "a" / "b" / "c" / "file"))

    assert _read(tmp_path / "a" / "b" / "c" / "file") == b"data\n"


def test_download_replaces_an_existing_local_file(methods, client, tmp_path):
    _, download = methods
    remote = _write(tmp_path / "remote" / "file", b"new\n")
    local = _write(tmp_path / "local" / "file", b"old content, longer than the new one\n")

    getattr(client, download)(remote, local)

    assert _read(local) == b"new\n"
    assert _leftovers(tmp_path / "local") == []


def test_make_sftp_and_its_helpers(client, tmp_path):
    sftp = client.make_sftp()
    assert SSHClient._make_sftp is SSHClient.make_sftp
    local = _write(tmp_path / "src" / "conf", b"key=value\n", mode=0o640)
    target = tmp_path / "remote" / "2026" / "11" / "22"

    client.mkdir(sftp, str(target))
    client.mkdir(sftp, str(target))  # already there: fine
    client.sftp_put(sftp, local, str(target / "conf"))
    client.sftp_get(sftp, str(target / "conf"), str(tmp_path / "back" / "conf"))

    assert os.path.isdir(target)
    assert _read(target / "conf") == b"key=value\n"
    assert stat.S_IMODE(os.stat(target / "conf").st_mode) == 0o640
    assert _read(tmp_path / "back" / "conf") == b"key=value\n"


def test_one_sftp_session_serves_many_copies(client, tmp_path):
    sftp = client._make_sftp()
    source = _make_tree(tmp_path / "src")

    client.copy_file(os.path.join(source, "top.txt"), str(tmp_path / "r" / "top.txt"),
                     sftp=sftp)
    client.copy_remote_file(str(tmp_path / "r" / "top.txt"), str(tmp_path / "l" / "top.txt"),
                            sftp=sftp)
    client.scp_send(source, str(tmp_path / "scp-tree"), recurse=True, sftp=sftp)
    client.scp_recv(str(tmp_path / "scp-tree"), str(tmp_path / "scp-back"), recurse=True,
                    sftp=sftp)
    client.copy_file(source, str(tmp_path / "sftp-tree"), recurse=True, sftp=sftp)
    client.copy_remote_file(str(tmp_path / "sftp-tree"), str(tmp_path / "sftp-back"),
                            recurse=True, sftp=sftp)

    assert _read(tmp_path / "l" / "top.txt") == TEXT
    for copy in ("scp-tree", "scp-back", "sftp-tree", "sftp-back"):
        assert _tree(tmp_path / copy) == _tree(source)


def test_mkdir_through_a_file_fails(client, sshd, tmp_path):
    _write(tmp_path / "remote" / "plain-file", b"not a directory\n")
    path = str(tmp_path / "remote" / "plain-file" / "sub")

    with pytest.raises(SFTPIOError) as caught:
        client.mkdir(client.make_sftp(), path)

    _assert_names(caught.value, client.host, sshd.port, path)


def test_recursive_download_of_symbolic_links(methods, client, tmp_path):
    _, download = methods
    remote = tmp_path / "remote"
    _write(remote / "real" / "file.txt", b"real file\n")
    os.makedirs(remote / "real" / "empty")
    os.symlink(remote / "real" / "file.txt", remote / "link-to-file")
    os.symlink(remote / "real", remote / "link-to-dir")
    os.symlink(remote, remote / "real" / "loop")
    os.symlink(remote / "nowhere", remote / "broken-link")

    getattr(client, download)(str(remote), str(tmp_path / "back"), recurse=True)

    assert _tree(tmp_path / "back") == {
        "real": None,
        os.path.join("real", "empty"): None,
        os.path.join("real", "file.txt"): b"real file\n",
        "link-to-file": b"real file\n",
    }
    assert not os.path.islink(tmp_path / "back" / "link-to-file")


def test_recursive_upload_of_symbolic_links(methods, client, tmp_path):
    upload, _ = methods
    source = tmp_path / "src"
    _write(source / "real" / "file.txt", b"real file\n")
    os.symlink(source / "real" / "file.txt", source / "link-to-file")
    os.symlink(source / "real", source / "link-to-dir")
    os.symlink(source, source / "real" / "loop")

    getattr(client, upload)(str(source), str(tmp_path / "remote"), recurse=True)

    remote = _tree(tmp_path / "remote")
    assert remote[os.path.join("real", "file.txt")] == b"real file\n"
    assert remote["link-to-file"] == b"real file\n"
    assert not os.path.islink(tmp_path / "remote" / "link-to-file")
    # Links to directories are not followed: nothing under them was copied.
    assert not [path for path in remote if path.startswith(("link-to-dir" + os.sep,
                                                            os.path.join("real", "loop")
                                                            + os.sep))]


def test_recursive_upload_skips_links_to_directories(methods, client, tmp_path):
    upload, _ = methods
    source = tmp_path / "src"
    _write(source / "real" / "file.txt", b"real file\n")
    os.symlink(source / "real", source / "link-to-dir")

    getattr(client, upload)(str(source), str(tmp_path / "remote"), recurse=True)

    assert sorted(os.listdir(tmp_path / "remote")) == ["real"]


def test_recursive_upload_skips_broken_links(methods, client, tmp_path, caplog):
    upload, _ = methods
    source = tmp_path / "src"
    _write(source / "file.txt", b"real file\n")
    os.symlink(source / "missing", source / "broken")

    getattr(client, upload)(str(source), str(tmp_path / "remote"), recurse=True)

    assert sorted(os.listdir(tmp_path / "remote")) == ["file.txt"]
    assert "broken link" in caplog.text


# --- what the parallel methods return ----------------------------------------------------

def test_parallel_copies_return_waitable_results_in_host_order(parallel, tmp_path):
    local = _write(tmp_path / "src", b"x\n")
    _make_host_dirs(str(tmp_path / "remote"), parallel.hosts)

    results = parallel.copy_file(local, str(tmp_path / "remote" / "%(host)s" / "f"),
                                 copy_args=_per_host(parallel.hosts))

    assert len(results) == len(parallel.hosts)
    assert all(isinstance(result, HostResult) for result in results)
    assert not any(result.ready() for result in results)  # the call did not wait
    gevent.wait(results)
    assert [result.get() for result in results] == [None] * 3
    assert [result.join() for result in results] == [None] * 3
    assert all(result.successful() for result in results)
    assert [result.value for result in results] == [None] * 3
    for host in parallel.hosts:
        assert _read(tmp_path / "remote" / host / "f") == b"x\n"


@pytest.mark.timeout(60)
def test_killing_a_download_leaves_no_file(sshd, hosts, client_kwargs, big_file, tmp_path):
    local, _ = big_file
    client = ParallelSSHClient(hosts[:2], **client_kwargs)
    try:
        for download in DOWNLOADS:
            destination = tmp_path / download
            results = getattr(client, download)(local, str(destination / "big"))
            _wait_for_bytes(results[0], lambda d=destination: _partial_size(d, hosts[0]))

            results[0].kill()

            assert [repr(error) for error in _errors(results)] == [repr(GreenletExit()),
                                                                  "None"]
            assert sorted(os.listdir(destination)) == [f"big_{hosts[1]}"]
            with pytest.raises(GreenletExit):
                results[0].get()
    finally:
        client.disconnect()


@pytest.mark.timeout(30)
def test_killing_a_copy_before_it_starts(parallel, tmp_path):
    local = _write(tmp_path / "src", b"x\n")
    _make_host_dirs(str(tmp_path / "remote"), parallel.hosts)
    results = parallel.copy_file(local, str(tmp_path / "remote" / "%(host)s" / "f"),
                                 copy_args=_per_host(parallel.hosts))

    results[0].kill()
    joinall(results[1:])
    results[0].wait()

    assert [result.ready() for result in results] == [True] * 3
    assert isinstance(results[0].exception, GreenletExit)
    assert [result.exception for result in results[1:]] == [None, None]


# --- errors: one bad host among good ones ------------------------------------------------

@pytest.mark.parametrize("upload", UPLOADS)
def test_missing_local_file(upload, parallel, tmp_path, capfd):
    _write(tmp_path / "present.txt", b"here\n")
    good, bad = str(tmp_path / "present.txt"), str(tmp_path / "missing.txt")
    _make_host_dirs(str(tmp_path / "remote"), parallel.hosts)
    copy_args = [{"host": host, "src": bad if position == 1 else good}
                 for position, host in enumerate(parallel.hosts)]

    results = getattr(parallel, upload)("%(src)s", str(tmp_path / "remote" / "%(host)s" / "f"),
                                        copy_args=copy_args)
    errors = _errors(results)

    assert isinstance(errors[1], FileNotFoundError)
    assert parallel.hosts[1] in str(errors[1])
    assert bad in str(errors[1])
    assert errors[1].filename == bad
    assert [errors[0], errors[2]] == [None, None]
    for position in (0, 2):
        assert _read(tmp_path / "remote" / parallel.hosts[position] / "f") == b"here\n"
    assert not os.path.exists(tmp_path / "remote" / parallel.hosts[1] / "f")
    with pytest.raises(FileNotFoundError):
        results[1].get()
    _no_traceback(capfd)


@pytest.mark.parametrize("upload", UPLOADS)
def test_missing_local_file_single_host(upload, client, tmp_path):
    missing = str(tmp_path / "missing.txt")

    with pytest.raises(FileNotFoundError) as caught:
        getattr(client, upload)(missing, str(tmp_path / "remote"))

    assert client.host in str(caught.value)
    assert missing in str(caught.value)
    assert not os.path.exists(tmp_path / "remote")


@pytest.mark.parametrize("upload", UPLOADS)
def test_local_directory_without_recurse(upload, parallel, tmp_path, capfd):
    good = _write(tmp_path / "file.txt", b"file\n")
    directory = str(_make_tree(tmp_path / "a-directory"))
    _make_host_dirs(str(tmp_path / "remote"), parallel.hosts)
    copy_args = [{"host": host, "src": directory if position == 1 else good}
                 for position, host in enumerate(parallel.hosts)]

    errors = _errors(getattr(parallel, upload)(
        "%(src)s", str(tmp_path / "remote" / "%(host)s" / "f"), copy_args=copy_args))

    assert isinstance(errors[1], ValueError)
    assert parallel.hosts[1] in str(errors[1])
    assert directory in str(errors[1])
    assert "recurse" in str(errors[1])
    assert [errors[0], errors[2]] == [None, None]
    assert os.listdir(tmp_path / "remote" / parallel.hosts[1]) == []
    _no_traceback(capfd)


@pytest.mark.parametrize("download, error_class, reason", [
    ("copy_remote_file", SFTPIOError, "no such file"),
    ("scp_recv", SCPError, ""),
])
@pytest.mark.parametrize("recurse", [False, True], ids=["file", "recurse"])
def test_missing_remote_file(download, error_class, reason, recurse, sshd, parallel,
                             tmp_path, capfd):
    good = _write(tmp_path / "remote" / "present.log", b"present\n")
    bad = str(tmp_path / "remote" / "missing.log")
    copy_args = [{"host": host, "src": bad if position == 1 else good}
                 for position, host in enumerate(parallel.hosts)]

    results = getattr(parallel, download)("%(src)s", str(tmp_path / "got" / "%(host)s.log"),
                                          recurse=recurse, copy_args=copy_args)
    with pytest.raises(error_class):
        joinall(results, raise_error=True)
    errors = _errors(results)

    assert isinstance(errors[1], error_class)
    _assert_names(errors[1], parallel.hosts[1], sshd.port, bad)
    assert reason in str(errors[1]).lower()
    assert [errors[0], errors[2]] == [None, None]
    assert sorted(os.listdir(tmp_path / "got")) == sorted(
        f"{parallel.hosts[position]}.log" for position in (0, 2))
    _no_traceback(capfd)


@pytest.mark.parametrize("download", DOWNLOADS)
def test_failed_download_leaves_the_existing_file_untouched(download, client, tmp_path):
    local = _write(tmp_path / "local" / "precious", b"keep me\n")

    with pytest.raises((SFTPIOError, SCPError)) as caught:
        getattr(client, download)(str(tmp_path / "remote" / "missing"), local)

    assert caught.value.host == client.host
    assert _read(local) == b"keep me\n"
    assert os.listdir(tmp_path / "local") == ["precious"]


@pytest.mark.parametrize("download, error_class", [
    ("copy_remote_file", ValueError),
    ("scp_recv", SCPError),
])
def test_remote_directory_without_recurse(download, error_class, parallel, tmp_path, capfd):
    good = _write(tmp_path / "remote" / "file.txt", b"file\n")
    directory = _make_tree(tmp_path / "remote" / "a-directory")
    copy_args = [{"host": host, "src": directory if position == 1 else good}
                 for position, host in enumerate(parallel.hosts)]

    errors = _errors(getattr(parallel, download)(
        "%(src)s", str(tmp_path / "got" / "%(host)s"), copy_args=copy_args))

    assert isinstance(errors[1], error_class)
    assert parallel.hosts[1] in str(errors[1])
    assert directory in str(errors[1])
    assert [errors[0], errors[2]] == [None, None]
    assert sorted(os.listdir(tmp_path / "got")) == sorted(
        parallel.hosts[position] for position in (0, 2))
    assert _leftovers(tmp_path / "got") == []
    _no_traceback(capfd)


def test_sftp_upload_onto_an_existing_directory(sshd, parallel, tmp_path, capfd):
    local = _write(tmp_path / "src" / "file.txt", b"file\n")
    for host in parallel.hosts:
        os.makedirs(tmp_path / "remote" / host)
    os.makedirs(tmp_path / "remote" / parallel.hosts[1] / "target")

    errors = _errors(parallel.copy_file(local, str(tmp_path / "remote" / "%(host)s" / "target"),
                                        copy_args=_per_host(parallel.hosts)))

    assert isinstance(errors[1], SFTPIOError)
    _assert_names(errors[1], parallel.hosts[1], sshd.port,
                  str(tmp_path / "remote" / parallel.hosts[1] / "target"))
    assert "is a directory" in str(errors[1])
    assert [errors[0], errors[2]] == [None, None]
    assert os.listdir(tmp_path / "remote" / parallel.hosts[1] / "target") == []
    _no_traceback(capfd)


def test_scp_upload_into_a_missing_directory(sshd, parallel, tmp_path, capfd):
    local = _write(tmp_path / "src" / "file.txt", b"file\n")
    for position in (0, 2):
        os.makedirs(tmp_path / "remote" / parallel.hosts[position])

    errors = _errors(parallel.scp_send(local, str(tmp_path / "remote" / "%(host)s" / "f"),
                                       copy_args=_per_host(parallel.hosts)))

    assert isinstance(errors[1], SCPError)
    _assert_names(errors[1], parallel.hosts[1], sshd.port,
                  str(tmp_path / "remote" / parallel.hosts[1] / "f"))
    assert [errors[0], errors[2]] == [None, None]
    assert not os.path.exists(tmp_path / "remote" / parallel.hosts[1])
    _no_traceback(capfd)


# --- errors: permission denied -----------------------------------------------------------

@pytest.fixture(scope="module")
def unprivileged_user():
    """The name of an account without privileges; made for this module if missing.

    Its password field is ``*`` (no password, not locked): with ``UsePAM no`` sshd refuses
    key logins to accounts whose password field starts with ``!``, which is useradd's
    default.
    """
    if os.geteuid() != 0:
        pytest.skip("creating a user account needs root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        pytest.skip("useradd/userdel are not installed")
    try:
        pwd.getpwnam(TEST_USER)
        created = False
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", "--password", "*",
                        TEST_USER], check=True, capture_output=True)
        created = True
    yield TEST_USER
    if created:
        _remove_user(TEST_USER)


def _remove_user(name):
    # userdel refuses while a process runs as the account, and sshd's processes for the
    # account's last connection may still be ending.
    wait_for_exit(_processes_of(pwd.getpwnam(name).pw_uid))
    if subprocess.run(["userdel", name], capture_output=True).returncode != 0:
        subprocess.run(["userdel", "--force", name], check=True, capture_output=True)


def _processes_of(uid):
    """The processes whose real or effective user is ``uid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as status:
                    line = next(line for line in status if line.startswith("Uid:"))
            except (OSError, StopIteration):
                continue  # ended while we looked
            if str(uid) in line.split()[1:3]:
                found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def shared_dir(unprivileged_user):
    """A directory the unprivileged user can reach (pytest's tmp_path is root's, 0700):

    ``locked/`` (root's, 0755), ``writable/`` (the user's), ``secret`` (root's, 0600) and
    ``public`` (0644).
    """
    root = tempfile.mkdtemp(prefix="pssh-copytest-")
    os.chmod(root, 0o755)
    account = pwd.getpwnam(unprivileged_user)
    os.mkdir(os.path.join(root, "locked"), 0o755)
    os.mkdir(os.path.join(root, "writable"), 0o755)
    os.chown(os.path.join(root, "writable"), account.pw_uid, account.pw_gid)
    _write(os.path.join(root, "secret"), b"root only\n", mode=0o600)
    _write(os.path.join(root, "public"), b"anyone\n", mode=0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def unprivileged(three_hosts, client_kwargs, unprivileged_user):
    client = ParallelSSHClient(three_hosts, **{**client_kwargs, "user": unprivileged_user})
    yield client
    client.disconnect()


@pytest.mark.parametrize("method, error_class, reason", [
    ("copy_file", SFTPIOError, "permission denied"),
    ("scp_send", SCPError, ""),
])
def test_upload_permission_denied(method, error_class, reason, unprivileged, shared_dir, sshd,
                                  tmp_path, capfd):
    local = _write(tmp_path / "src" / "f", b"data\n")
    hosts = unprivileged.hosts
    destinations = {host: os.path.join(shared_dir, "writable", f"{method}-{host}")
                    for host in hosts}
    destinations[hosts[1]] = os.path.join(shared_dir, "locked", f"{method}-{hosts[1]}")

    errors = _errors(getattr(unprivileged, method)(
        local, "%(dst)s", copy_args=[{"dst": destinations[host]} for host in hosts]))

    assert isinstance(errors[1], error_class)
    _assert_names(errors[1], hosts[1], sshd.port, destinations[hosts[1]])
    assert reason in str(errors[1]).lower()
    assert [errors[0], errors[2]] == [None, None]
    assert os.listdir(os.path.join(shared_dir, "locked")) == []
    for position in (0, 2):
        assert _read(destinations[hosts[position]]) == b"data\n"
    _no_traceback(capfd)


@pytest.mark.parametrize("method, error_class, reason", [
    ("copy_remote_file", SFTPIOError, "permission denied"),
    ("scp_recv", SCPError, ""),
])
def test_download_permission_denied(method, error_class, reason, unprivileged, shared_dir,
                                    sshd, tmp_path, capfd):
    hosts = unprivileged.hosts
    secret, public = os.path.join(shared_dir, "secret"), os.path.join(shared_dir, "public")
    copy_args = [{"host": host, "src": secret if position == 1 else public}
                 for position, host in enumerate(hosts)]

    errors = _errors(getattr(unprivileged, method)("%(src)s", str(tmp_path / "%(host)s"),
                                                   copy_args=copy_args))

    assert isinstance(errors[1], error_class)
    _assert_names(errors[1], hosts[1], sshd.port, secret)
    assert reason in str(errors[1]).lower()
    assert [errors[0], errors[2]] == [None, None]
    assert sorted(os.listdir(tmp_path)) == sorted(hosts[position] for position in (0, 2))
    _no_traceback(capfd)


# --- errors: disk full -------------------------------------------------------------------

@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs mounted for the test; always unmounted afterwards."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a 1 MB tmpfs here (not allowed in this container?): "
                    f"{mounted.stderr.strip()}")
    yield str(mount_point)
    try:
        # A server process may still hold a file there while its connection closes.
        wait_until(lambda: not _processes_using(str(mount_point)), 30,
                   "the server processes letting go of the tmpfs")
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def _processes_using(directory):
    """The processes with an open file or their working directory under ``directory``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                links = [os.path.join(f"/proc/{entry}/fd", descriptor)
                         for descriptor in os.listdir(f"/proc/{entry}/fd")]
                targets = [os.readlink(link) for link in [f"/proc/{entry}/cwd", *links]]
            except OSError:
                continue  # ended while we looked
            if any(target == directory or target.startswith(directory + "/")
                   for target in targets):
                found.append(int(entry))
    return found


@pytest.mark.parametrize("method, error_class, reason", [
    ("copy_file", SFTPIOError, "disk full"),
    ("scp_send", SCPError, "No space left on device"),
])
def test_upload_to_a_full_disk(method, error_class, reason, full_disk, parallel, sshd,
                               tmp_path, capfd):
    local = _write(tmp_path / "src" / "three-mb", os.urandom(3 * MB))
    hosts = parallel.hosts
    _make_host_dirs(str(tmp_path / "remote"), hosts)
    destinations = {host: str(tmp_path / "remote" / host / "three-mb") for host in hosts}
    destinations[hosts[1]] = os.path.join(full_disk, "three-mb")

    errors = _errors(getattr(parallel, method)(
        local, "%(dst)s", copy_args=[{"dst": destinations[host]} for host in hosts]))

    assert isinstance(errors[1], error_class)
    _assert_names(errors[1], hosts[1], sshd.port, destinations[hosts[1]])
    assert reason in str(errors[1])
    assert [errors[0], errors[2]] == [None, None]
    for position in (0, 2):
        assert _sha256(destinations[hosts[position]]) == _sha256(local)
    _no_traceback(capfd)


# --- faults: a connection killed or stopped mid-copy -------------------------------------

def _hex_address(host, port):
    """``host:port`` as /proc/net/tcp writes it (on a little-endian machine)."""
    return f"{struct.unpack('<I', socket.inet_aton(host))[0]:08X}:{port:04X}"


def _server_sockets(host, port):
    """Inodes of the established connections accepted on ``host:port``."""
    local = _hex_address(host, port)
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return {row[9] for row in rows if row[1] == local and row[3] == "01"}


def _holds_socket(pid, inodes):
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _connect_and_find_first_host(client, sshd):
    """Connect every host now; the sshd processes serving the first host's connection."""
    first = client.hosts[0]
    before = _server_sockets(first, sshd.port)
    _succeed(client.connect_auth())
    ours = _server_sockets(first, sshd.port) - before
    assert len(ours) == 1, f"expected one new connection to {first}, found {ours}"
    connection = connection_processes(sshd.pid, lambda pid: _holds_socket(pid, ours))
    assert connection, f"no child of sshd {sshd.pid} holds the sockets {ours}"
    return connection


def _partial_size(directory, host):
    """Bytes a download from ``host`` into ``directory`` has written so far."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    return sum(os.path.getsize(os.path.join(directory, name)) for name in names
               if f"_{host}." in name and name.endswith(".pssh-part"))


def _file_size(path):
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def _wait_for_bytes(result, size_of, at_least=MB):
    """Let the copy run until ``size_of()`` reaches ``at_least`` bytes.

    wait_until returns the moment that holds, without yielding, and the caller acts
    before yielding again, so the copy cannot finish in between.
    """
    wait_until(lambda: size_of() >= at_least or result.ready(), 60,
               f"{at_least} bytes of the copy")
    assert not result.ready(), f"the copy ended before it could be interrupted: {result}"


def _start_big_copy(client, direction, method, big_file, tmp_path):
    """Start a 100 MB copy on every host; returns the results and a function giving the
    bytes moved so far for the first host."""
    first = client.hosts[0]
    if direction == "download":
        results = getattr(client, method)(big_file, str(tmp_path / "down" / "big"))
        return results, lambda: _partial_size(tmp_path / "down", first)
    _make_host_dirs(str(tmp_path / "up"), client.hosts)
    results = getattr(client, method)(big_file, str(tmp_path / "up" / "%(host)s" / "big"),
                                      copy_args=_per_host(client.hosts))
    return results, lambda: _file_size(tmp_path / "up" / first / "big")


def _check_the_other_hosts(client, direction, errors, big_file, tmp_path):
    assert errors[1:] == [None] * (len(errors) - 1)
    size = os.path.getsize(big_file)
    for host in client.hosts[1:]:
        path = (tmp_path / "down" / f"big_{host}" if direction == "download"
                else tmp_path / "up" / host / "big")
        assert os.path.getsize(path) == size


def _check_no_download_left(client, direction, tmp_path):
    if direction == "download":
        assert not os.path.exists(tmp_path / "down" / f"big_{client.hosts[0]}")
        assert _leftovers(tmp_path / "down") == []


LOST_CONNECTION_CASES = [
    pytest.param("download", "copy_remote_file", id="sftp-download"),
    pytest.param("download", "scp_recv", id="scp-download"),
    pytest.param("upload", "copy_file", id="sftp-upload"),
    pytest.param("upload", "scp_send", id="scp-upload"),
]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("direction, method", LOST_CONNECTION_CASES)
def test_connection_killed_mid_copy(direction, method, sshd, hosts, client_kwargs, big_file,
                                    tmp_path, capfd):
    local, _ = big_file
    client = ParallelSSHClient(hosts[:2], **client_kwargs)
    try:
        connection = _connect_and_find_first_host(client, sshd)
        results, moved = _start_big_copy(client, direction, method, local, tmp_path)
        _wait_for_bytes(results[0], moved)

        signal_all(connection, signal.SIGKILL)
        errors = _errors(results)

        assert isinstance(errors[0], SSHError)
        assert isinstance(errors[0], (ConnectionError, SessionError, SFTPError, SCPError))
        assert not isinstance(errors[0], Timeout)
        assert errors[0].host == hosts[0]
        assert hosts[0] in str(errors[0])
        _check_no_download_left(client, direction, tmp_path)
        _check_the_other_hosts(client, direction, errors, local, tmp_path)
        _no_traceback(capfd)
    finally:
        client.disconnect()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("direction, method", [
    pytest.param("download", "copy_remote_file", id="sftp-download"),
    pytest.param("upload", "scp_send", id="scp-upload"),
])
def test_stopped_server_times_out(direction, method, sshd, hosts, client_kwargs, big_file,
                                  tmp_path, capfd):
    local, _ = big_file
    client = ParallelSSHClient(hosts[:2], **{**client_kwargs, "timeout": 2})
    stopped = []
    try:
        connection = _connect_and_find_first_host(client, sshd)
        results, moved = _start_big_copy(client, direction, method, local, tmp_path)
        _wait_for_bytes(results[0], moved)

        stopped.extend(connection)
        signal_all(stopped, signal.SIGSTOP)
        errors = _errors(results)

        # The stalled host fails with a Timeout (its channel's cleanup close cannot hang:
        # the test's timeout mark would fail it) and the other host's copy completes.
        assert isinstance(errors[0], Timeout)
        assert errors[0].host == hosts[0]
        assert hosts[0] in str(errors[0])
        _check_no_download_left(client, direction, tmp_path)
        _check_the_other_hosts(client, direction, errors, local, tmp_path)
        _no_traceback(capfd)
    finally:
        signal_all(stopped, signal.SIGKILL)
        signal_all(stopped, signal.SIGCONT)
        client.disconnect()


# --- resources and many hosts ------------------------------------------------------------

def _open_descriptors():
    """{descriptor: what it is} for this process; sockets say which connection."""
    found = {}
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            found[descriptor] = _describe(os.readlink(f"/proc/self/fd/{descriptor}"))
        except OSError:
            pass  # the directory listing's own descriptor, closed by now
    return found


def _describe(target):
    if not target.startswith("socket:["):
        return target
    for table in ("tcp", "tcp6", "udp", "unix"):
        with open(f"/proc/net/{table}") as rows:
            for row in rows:
                fields = row.split()
                if target[8:-1] in fields:
                    return f"{target} {table} {' '.join(fields[1:4])}"
    return target


def _copies_good_and_bad(hosts, client_kwargs, root):
    """One client's worth of copies on every method, some failing; the names of the
    errors. The errors themselves are not kept: their tracebacks hold the connection's
    objects, and with them its socket (released only when those are gone)."""
    client = ParallelSSHClient(hosts, **client_kwargs)
    source = _write(os.path.join(root, "src", "file"), b"payload\n")
    tree = os.path.join(root, "src", "tree")
    if not os.path.exists(tree):
        _make_tree(tree)
    _make_host_dirs(os.path.join(root, "up"), hosts)
    sources = [{"host": host, "src": os.path.join(root, "missing") if position == 1 else source}
               for position, host in enumerate(hosts)]
    outcomes = []
    for upload in UPLOADS:
        outcomes += _errors(getattr(client, upload)(
            "%(src)s", os.path.join(root, "up", "%(host)s", upload), copy_args=sources))
        outcomes += _errors(getattr(client, upload)(
            tree, os.path.join(root, "up", "%(host)s", upload + "-tree"), recurse=True,
            copy_args=_per_host(hosts)))
    for download in DOWNLOADS:
        outcomes += _errors(getattr(client, download)(
            "%(src)s", os.path.join(root, "down", "%(host)s", download), copy_args=sources))
        outcomes += _errors(getattr(client, download)(
            tree, os.path.join(root, "down", "%(host)s", download + "-tree"), recurse=True,
            copy_args=_per_host(hosts)))
    client.disconnect()
    return [type(error).__name__ for error in outcomes if error is not None]


@pytest.mark.timeout(60)
def test_no_file_descriptors_leak(three_hosts, client_kwargs, tmp_path):
    # The first round opens what lives as long as the process: thread pool, resolver.
    _copies_good_and_bad(three_hosts, client_kwargs, str(tmp_path / "warm-up"))
    gc.collect()
    before = _open_descriptors()

    for round_number in range(3):
        failures = _copies_good_and_bad(three_hosts, client_kwargs,
                                        str(tmp_path / f"round-{round_number}"))
        assert failures == ["FileNotFoundError", "FileNotFoundError", "SFTPIOError",
                            "SCPError"]
    gc.collect()
    after = _open_descriptors()

    assert len(after) <= len(before), (
        f"new descriptors: {sorted(set(after.values()) - set(before.values()))}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool_size", [100, 3])
def test_ten_hosts_at_once(pool_size, hosts, client_kwargs, tmp_path):
    assert len(hosts) == 10
    client = ParallelSSHClient(hosts, **{**client_kwargs, "pool_size": pool_size})
    local = _write(tmp_path / "src" / "file", BINARY[:200_000])
    try:
        for upload in UPLOADS:
            _make_host_dirs(str(tmp_path / upload), hosts)
            _succeed(getattr(client, upload)(local, str(tmp_path / upload / "%s" / "file"),
                                             copy_args=hosts))
        for download in DOWNLOADS:
            _succeed(getattr(client, download)(local, str(tmp_path / download / "file")))
    finally:
        client.disconnect()

    for upload in UPLOADS:
        assert [_read(tmp_path / upload / host / "file") for host in hosts] == [
            BINARY[:200_000]] * 10
    for download in DOWNLOADS:
        assert sorted(os.listdir(tmp_path / download)) == sorted(f"file_{host}"
                                                                 for host in hosts)
        assert all(_read(tmp_path / download / f"file_{host}") == BINARY[:200_000]
                   for host in hosts)
