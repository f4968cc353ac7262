"""Output past ``buffer_limit`` goes to a temporary file: ``join`` then reading works for
any size, against the real sshd, on both engines.

Every test runs as ``[native]`` and ``[ssh]``. The temporary files are unlinked from the
start (``tempfile.TemporaryFile``); this process's ``/proc/self/fd`` shows them as
``(deleted)`` links until they are closed, which is how the tests see them go.
"""

from __future__ import annotations

import os
import tempfile

import pytest

from pssh.exceptions import BufferFullError

LIMIT = 1024 * 1024
LINES = 2_600_000  # `seq 2600000` prints 20,488,895 bytes: about 20 times LIMIT
ERR_LINES = 600_000  # 4,288,895 bytes on stderr: four times LIMIT


def _temp_files() -> set[str]:
    """The deleted temporary files this process holds open, as fd -> target links."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(tempfile.gettempdir()) and target.endswith("(deleted)"):
            found.add(f"{fd} {target}")
    return found


def _numbers(lines):
    return [int(line) for line in lines]


def test_join_then_read_keeps_every_line_past_the_limit(parallel):
    before = _temp_files()
    output = parallel.run_command(f"seq {LINES}; seq {ERR_LINES} >&2; exit 3",
                                  buffer_limit=LIMIT)

    parallel.join(output, timeout=120)

    # both streams of every host went past the limit: one file each, open until read
    assert len(_temp_files() - before) == 2 * len(output)
    assert [host_out.exit_code for host_out in output] == [3] * len(output)
    for host_out in output:
        assert _numbers(host_out.stdout) == list(range(1, LINES + 1))
        assert _numbers(host_out.stderr) == list(range(1, ERR_LINES + 1))
        assert host_out.exception is None
    assert _temp_files() - before == set()  # read to the end: closed, the disk freed


def test_the_temporary_file_goes_with_the_output(client):
    before = _temp_files()
    host_out = client.run_command(f"seq {LINES}", buffer_limit=LIMIT)
    client.wait_finished(host_out, timeout=120)
    assert len(_temp_files() - before) == 1
    first = next(host_out.stdout)

    del host_out  # released unread (almost): nothing holds the file any more

    assert first == "1"
    assert _temp_files() - before == set()


def test_the_raw_bytes_come_back_through_rw_buffer(client):
    host_out = client.run_command(f"seq {LINES} | sed 's/$/\\r/'; printf end",
                                  buffer_limit=LIMIT)
    client.wait_finished(host_out, timeout=120)
    stdout = host_out.buffers.stdout

    assert stdout.reader is host_out.buffers.stderr.reader
    assert stdout.rw_buffer.eof.is_set()
    raw = stdout.rw_buffer.read()

    assert raw == b"".join(b"%d\r\n" % number for number in range(1, LINES + 1)) + b"end"
    assert stdout.rw_buffer.read() == b""
    assert list(host_out.stdout) == []  # read() took them
    assert host_out.exit_code == 0


def test_reading_while_it_spools_keeps_the_order(client):
    host_out = client.run_command(f"seq {LINES}", buffer_limit=LIMIT)
    lines = host_out.stdout
    head = [next(lines) for _ in range(1000)]

    client.wait_finished(host_out, timeout=120)  # the rest arrives meanwhile

    assert _numbers(head + list(lines)) == list(range(1, LINES + 1))


def test_the_hard_limit_still_raises(parallel):
    before = _temp_files()
    output = parallel.run_command(f"seq {LINES}", buffer_limit=LIMIT, spool_to_disk=False)

    with pytest.raises(BufferFullError) as caught:
        parallel.join(output, timeout=60)

    assert caught.value.host in parallel.hosts
    assert _temp_files() - before == set()
    for host_out in output:  # nothing lost: reading makes room and the commands end
        assert _numbers(host_out.stdout) == list(range(1, LINES + 1))
        assert host_out.exit_code == 0
