"""The per-stream buffer limit on unread output, against the real sshd, on both engines.

With ``spool_to_disk=False`` (the hard limit), a stream whose unread complete lines reach
``buffer_limit`` is no longer read from the channel, so the remote command waits (SSH
flow control) and nothing is dropped. Waiting for the command's end without reading
then raises ``BufferFullError``. By default the lines past the limit go to a temporary
file instead (tests/test_output_spooling.py).

Each test runs as ``[native]`` and ``[ssh]`` through the ``client`` and ``parallel``
(three hosts) fixtures of conftest.py.
"""

from __future__ import annotations

import os

import pytest

from pssh.constants import DEFAULT_BUFFER_LIMIT
from pssh.exceptions import BufferFullError, Timeout

LIMIT = 64 * 1024
LINES = 100_000  # `seq 100000` prints 588,895 bytes: nine times LIMIT
MANY_LINES = 2_000_000  # 14.9 MB: more than the SSH window and the socket buffers hold


def _numbers(lines):
    return [int(line) for line in lines]


def test_join_raises_when_unread_output_fills_the_buffer_and_loses_nothing(parallel):
    output = parallel.run_command(f"seq {LINES}", buffer_limit=LIMIT, spool_to_disk=False)

    with pytest.raises(BufferFullError) as caught:
        parallel.join(output, timeout=20)

    error = caught.value
    assert error.host in parallel.hosts
    assert "stdout" in str(error) and str(LIMIT) in str(error)
    assert "consume_output=True" in str(error) and "spool_to_disk=True" in str(error)
    for host_out in output:  # every line is still there, in order
        assert _numbers(host_out.stdout) == list(range(1, LINES + 1))
        assert host_out.exit_code == 0
    parallel.join(output, timeout=20)  # nothing left to wait for


def test_a_full_stream_makes_the_remote_command_wait(parallel, tmp_path):
    marker = tmp_path / "done"
    command = f"seq {MANY_LINES} >&2; touch {marker}"
    output = parallel.run_command(command, buffer_limit=LIMIT, read_timeout=2,
                                  spool_to_disk=False)
    host_out = output[0]

    # Reading stdout makes pssh pull the channel, but stderr stops at the limit and the
    # command blocks writing it: stdout never ends and the marker never appears.
    with pytest.raises(Timeout):
        list(host_out.stdout)
    assert not marker.exists()
    assert host_out.exit_code is None
    stderr = host_out.buffers.stderr.rw_buffer
    assert stderr.is_full()
    assert stderr._held() < LIMIT + 1024 * 1024  # at most one fill past the limit

    assert _numbers(host_out.stderr) == list(range(1, MANY_LINES + 1))
    assert marker.exists()
    assert list(host_out.stdout) == []
    assert host_out.exit_code == 0
    parallel.join(output, consume_output=True, timeout=20)


def test_by_default_a_full_stream_goes_to_disk_and_the_command_ends(parallel, tmp_path):
    marker = tmp_path / "done"
    output = parallel.run_command(f"seq {MANY_LINES} >&2; touch {marker}",
                                  buffer_limit=LIMIT, read_timeout=20)
    host_out = output[0]

    assert list(host_out.stdout) == []  # stderr went on past the limit, to a file
    assert marker.exists()
    assert host_out.exit_code == 0
    assert _numbers(host_out.stderr) == list(range(1, MANY_LINES + 1))
    parallel.join(output, consume_output=True, timeout=20)


def test_join_consuming_output_is_not_limited(parallel):
    output = parallel.run_command(f"seq {LINES}; seq {LINES} >&2", buffer_limit=LIMIT)

    parallel.join(output, consume_output=True, timeout=20)

    assert [host_out.exit_code for host_out in output] == [0] * 3


def test_reading_as_it_arrives_is_not_limited(parallel):
    output = parallel.run_command(f"seq {LINES}", buffer_limit=LIMIT)

    for host_out in output:
        assert _numbers(host_out.stdout) == list(range(1, LINES + 1))
        assert host_out.exit_code == 0


def test_no_limit_keeps_everything_for_join(parallel):
    output = parallel.run_command(f"seq {LINES}; seq {LINES} >&2", buffer_limit=None)

    parallel.join(output, timeout=20)

    for host_out in output:
        assert host_out.exit_code == 0
        assert len(list(host_out.stdout)) == LINES
        assert len(list(host_out.stderr)) == LINES


def test_the_default_limit_holds_ordinary_output_for_join(parallel):
    assert DEFAULT_BUFFER_LIMIT == 32 * 1024 * 1024
    output = parallel.run_command(f"seq {LINES}")

    parallel.join(output, timeout=20)

    assert [len(list(host_out.stdout)) for host_out in output] == [LINES] * 3


def test_a_line_longer_than_the_limit_is_kept_whole(parallel):
    width = 3 * LIMIT
    output = parallel.run_command(f"head -c {width} /dev/zero | tr '\\0' x; echo; echo end",
                                  buffer_limit=LIMIT)

    host_out = output[0]
    assert [len(line) for line in host_out.stdout] == [width, 3]
    assert host_out.exit_code == 0


def test_wait_finished_raises_on_a_full_buffer(client):
    host_out = client.run_command(f"seq {LINES}", buffer_limit=LIMIT, spool_to_disk=False)

    with pytest.raises(BufferFullError) as caught:
        client.wait_finished(host_out, timeout=20)

    assert caught.value.host == client.host
    assert _numbers(host_out.stdout) == list(range(1, LINES + 1))
    client.wait_finished(host_out, timeout=20)
    assert host_out.exit_code == 0


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "1024"])
def test_a_bad_limit_is_refused_before_anything_runs(limit, parallel, client, tmp_path):
    marker = tmp_path / "ran"
    for each in (parallel, client):
        with pytest.raises(ValueError, match="buffer_limit"):
            each.run_command(f"touch {marker}", buffer_limit=limit)
    assert not os.path.exists(marker)
