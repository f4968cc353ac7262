"""Unit tests for the modules that need no server: wrapping, deadlines, checks, lines."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time

import pytest

from pssh._commands import format_host_command, wrap_command
from pssh._deadline import check_timeout, deadline_after, earliest, time_left
from pssh._secrets import openssh_public_key_line
from pssh._shards import share, split
from pssh._validate import check_hosts, check_pkey, check_port, read_key
from pssh.clients.base._wait import BaseSessionWaiter
from pssh.exceptions import HostArgumentError, PKeyFileError
from pssh.output import LineBuffer


def run_in_sh(command_line: str) -> str:
    """What a POSIX shell makes of a wrapped command (the remote sshd does the same)."""
    return subprocess.run(["sh", "-c", command_line], capture_output=True, text=True,
                          env={"SHELL": "/bin/sh", "PATH": "/usr/bin:/bin", "VAR": "value"},
                          check=True).stdout


@pytest.mark.parametrize("command", [
    "echo 'single quoted'",
    'echo "double $VAR"',
    "echo `echo backticks`",
    "echo it\\'s",
    "printf '%s\\n' a b",
])
def test_shell_wrapping_keeps_the_command_intact(command: str) -> None:
    assert run_in_sh(wrap_command(command, shell="sh -c")) == run_in_sh(command)


def test_plain_command_is_sent_unchanged() -> None:
    assert wrap_command("uname -a") == "uname -a"


def test_sudo_and_user_wrapping() -> None:
    assert wrap_command("id", sudo=True) == "sudo -S $SHELL -c id"
    assert wrap_command("echo 'x'", user="app") == "sudo -u app -S $SHELL -c 'echo '\"'\"'x'\"'\"''"
    assert wrap_command("id", user="app; rm -rf /").startswith("sudo -u 'app; rm -rf /' -S")


def test_host_args_formatting() -> None:
    assert format_host_command("echo %s", "a", 0) == "echo a"
    assert format_host_command("echo %s-%s", ("a", 1), 0) == "echo a-1"
    assert format_host_command("echo %(x)s", {"x": "y"}, 0) == "echo y"
    with pytest.raises(HostArgumentError, match=r"host_args\[3\]"):
        format_host_command("echo %s %s", ("only one",), 3)


@pytest.mark.parametrize("bad", [-1, -0.5, math.nan, math.inf, True, "5"])
def test_bad_timeouts_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        check_timeout(bad)  # type: ignore[arg-type]


def test_good_timeouts_and_deadlines() -> None:
    assert check_timeout(None) is None
    assert check_timeout(0) == 0
    assert deadline_after(None) is None
    # Bracketed by clock readings, so however long each line takes the bounds hold.
    before = time.monotonic()
    deadline = deadline_after(10)
    after = time.monotonic()
    assert deadline is not None and before + 10 <= deadline <= after + 10
    before = time.monotonic()
    left = time_left(deadline)
    after = time.monotonic()
    assert left is not None
    assert max(0.0, deadline - after) <= left <= max(0.0, deadline - before)
    assert time_left(time.monotonic() - 5) == 0
    assert earliest(None, 5.0, 3.0) == 3.0
    assert earliest(None, None) is None


@pytest.mark.parametrize("bad", [0, 65536, -22, "22", 22.0, True])
def test_bad_ports_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="port for host 'h'"):
        check_port(bad, "h")


def test_hosts_must_be_a_list_of_names() -> None:
    with pytest.raises(TypeError, match=r"\['web1'\]"):
        check_hosts("web1")
    with pytest.raises(TypeError):
        check_hosts(None)
    with pytest.raises(TypeError, match=r"hosts\[1\]"):
        check_hosts(["a", None])
    assert check_hosts(("a", "a")) == ["a", "a"]


def test_pkey_checks(tmp_path) -> None:
    key = tmp_path / "key"
    key.write_text("not really a key")
    assert check_pkey(str(key)) == str(key)  # the path is checked; read_key reads it
    with pytest.raises(PKeyFileError, match="not a private key file") as raised:
        read_key(str(key), "web1")
    assert raised.value.host == "web1"
    pem = b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    assert check_pkey(pem) == pem
    with pytest.raises(PKeyFileError, match="not a private key"):
        check_pkey(b"key bytes", "web1")
    with pytest.raises(PKeyFileError, match="does not exist") as raised:
        check_pkey(str(tmp_path / "missing"), "web1")
    assert raised.value.host == "web1"


def drain(buffer: LineBuffer) -> list[bytes]:
    lines = []
    while buffer.has_lines():
        lines.append(buffer.pop_line())
    return lines


def test_line_buffer_splits_across_chunks() -> None:
    buffer = LineBuffer()
    for chunk in [b"fi", b"rst\nsec", b"ond\r\nthi", b"rd\n\n", b"last"]:
        buffer.feed(chunk)
    assert drain(buffer) == [b"first", b"second", b"third", b""]
    assert buffer.take_partial() == b"last"
    assert buffer.take_partial() is None


@pytest.mark.parametrize("chunks", [
    [b"a\r\nb\rc\r\n\r\nd\r"],
    [b"a\r", b"\nb\r", b"c\r", b"\n\r", b"\nd\r"],
    [b"a", b"\r", b"\n", b"b\rc", b"\r", b"\n", b"\r\n", b"d\r"],
], ids=["one chunk", "cr before the chunk's end", "byte by byte"])
def test_line_buffer_drops_the_cr_of_crlf_only(chunks: list[bytes]) -> None:
    buffer = LineBuffer()
    for chunk in chunks:
        buffer.feed(chunk)
    assert list(buffer.drain()) == [b"a", b"b\rc", b""]
    assert buffer.take_partial() == b"d"
    assert not buffer.is_full() and buffer._size == 0


def test_line_buffer_drain_stopped_early_keeps_the_rest() -> None:
    buffer = LineBuffer(limit=12)
    buffer.feed(b"one\ntwo\nthree\n")
    buffer.feed(b"four\n")
    assert buffer.is_full()
    lines = buffer.drain()
    assert next(lines) == b"one"
    lines.close()
    assert buffer.is_full()  # a received chunk counts until its last line is taken
    assert next(buffer.drain()) == b"two"
    assert buffer.pop_line() == b"three"
    assert not buffer.is_full()
    assert list(buffer.drain()) == [b"four"]


def test_line_buffer_read_gives_the_untaken_bytes_as_received() -> None:
    buffer = LineBuffer()
    buffer.write(b"one\r\ntwo\r\nthree\nfour")
    buffer.feed(b"\nfive\r\nsi")
    assert buffer.pop_line() == b"one"
    assert buffer.read() == b"two\r\nthree\nfour\nfive\r\nsi"
    assert buffer.read() == b""
    assert not buffer.has_lines() and buffer.take_partial() is None


def test_line_buffer_read_pulls_first() -> None:
    buffer = LineBuffer()
    buffer.pull = lambda: buffer.feed(b"arrived\n")
    assert buffer.read() == b"arrived\n"
    assert not buffer.eof.is_set()
    buffer.eof.set()
    assert buffer.eof.is_set() and buffer.eof


def test_concurrent_rw_buffer_has_parallel_ssh_members() -> None:
    from pssh.clients.reader import ConcurrentRWBuffer

    buffer = ConcurrentRWBuffer()
    buffer.write(b"a" * 100_000 + b"\npartial")
    assert not buffer.is_full()  # no limit
    assert buffer.read() == b"a" * 100_000 + b"\npartial"
    assert buffer.read() == b""
    assert not buffer.eof.is_set()


def _open_temp_files() -> int:
    return sum(1 for fd in os.listdir("/proc/self/fd")
               if "pssh-output" in _link(fd) or _link(fd).endswith("(deleted)"))


def _link(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def test_line_buffer_spools_past_its_limit_and_gives_lines_back_in_order(monkeypatch) -> None:
    monkeypatch.setattr("pssh.output.SPOOL_CHUNK", 64)
    before = _open_temp_files()
    buffer = LineBuffer(limit=20, spool_to_disk=True)
    expected = [b"line %d" % number for number in range(200)]
    data = b"".join(line + b"\r\n" for line in expected)
    for start in range(0, len(data), 7):  # chunks that split lines and line endings
        buffer.feed(data[start:start + 7])
        buffer.flush()
        assert not buffer.is_full()
        assert buffer._held() < 20 + 7
    assert _open_temp_files() == before + 1
    assert list(buffer.drain()) == expected
    assert _open_temp_files() == before  # read to its end: the file is closed


def test_line_buffer_spool_read_interleaves_with_writes(monkeypatch) -> None:
    monkeypatch.setattr("pssh.output.SPOOL_CHUNK", 16)
    buffer = LineBuffer(limit=8, spool_to_disk=True)
    taken = []
    for number in range(300):
        buffer.feed(b"%d\n" % number)
        buffer.flush()
        if number % 7 == 0:
            taken.extend(buffer.drain())
        elif number % 5 == 0 and buffer.has_lines():
            taken.append(buffer.pop_line())
    taken.extend(buffer.drain())
    assert taken == [b"%d" % number for number in range(300)]


def test_line_buffer_spooled_read_and_discard(monkeypatch) -> None:
    monkeypatch.setattr("pssh.output.SPOOL_CHUNK", 16)
    before = _open_temp_files()
    buffer = LineBuffer(limit=8, spool_to_disk=True)
    data = b"".join(b"%d\n" % number for number in range(100))
    buffer.feed(data[:150])
    buffer.feed(data[150:])
    buffer.flush()
    assert buffer.pop_line() == b"0"
    assert buffer.read() == data[2:]
    assert _open_temp_files() == before
    buffer.feed(data)
    buffer.feed(data)
    buffer.flush()
    assert _open_temp_files() == before + 1
    buffer.discard()
    assert _open_temp_files() == before and not buffer.has_lines()


def test_a_failed_spool_write_loses_nothing(monkeypatch) -> None:
    def failing(func, *args):
        if func.__name__ == "_write_all":
            raise OSError(28, "No space left on device")
        return func(*args)

    monkeypatch.setattr("pssh.output.SPOOL_CHUNK", 16)
    buffer = LineBuffer(limit=4, spool_to_disk=True, run_io=failing)
    lines = [b"%d" % number for number in range(50)]
    buffer.feed(b"start\n")
    for line in lines:
        buffer.feed(line + b"\n")
    with pytest.raises(OSError):
        buffer.flush()
    assert buffer.is_full()  # 4 chunks wait in memory: read no more from the channel
    assert list(buffer.drain()) == [b"start"] + lines


def test_line_buffer_keeps_a_long_line_without_newline() -> None:
    buffer = LineBuffer()
    for _ in range(1000):
        buffer.feed(b"x" * 1000)
    assert not buffer.has_lines()
    buffer.feed(b"\n")
    assert drain(buffer) == [b"x" * 1_000_000]


def test_lines_read_while_a_spool_write_runs_come_in_order(monkeypatch) -> None:
    monkeypatch.setattr("pssh.output.SPOOL_CHUNK", 16)
    taken: list[bytes] = []
    buffer: LineBuffer

    def reading_meanwhile(func, *args):  # another greenlet reads while the write runs
        if func.__name__ == "_write_all":
            buffer.feed(b"late\n")
            taken.extend(buffer.drain())
        return func(*args)

    buffer = LineBuffer(limit=4, spool_to_disk=True, run_io=reading_meanwhile)
    buffer.feed(b"first\n")
    buffer.feed(b"".join(b"%d\n" % number for number in range(10)))
    buffer.flush()
    taken.extend(buffer.drain())
    assert taken == [b"first"] + [b"%d" % number for number in range(10)] + [b"late"]


def test_a_spool_discarded_during_its_write_stays_empty(monkeypatch) -> None:
    monkeypatch.setattr("pssh.output.SPOOL_CHUNK", 16)
    before = _open_temp_files()
    buffer: LineBuffer

    def discarding_meanwhile(func, *args):
        if func.__name__ == "_write_all":
            buffer.discard()  # closes the file under the write
        return func(*args)

    buffer = LineBuffer(limit=4, spool_to_disk=True, run_io=discarding_meanwhile)
    buffer.feed(b"first\n" + b"".join(b"%d\n" % number for number in range(10)))
    buffer.feed(b"".join(b"%d\n" % number for number in range(10)))
    buffer.flush()
    assert not buffer.has_lines() and buffer.read() == b""
    assert _open_temp_files() == before


@pytest.mark.parametrize("count", range(0, 12))
@pytest.mark.parametrize("parts", [1, 2, 3, 5, 16])
def test_shards_keep_every_position_in_order_and_balanced(count: int, parts: int) -> None:
    shards = split(count, parts)
    assert [position for shard in shards for position in shard] == list(range(count))
    assert len(shards) == min(count, parts)
    assert all(shards) and max(map(len, shards), default=0) - min(map(len, shards), default=0) <= 1


def test_shards_need_at_least_one_part() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split(3, 0)


@pytest.mark.parametrize("key_type, passphrase", [("ed25519", ""), ("rsa", ""),
                                                  ("ecdsa", ""), ("ed25519", "words")])
def test_public_key_line_of_an_openssh_key_is_its_pub_file(tmp_path, key_type: str,
                                                           passphrase: str) -> None:
    path = str(tmp_path / "id")
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-f", path],
                   check=True)
    with open(path, "rb") as private, open(path + ".pub", "rb") as public:
        expected = b" ".join(public.read().split()[:2])

        assert openssh_public_key_line(private.read()) == expected


def test_public_key_line_of_a_pem_key_is_none(tmp_path) -> None:
    path = str(tmp_path / "id")
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "",
                    "-f", path], check=True)
    with open(path, "rb") as private:
        assert openssh_public_key_line(private.read()) is None
    assert openssh_public_key_line(b"not a key") is None


def test_a_limit_shared_among_parts_gives_each_at_least_one() -> None:
    assert [share(8, parts) for parts in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert share(None, 4) is None


def test_taken_bytes_counts_what_was_read_from_a_tcp_socket() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as ours:
        theirs, _ = server.accept()
        with theirs:
            waiter = BaseSessionWaiter(None, ours.fileno())
            before = waiter.taken_bytes()
            theirs.sendall(b"x" * 100)
            ours.recv(40)  # the kernel has all 100 once 40 can be read

            assert before == 0 and waiter.taken_bytes() == 40


def test_taken_bytes_while_bytes_stream_in_differs_from_every_other_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()) as ours:
        waiter = BaseSessionWaiter(None, ours.fileno())
        queue_lengths = iter(range(100))  # a queue that grows between every two looks
        monkeypatch.setattr(waiter, "_unread_bytes", lambda: next(queue_lengths))

        counts = [waiter.taken_bytes() for _ in range(3)]

        assert len(set(counts)) == 3 and all(count is not None for count in counts)


def test_taken_bytes_of_a_socket_pair_is_none() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        waiter = BaseSessionWaiter(None, ours.fileno())
        assert waiter.taken_bytes() is None
        assert waiter.taken_bytes() is None
