"""Copies report progress per host and file: ``progress(host, remote_path, done, total)``
when a file starts and after each chunk, for both directions and both protocols."""

from __future__ import annotations

import os
from collections import defaultdict

import pytest
from gevent import joinall

from pssh.clients.native import ParallelSSHClient, SSHClient

MB = 1024 * 1024


@pytest.fixture
def parallel(hosts, client_kwargs):
    client = ParallelSSHClient(hosts[:2], **client_kwargs)
    yield client
    client.disconnect()


def _recorder():
    calls = defaultdict(list)

    def progress(host, path, done, total):
        calls[(host, path)].append((done, total))
    return calls, progress


def _assert_complete(calls, size):
    for reports in calls.values():
        assert reports[0] == (0, size)
        assert reports[-1] == (size, size)
        assert [done for done, _ in reports] == sorted(done for done, _ in reports)


@pytest.mark.parametrize("upload, download", [("copy_file", "copy_remote_file"),
                                              ("scp_send", "scp_recv")])
def test_uploads_and_downloads_report_every_host(parallel, tmp_path, upload, download):
    source = tmp_path / "three-mb"
    source.write_bytes(os.urandom(3 * MB))
    sent, on_send = _recorder()
    joinall(getattr(parallel, upload)(str(source), str(tmp_path / "remote-%(host)s"),
                                      copy_args=[{"host": h} for h in parallel.hosts],
                                      progress=on_send), raise_error=True)
    assert sorted(host for host, _ in sent) == sorted(parallel.hosts)
    _assert_complete(sent, 3 * MB)
    assert any(len(reports) > 2 for reports in sent.values())  # more than one chunk

    received, on_receive = _recorder()
    joinall(getattr(parallel, download)(str(source), str(tmp_path / "back"),
                                        progress=on_receive), raise_error=True)
    assert sorted(host for host, _ in received) == sorted(parallel.hosts)
    _assert_complete(received, 3 * MB)


def test_a_tree_reports_each_file(hosts, client_kwargs, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_bytes(b"a" * 10)
    (tree / "sub" / "b").write_bytes(b"b" * 20)
    calls, progress = _recorder()
    with SSHClient(hosts[0], **client_kwargs) as client:
        client.copy_file(str(tree), str(tmp_path / "copy"), recurse=True, progress=progress)
    assert {path.rpartition("/")[2]: reports[-1] for (_, path), reports in calls.items()} == {
        "a": (10, 10), "b": (20, 20)}
