"""A throwaway OpenSSH server on loopback addresses, for tests and demos.

Theory of operation
-------------------
An ``sshd`` master process listens on the same port on several loopback addresses
(127.0.0.2, 127.0.0.3, ...). Linux answers on all of 127.0.0.0/8 without any set-up, so
to a client every address is a separate host while one machine serves them all. sshd
takes at most 16 listen addresses, so 100 hosts need 7 masters; they share the keys and
settings and differ only in their addresses, pid file and log. Listening on 0.0.0.0
instead would open a root login to every network the machine is on.

Everything the servers read lives in one private directory: host keys and client keys made
with ``ssh-keygen``, an ``authorized_keys`` file, each master's config, pid file and log,
and an empty directory that sessions get as ``$HOME``. That last one matters:
with the account's real home, bash reads ``~/.bashrc`` for every ``ssh host command``,
which on some machines costs more CPU than the SSH work itself. The system-wide
``/etc/ssh/sshd_config`` is never read.

The server is ready when every address answers with an ``SSH-2.0-`` banner. Readiness is
checked by connecting and reading that banner, with a short growing pause between rounds
spent waiting on the sshd process itself, so a server that dies at start-up is reported at
once with the tail of its log instead of after the timeout.

sshd does not end the connections it serves when its master process exits, so
:meth:`LocalSSHD.stop` signals the whole process tree under each master (per-connection
sshd processes and the commands they run), then waits for the master.

This module imports only the standard library, never gevent or ssh2: users import it from
their own test suites, whatever their client library.
"""

from __future__ import annotations

import getpass
import math
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

__all__ = ["LocalSSHD", "SSHDError"]

INSTALL_SSHD_HINT = "apt-get install -y openssh-server"
INSTALL_KEYGEN_HINT = "apt-get install -y openssh-client"
STOP_GRACE_SECONDS = 5.0
ADDRESSES_PER_SSHD = 16  # sshd's compiled-in MAX_LISTEN_SOCKS
ADDRESSES_PER_BLOCK = 250
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 20
FIRST_PAUSE = 0.002
LONGEST_PAUSE = 0.1
PROBE_BANNER = b"SSH-2.0-pssh_testing_probe\r\n"
# file name in the work directory -> ssh-keygen arguments. RSA keys are 2048 bits because
# ssh-keygen takes about four times longer for 3072 and these keys guard nothing.
KEY_SPECS = {
    "host_ed25519": ["-t", "ed25519"],
    "host_rsa": ["-t", "rsa", "-b", "2048"],
    "client_ed25519": ["-t", "ed25519"],
    "client_rsa": ["-t", "rsa", "-b", "2048", "-m", "PEM"],
}
CLIENT_KEYS = ("client_ed25519", "client_rsa")


class SSHDError(RuntimeError):
    """The local sshd could not be found, prepared, started or reached."""


class _PortInUse(SSHDError):
    """sshd could not bind the chosen port on one of its addresses."""


class LocalSSHD:
    """An OpenSSH server on ``num_hosts`` loopback addresses sharing one port.

    Typical use in a test suite::

        with LocalSSHD(num_hosts=3) as server:
            client = ParallelSSHClient(server.hosts, **server.client_kwargs())

    Nothing runs until :meth:`start`; the constructor only picks the addresses, the port
    and the work directory. sshd listens on at most 16 addresses per process, so more
    hosts than that are served by several sshd processes with the same configuration:
    :attr:`pids` lists them, :attr:`pid` is the one serving ``hosts[0]`` (and the rest of
    the first 16), :meth:`pid_of` finds the one for a given host.

    :param num_hosts: how many loopback addresses to listen on.
    :param port: TCP port for every address; ``None`` picks a free one.
    :param first_address: number of the first address, counted from 127.0.0.0 in blocks
        of 250 per third octet: 2 gives 127.0.0.2, 251 gives 127.0.1.1.
    :param workdir: directory for keys, configs, logs and the sessions' home. ``None``
        makes a temporary one that :meth:`stop` removes; a given directory is kept.
    :param sshd_path: absolute path of the ``sshd`` binary.
    :param extra_config: ``sshd_config`` keywords that replace the defaults of the same
        name (case-insensitive) or are added. A ``HostKey`` entry is added to the
        generated ones; ``ListenAddress`` is refused (use ``num_hosts``).
    :param start_timeout: seconds :meth:`start` may take before it gives up.
    :param ipv6: also listen on the IPv6 loopback address ``::1`` (``ipv6_host``),
        on the same port.
    :raises ValueError: on an invalid argument.
    """

    def __init__(self, num_hosts: int = 1, port: int | None = None, first_address: int = 2,
                 workdir: str | None = None, sshd_path: str = "/usr/sbin/sshd",
                 extra_config: dict[str, str] | None = None,
                 start_timeout: float = 10.0, ipv6: bool = False) -> None:
        self.hosts: list[str] = _host_addresses(first_address, num_hosts)
        self.ipv6_host: str | None = "::1" if ipv6 else None
        self._auto_port = port is None
        self.port: int = _free_port() if port is None else _checked_port(port)
        self.start_timeout: float = _checked_timeout(start_timeout)
        self.sshd_path = sshd_path
        self.extra_config: dict[str, str] = _checked_extra_config(extra_config or {})
        self.user: str = getpass.getuser()
        self._owns_workdir = workdir is None
        self.workdir: str = (tempfile.mkdtemp(prefix="pssh-sshd-") if workdir is None
                             else os.path.abspath(workdir))
        self.pkey: str = os.path.join(self.workdir, "client_ed25519")
        self.pkey_rsa: str = os.path.join(self.workdir, "client_rsa")
        self.home: str = os.path.join(self.workdir, "home")
        self._masters = [_Master(self.workdir, index, self.hosts[at:at + ADDRESSES_PER_SSHD])
                         for index, at in enumerate(range(0, num_hosts, ADDRESSES_PER_SSHD))]
        if self.ipv6_host is not None:
            if len(self._masters[-1].hosts) < ADDRESSES_PER_SSHD:
                self._masters[-1].hosts.append(self.ipv6_host)
            else:
                self._masters.append(_Master(self.workdir, len(self._masters),
                                             [self.ipv6_host]))

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        span = self.hosts[0] if len(self.hosts) == 1 else f"{self.hosts[0]}..{self.hosts[-1]}"
        return (f"<LocalSSHD {span} ({len(self.hosts)} hosts) port={self.port} "
                f"pids={self.pids} {state}>")

    def __enter__(self) -> LocalSSHD:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """Pid of the sshd master serving ``hosts[0]``, ``None`` when not started."""
        return self._masters[0].pid

    @property
    def pids(self) -> list[int]:
        """Pids of all sshd master processes, in host order; empty when not started."""
        return [master.pid for master in self._masters if master.pid is not None]

    def pid_of(self, host: str) -> int | None:
        """Pid of the sshd master listening on ``host``.

        :raises ValueError: ``host`` is not one of ``hosts``.
        """
        return self._masters[self.hosts.index(host) // ADDRESSES_PER_SSHD].pid

    def is_running(self) -> bool:
        """Whether every sshd master process is alive."""
        return all(master.is_alive() for master in self._masters)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that point ``ParallelSSHClient`` or ``SSHClient`` here.

        Retries are off and the timeout is 10 seconds, so a broken test fails fast.
        """
        return {"port": self.port, "user": self.user, "pkey": self.pkey,
                "num_retries": 0, "timeout": 10}

    def read_log(self) -> str:
        """Everything the sshd processes have logged since the last start.

        The log level is ``ERROR`` unless ``extra_config`` sets ``LogLevel``.
        """
        return "".join(master.read_log() for master in self._masters)

    def start(self) -> LocalSSHD:
        """Make keys (first time only), write the config, start sshd, wait until it answers.

        Returns once every address in ``hosts`` has sent an ``SSH-2.0-`` banner.
        Calling it on a running server does nothing. On failure everything it started is
        stopped again (see :meth:`stop`) before the error is raised.

        :returns: this server, so ``server = LocalSSHD().start()`` works.
        :raises SSHDError: sshd or ssh-keygen is missing, sshd exited, could not bind its
            addresses or did not answer within ``start_timeout``; the message includes
            the end of the sshd log.
        """
        if self.is_running():
            return self
        try:
            self._start(time.monotonic() + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop sshd and the connections it serves; remove a temporary work directory.

        Sends SIGTERM (and SIGCONT, for stopped processes) to every process under each
        sshd master, waits up to 5 seconds for the master and then kills it. Safe to call
        any number of times, also on a server that never started. After a stop,
        :meth:`start` may be called again; the port stays the same.
        """
        self._terminate()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- start-up steps ------------------------------------------------------------------

    def _start(self, deadline: float) -> None:
        self._terminate()  # masters left from a start whose siblings have died since
        sshd = _find_sshd(self.sshd_path)
        self._prepare_workdir(deadline)
        attempts = PORT_ATTEMPTS if self._auto_port else 1
        for attempt in range(1, attempts + 1):
            try:
                self._launch(sshd, deadline)
                return
            except _PortInUse:
                self._terminate()
                if attempt == attempts:
                    raise
                self.port = _free_port()  # another process took ours since __init__

    def _prepare_workdir(self, deadline: float) -> None:
        os.makedirs(self.home, exist_ok=True)
        # Other accounts' sessions (tests with a second user) must be able to reach the
        # empty home, or their shell prints an error while looking for ~/.bashrc.
        os.chmod(self.workdir, 0o755)
        os.chmod(self.home, 0o755)
        _make_keys(self.workdir, deadline)
        with open(os.path.join(self.workdir, "authorized_keys"), "w") as authorized:
            for name in CLIENT_KEYS:
                with open(os.path.join(self.workdir, name + ".pub")) as public:
                    authorized.write(public.read())

    def _shared_config(self) -> list[str]:
        """Config lines every master has: host keys, then defaults and extra_config."""
        lines = [f"HostKey {_quoted(os.path.join(self.workdir, name))}"
                 for name in ("host_ed25519", "host_rsa")]
        return lines + [f"{name} {value}" for name, value in self._options().values()]

    def _options(self) -> dict[str, tuple[str, str]]:
        """Config keywords by lower-case name; extra_config replaces or adds."""
        defaults = {
            "AuthorizedKeysFile": _quoted(os.path.join(self.workdir, "authorized_keys")),
            "SetEnv": _quoted(f"HOME={self.home}"),
            "UsePAM": "no", "StrictModes": "no", "PasswordAuthentication": "no",
            "KbdInteractiveAuthentication": "no", "PubkeyAuthentication": "yes",
            "PermitRootLogin": "yes", "Subsystem": "sftp internal-sftp", "LogLevel": "ERROR",
            "MaxStartups": "10000", "MaxSessions": "1000", "MaxAuthTries": "20",
            "UseDNS": "no", "PermitUserRC": "no", "PrintMotd": "no", "PrintLastLog": "no",
        }
        options = {name.lower(): (name, value) for name, value in defaults.items()}
        for name, value in self.extra_config.items():
            key = name.lower()
            if key == "hostkey":
                key = f"{key}-{len(options)}"  # adds to ours, never replaces
            options[key] = (name, value)
        return options

    def _launch(self, sshd: str, deadline: float) -> None:
        try:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        except PermissionError:
            pass  # not root: sshd only needs its privilege separation directory as root
        shared = self._shared_config()
        for master in self._masters:
            master.launch(sshd, self.port, shared)
        self._wait_until_ready(deadline)

    def _wait_until_ready(self, deadline: float) -> None:
        """Wait for every pid file (written once sshd has bound its addresses), then for
        a banner on every address; fail early if an sshd exits or could not bind."""
        unbound = list(self._masters)
        silent = {host: "sshd has not bound its addresses yet" for host in self.hosts}
        pause = FIRST_PAUSE
        while True:
            self._check_alive()
            unbound = [master for master in unbound if not master.is_listening()]
            if not unbound:
                silent = _unanswered(list(silent), self.port, deadline)
                if not silent:
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                host, reason = next(iter(silent.items()))
                raise (unbound or self._masters)[0].failure(
                    f"sshd did not answer on {len(silent)} of {len(self.hosts)} addresses "
                    f"within {self.start_timeout} s (first: {host}:{self.port}, {reason})")
            (unbound or self._masters)[0].wait_for_exit(min(pause, left))
            pause = min(pause * 2, LONGEST_PAUSE)

    def _check_alive(self) -> None:
        for master in self._masters:
            master.check_alive(self.port)

    def _terminate(self) -> None:
        for master in self._masters:
            master.terminate()


class _Master:
    """One sshd master process and its files, serving some of the hosts."""

    def __init__(self, workdir: str, index: int, hosts: list[str]) -> None:
        self.hosts = hosts
        self.config_path = os.path.join(workdir, f"sshd-{index}.conf")
        self.log_path = os.path.join(workdir, f"sshd-{index}.log")
        self.pid_path = os.path.join(workdir, f"sshd-{index}.pid")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def is_listening(self) -> bool:
        """Whether sshd wrote its pid file, which it does after binding its addresses."""
        return os.path.exists(self.pid_path)

    def launch(self, sshd: str, port: int, shared_config: list[str]) -> None:
        if os.path.exists(self.pid_path):
            os.unlink(self.pid_path)  # left by an sshd that was killed
        lines = [f"ListenAddress [{host}]:{port}" if ":" in host
                 else f"ListenAddress {host}:{port}" for host in self.hosts]
        lines += [f"PidFile {_quoted(self.pid_path)}", *shared_config]
        with open(self.config_path, "w") as config:
            config.write("\n".join(lines) + "\n")
        with open(self.log_path, "wb") as log:
            # A session of its own keeps a terminal's Ctrl-C away from the server; the
            # test run's teardown stops it instead.
            self.proc = subprocess.Popen(
                [sshd, "-D", "-e", "-f", self.config_path], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True)

    def wait_for_exit(self, seconds: float) -> None:
        """Pause between readiness rounds; returns early if this sshd exits."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                pass

    def check_alive(self, port: int) -> None:
        """Raise if this sshd has exited or could not bind one of its addresses."""
        code = None if self.proc is None else self.proc.poll()
        if code is not None:
            raise self.failure(f"sshd exited with status {code} while starting")
        if any("Bind to port" in line and "failed" in line
               for line in self.read_log().splitlines()):
            raise self.failure(f"sshd could not listen on port {port} on all of "
                               f"{self.hosts[0]}..{self.hosts[-1]}")

    def failure(self, what: str) -> SSHDError:
        tail = "\n".join(self.read_log().splitlines()[-LOG_TAIL_LINES:])
        kind = _PortInUse if "Address already in use" in tail else SSHDError
        return kind(f"{what}. The sshd log ends with:\n{tail or '(nothing)'}")

    def read_log(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            _end_process_tree(proc)


# -- module helpers, free of any LocalSSHD state ----------------------------------------


def _host_addresses(first: int, count: int) -> list[str]:
    """``count`` loopback addresses from number ``first``, 250 per third octet."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"num_hosts must be a positive int, got {count!r}")
    if isinstance(first, bool) or not isinstance(first, int) or first < 1:
        raise ValueError(f"first_address must be a positive int, got {first!r}")
    if first + count - 1 > ADDRESSES_PER_BLOCK * 256:
        raise ValueError(f"{count} hosts from address {first} do not fit in 127.0.0.0/16")
    addresses = []
    for number in range(first, first + count):
        block, offset = divmod(number - 1, ADDRESSES_PER_BLOCK)
        addresses.append(f"127.0.{block}.{offset + 1}")
    return addresses


def _checked_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an int from 1 to 65535 or None, got {port!r}")
    return port


def _checked_timeout(seconds: float) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"start_timeout must be a number of seconds, got {seconds!r}")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError(f"start_timeout must be positive, got {seconds!r}")
    return float(seconds)


def _checked_extra_config(extra: dict[str, str]) -> dict[str, str]:
    if any(name.lower() == "listenaddress" for name in extra):
        raise ValueError("extra_config cannot set ListenAddress: the addresses come from "
                         "num_hosts and first_address")
    return dict(extra)


def _free_port() -> int:
    """A TCP port nothing is bound to right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quoted(value: str) -> str:
    """An sshd_config argument, in double quotes if it holds white space."""
    if '"' in value:
        raise SSHDError(f"sshd_config cannot hold a double quote in {value!r}")
    return f'"{value}"' if any(char.isspace() for char in value) else value


def _find_sshd(path: str) -> str:
    if not os.path.isabs(path):
        raise SSHDError(f"sshd_path must be absolute (sshd re-executes itself), got {path!r}")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SSHDError(f"No OpenSSH server at {path}. Install it with "
                        f"`{INSTALL_SSHD_HINT}` (Debian/Ubuntu) or pass sshd_path.")
    return path


def _find_keygen() -> str:
    found = shutil.which("ssh-keygen") or shutil.which("ssh-keygen", path="/usr/bin")
    if found is None:
        raise SSHDError(f"ssh-keygen not found on PATH. Install it with "
                        f"`{INSTALL_KEYGEN_HINT}` (Debian/Ubuntu).")
    return found


def _make_keys(workdir: str, deadline: float) -> None:
    """Create the keys that are not there yet, all ssh-keygen runs at once."""
    wanted = {name: args for name, args in KEY_SPECS.items()
              if not os.path.exists(os.path.join(workdir, name))}
    if not wanted:
        return
    keygen = _find_keygen()
    runs = {name: subprocess.Popen(
        [keygen, "-q", "-N", "", "-C", f"pssh-testing-{name}", *args,
         "-f", os.path.join(workdir, name)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name, args in wanted.items()}
    problems = [_keygen_problem(name, run, deadline) for name, run in runs.items()]
    problems = [text for text in problems if text]
    if problems:
        raise SSHDError("ssh-keygen failed: " + "; ".join(problems))


def _keygen_problem(name: str, run: subprocess.Popen[bytes], deadline: float) -> str:
    try:
        output, _ = run.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        return f"{name}: no result before the start timeout"
    if run.returncode:
        return f"{name}: exit status {run.returncode}: {output.decode(errors='replace')}"
    return ""


def _unanswered(hosts: list[str], port: int, deadline: float) -> dict[str, str]:
    """Hosts that did not send an SSH-2.0 banner this round, with the reason.

    Connects to all first and reads afterwards, so the servers fork their per-connection
    processes in parallel.
    """
    missing: dict[str, str] = {}
    opened: list[tuple[str, socket.socket]] = []
    try:
        for host in hosts:
            try:
                opened.append((host, _connect(host, port, deadline)))
            except OSError as exc:
                missing[host] = str(exc) or type(exc).__name__
        for host, sock in opened:
            reason = _banner_problem(sock, deadline)
            if reason:
                missing[host] = reason
    finally:
        for _, sock in opened:
            sock.close()
    return missing


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    left = deadline - time.monotonic()
    return socket.create_connection((host, port), timeout=min(max(left, 0.01), 1.0))


def _banner_problem(sock: socket.socket, deadline: float) -> str:
    """Empty if the peer sent an SSH-2.0 banner, else what went wrong."""
    sock.settimeout(max(deadline - time.monotonic(), 0.01))
    try:
        with sock.makefile("rb") as stream:
            for _ in range(20):  # RFC 4253 lets a server send other lines first
                line = stream.readline(1024)
                if not line:
                    return "closed without a banner"
                if line.startswith(b"SSH-"):
                    break
            else:
                return "no SSH banner in the first 20 lines"
        if not line.startswith(b"SSH-2.0-"):
            return f"unexpected banner {line[:60]!r}"
        # Answering in kind makes sshd log a quiet disconnect instead of an error.
        sock.sendall(PROBE_BANNER)
    except OSError as exc:
        return str(exc) or type(exc).__name__
    return ""


def _end_process_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM sshd and everything under it; wait for sshd, kill it if it lingers."""
    for pid in _descendants(proc.pid):
        _send(pid, signal.SIGTERM)
        _send(pid, signal.SIGCONT)
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _descendants(root: int) -> list[int]:
    """Pids of every process under ``root``, read from /proc (empty elsewhere)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if name.isdigit():
            parent = _parent_pid(name)
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _parent_pid(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1])


def _send(pid: int, signum: signal.Signals) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
