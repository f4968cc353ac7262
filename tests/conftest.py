"""Shared fixtures: a real sshd on 100 loopback addresses, and peers that misbehave.

The sshd is started once per test session (key generation and 100 banner checks take
about a second); each test gets the first ten hosts and a fresh copy of the client
arguments, so a test may change them freely. The misbehaving peers are plain sockets on
127.0.0.1, each served by a thread that a socketpair wakes up at teardown.

Both engines offer one API, so a test that takes the ``engine`` fixture (or the
``client`` and ``parallel`` fixtures built on it) runs once on each: ``test_x[native]``
on libssh2 and ``test_x[ssh]`` on libssh. A test of what only libssh2 does takes
``NATIVE_ONLY`` as a mark. Test files import the plain helpers from here
(``from conftest import wait_until``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pssh.testing import LocalSSHD, SSHDError
from pssh.utils import host_logger, logger

GARBAGE_BANNER = b"HELLO this is not ssh\r\n"
ENGINES = ["native", "ssh"]  # pssh.clients.native (libssh2) and pssh.clients.ssh (libssh)

# For tests of what only the libssh2 engine does (file copies, proxies, ssh2-python's own
# channel methods): the test runs once, as test_x[native].
NATIVE_ONLY = pytest.mark.parametrize("engine", ["native"], indirect=True)


class LateRead:
    """Holds one library read back until a peer's bytes have reached a session's socket,
    by blocking the whole process (gevent's hub too): ``trigger`` makes the peer send,
    then the read waits for the socket to be readable and a little more, so the bytes
    and whatever follows them at once are all there before the read drains the socket.
    ``took_bytes`` then says whether that read took bytes from the socket, which is the
    point of the exercise (see ``pssh.clients.base._wait``)."""

    SETTLE = 0.3

    def __init__(self, client: Any, trigger: Callable[[], None]) -> None:
        self._client = client
        self._trigger = trigger
        self.took_bytes: bool | None = None  # None until the held read has run

    def run(self, read: Callable[[], Any]) -> Any:
        if self.took_bytes is not None:
            return read()
        self._trigger()
        with selectors.DefaultSelector() as selector:
            selector.register(self._client.sock.fileno(), selectors.EVENT_READ)
            selector.select(10)
        time.sleep(self.SETTLE)
        before = self._client.taken_bytes()
        try:
            return read()  # libssh may raise EOF here: the stream has ended
        finally:
            self.took_bytes = self._client.taken_bytes() != before


def wait_until(condition: Callable[[], Any], timeout: float = 10.0,
               what: str = "the condition") -> Any:
    """Return ``condition()``'s first truthy value, checking every few milliseconds.

    For state a test cannot be told about (a server process appearing, a file closing):
    the test moves on the moment the state is there, and fails with ``what`` in the
    message if it never comes. Cooperative: it yields to gevent between checks.
    """
    import gevent

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        gevent.sleep(0.005)


def assert_names_host(error: BaseException, host: str, port: int | None = None) -> None:
    """Check that ``error`` carries ``host`` and names it (and ``port``) in its message."""
    assert getattr(error, "host", None) == host
    assert host in str(error)
    if port is not None:
        assert str(port) in str(error)


def keygen(path: str | Path, key_type: str = "ed25519", passphrase: str = "") -> str:
    """Make a key pair with ssh-keygen at ``path`` (and ``path``.pub); the private key's
    path. RSA keys are 2048 bits: quicker to make than ssh-keygen's default."""
    bits = ["-b", "2048"] if key_type == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, *bits, "-N", passphrase,
                    "-f", str(path)], check=True)
    return str(path)


def authorize_key(server: LocalSSHD, key: str) -> None:
    """Let ``key`` (a private key's path, its public half next to it) log in to
    ``server``."""
    with open(key + ".pub") as public, \
            open(os.path.join(server.workdir, "authorized_keys"), "a") as keys:
        keys.write(public.read())


def ssh_add(key: str, passphrase: str = "") -> None:
    """Add ``key`` to the agent at SSH_AUTH_SOCK, answering its passphrase prompt
    through SSH_ASKPASS."""
    env = dict(os.environ)
    if passphrase:
        askpass = key + ".askpass"
        with open(askpass, "w") as script:
            script.write(f"#!/bin/sh\necho '{passphrase}'\n")
        os.chmod(askpass, 0o700)
        env.update(SSH_ASKPASS=askpass, SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
    added = subprocess.run(["ssh-add", "-q", key], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
    assert added.returncode == 0, f"ssh-add {key} failed: {added.stderr}"


@contextlib.contextmanager
def password_account(name: str, password: str) -> Iterator[str]:
    """An account ``name`` (made with useradd if missing, removed again after) whose
    password is ``password``; skips the test unless it runs as root."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd to make a user with a password")
    created = subprocess.run(["id", name], capture_output=True).returncode != 0
    if created:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name],
                       check=True)
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
    try:
        yield name
    finally:
        if created:
            subprocess.run(["userdel", name], check=False)


# --- processes on this machine: the sshd's children, read from /proc ----------------------


def process_table() -> dict[int, int]:
    """{pid: parent pid} for every process still alive while we look."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # The command name (field 2) may contain spaces; the fields after it
                    # do not.
                    table[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass  # ended while we looked
    return table


def command_line(pid: int) -> str:
    """The command line of ``pid``, arguments joined by spaces; empty once it ended."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def connection_processes(sshd_pid: int, matches: Callable[[int], bool]) -> list[int]:
    """The processes of one connection of the sshd master ``sshd_pid`` (a child of it and
    that child's descendants): the first connection with a process for which
    ``matches(pid)`` holds; empty if none has one.

    Only this sshd's descendants are searched: other test sessions on the machine may run
    the same commands.
    """
    table = process_table()
    for child in [pid for pid, parent in table.items() if parent == sshd_pid]:
        tree = [child]
        for pid in tree:
            tree.extend(sub for sub, parent in table.items() if parent == pid)
        if any(matches(pid) for pid in tree):
            return tree
    return []


def signal_all(pids: list[int], signum: int) -> None:
    """Send ``signum`` to each of ``pids`` that still runs."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def wait_for_exit(pids: list[int], timeout: float = 30.0) -> None:
    """Return once every process in ``pids`` has ended: a pidfd becomes readable then.
    Cooperative, like wait_until."""
    from gevent.socket import wait_read

    for pid in pids:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue  # gone already
        try:
            wait_read(pidfd, timeout, AssertionError(f"process {pid} still runs after "
                                                     f"{timeout}s"))
        finally:
            os.close(pidfd)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> ModuleType:
    """The engine's module, ``pssh.clients.native`` or ``pssh.clients.ssh``: it has
    ``SSHClient`` and ``ParallelSSHClient``."""
    return importlib.import_module(f"pssh.clients.{request.param}")


@pytest.fixture
def client(engine: ModuleType, hosts: list[str], client_kwargs: dict[str, Any]) -> Iterator[Any]:
    """The engine's SSHClient, connected to the first host."""
    single = engine.SSHClient(hosts[0], **client_kwargs)
    yield single
    single.disconnect()


@pytest.fixture
def parallel(engine: ModuleType, hosts: list[str],
             client_kwargs: dict[str, Any]) -> Iterator[Any]:
    """The engine's ParallelSSHClient for the first three hosts."""
    many = engine.ParallelSSHClient(hosts[:3], **client_kwargs)
    yield many
    many.disconnect()


@pytest.fixture(scope="session")
def sshd() -> Iterator[LocalSSHD]:
    """A started LocalSSHD with 100 hosts, shared by the whole session."""
    server = LocalSSHD(num_hosts=100)
    try:
        server.start()
    except SSHDError as exc:
        pytest.fail(f"cannot start the test sshd: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def hosts(sshd: LocalSSHD) -> list[str]:
    """The first ten addresses of the shared sshd."""
    return sshd.hosts[:10]


@pytest.fixture
def client_kwargs(sshd: LocalSSHD) -> dict[str, Any]:
    """port, user, pkey, num_retries=0 and timeout=10 for the shared sshd."""
    return sshd.client_kwargs()


@pytest.fixture
def ssh_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ssh-agent for this test, holding no keys yet (``ssh_add`` gives it some);
    SSH_AUTH_SOCK points at it. Its socket's path."""
    if not shutil.which("ssh-agent"):
        pytest.skip("ssh-agent is not installed")
    socket_path = str(tmp_path / "agent.sock")
    process = subprocess.Popen(["ssh-agent", "-D", "-a", socket_path],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    try:
        # The agent prints its SSH_AUTH_SOCK line once the socket listens (or exits).
        announced = process.stdout.readline()
        assert announced.startswith(f"SSH_AUTH_SOCK={socket_path};"), (
            f"ssh-agent did not start (exit status {process.poll()}): {announced!r}")
        monkeypatch.setenv("SSH_AUTH_SOCK", socket_path)
        yield socket_path
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    """Undo whatever the enable_* helpers of pssh.utils did to pssh's loggers.

    A host logger left at INFO would log every output line of every later test.
    """
    saved = [(each, each.level, list(each.handlers), each.propagate)
             for each in (logger, host_logger)]
    yield
    for each, level, handlers, propagate in saved:
        each.setLevel(level)
        each.handlers[:] = handlers
        each.propagate = propagate


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def black_hole() -> Iterator[tuple[str, int]]:
    """(host, port) of a listener that accepts connections and never sends a byte."""
    with _Listener(on_accept=None) as listener:
        yield listener.address


@pytest.fixture
def garbage_server() -> Iterator[tuple[str, int]]:
    """(host, port) of a listener that answers with a non-SSH line and hangs up."""
    with _Listener(on_accept=_send_garbage) as listener:
        yield listener.address


def _send_garbage(conn: socket.socket) -> None:
    try:
        conn.sendall(GARBAGE_BANNER)
    except OSError:
        pass  # the client gave up first; nothing to tell it
    conn.close()


class _Listener:
    """A loopback TCP listener served by one thread until the ``with`` block ends.

    ``on_accept`` gets each accepted connection and owns it from then on; with ``None``
    the listener keeps connections open, silent, until teardown.
    """

    def __init__(self, on_accept: Callable[[socket.socket], None] | None) -> None:
        self._on_accept = on_accept
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._kept: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="test-listener", daemon=True)
        self.address: tuple[str, int] = self._server.getsockname()[:2]

    def __enter__(self) -> _Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._wake_writer.send(b"x")
        self._thread.join(timeout=10)
        for sock in (*self._kept, self._server, self._wake_reader, self._wake_writer):
            sock.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while all(key.fileobj is self._server for key, _ in selector.select()):
                try:
                    conn, _ = self._server.accept()
                except OSError:
                    continue  # the client reset before we got to it
                if self._on_accept is None:
                    self._kept.append(conn)
                else:
                    self._on_accept(conn)
