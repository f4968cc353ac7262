"""Connection set-ups against a server that turns extra ones away (sshd's MaxStartups).

A server of this module's own allows 3 connections at a time that have not finished
logging in (``MaxStartups 3``) and logs each one it drops. Forty hosts on its one
address connect at once: with ``handshake_limit`` at 3, none is dropped; without a
limit and without retries, the dropped ones fail with a message that names MaxStartups
and the fix. A listener that closes the first connections before the banner, then relays
to the server, shows that such a drop is retried.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
import threading
from collections.abc import Iterator

import gevent
import pytest
from conftest import assert_names_host, process_table, wait_until

from pssh.clients.base._handshakes import HandshakeSlots
from pssh.constants import DEFAULT_HANDSHAKE_LIMIT
from pssh.exceptions import ConnectionError, Timeout
from pssh.testing import LocalSSHD

MAX_STARTUPS = 3
CONNECTIONS = 40
DROPPED = "past MaxStartups"


@pytest.fixture(scope="module")
def busy_sshd() -> Iterator[LocalSSHD]:
    """An sshd with ``MaxStartups 3`` logging the connections it drops."""
    server = LocalSSHD(num_hosts=1, first_address=240,
                       extra_config={"MaxStartups": str(MAX_STARTUPS), "LogLevel": "INFO"})
    server.start()
    yield server
    server.stop()


def _run_everywhere(engine, server: LocalSSHD, **kwargs) -> list:
    # Connections still ending (the start-up check's, an earlier test's) would count
    # against MaxStartups too: start from an idle server.
    wait_until(lambda: server.pid not in process_table().values(), 30,
               "the earlier connections to the busy sshd to end")
    client = engine.ParallelSSHClient([server.hosts[0]] * CONNECTIONS,
                                      **{**server.client_kwargs(), **kwargs})
    try:
        output = client.run_command("echo ok", stop_on_errors=False)
        client.join(output, timeout=60)
        for host_out in output:
            if host_out.exception is None:
                list(host_out.stdout)
        return output
    finally:
        client.disconnect()


def test_a_limit_at_max_startups_lets_every_connection_in(engine, busy_sshd):
    drops_before = busy_sshd.read_log().count(DROPPED)

    output = _run_everywhere(engine, busy_sshd, handshake_limit=MAX_STARTUPS)

    assert [host_out.exception for host_out in output] == [None] * CONNECTIONS
    assert [host_out.exit_code for host_out in output] == [0] * CONNECTIONS
    assert busy_sshd.read_log().count(DROPPED) == drops_before


def test_without_a_limit_dropped_connections_name_max_startups(engine, busy_sshd):
    drops_before = busy_sshd.read_log().count(DROPPED)

    output = _run_everywhere(engine, busy_sshd, handshake_limit=None)

    failed = [host_out.exception for host_out in output if host_out.exception is not None]
    assert failed, "no connection was dropped"
    assert busy_sshd.read_log().count(DROPPED) > drops_before
    for error in failed:
        assert isinstance(error, ConnectionError)
        assert_names_host(error, busy_sshd.hosts[0], busy_sshd.port)
        assert "MaxStartups" in str(error) and "handshake_limit" in str(error)
        assert error.reason  # the library's own words
    assert any(host_out.exit_code == 0 for host_out in output)


class DroppingRelay:
    """A loopback listener that closes its first ``drops`` connections at once, as a
    busy sshd does, and relays the later ones to ``target`` (with ``None``, keeps them
    open and says nothing)."""

    def __init__(self, target: tuple[str, int] | None, drops: int) -> None:
        self.target = target
        self.drops = drops
        self.accepted = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._closing = threading.Event()
        self._relayed: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._closing.set()
        for sock in self._relayed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)
        for sock in (*self._relayed, self._server):
            sock.close()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            if self.accepted <= self.drops:
                conn.close()
                continue
            if self.target is None:
                self._relayed.append(conn)
                continue
            upstream = socket.create_connection(self.target)
            self._relayed += [conn, upstream]
            for source, sink in ((conn, upstream), (upstream, conn)):
                thread = threading.Thread(target=_pump, args=(source, sink), daemon=True)
                self._threads.append(thread)
                thread.start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def dropping_relay(sshd) -> Iterator[DroppingRelay]:
    relay = DroppingRelay((sshd.hosts[0], sshd.port), drops=2)
    yield relay
    relay.close()


def test_a_connection_closed_before_the_banner_is_retried(engine, client_kwargs,
                                                          dropping_relay):
    kwargs = {**client_kwargs, "port": dropping_relay.port, "num_retries": 2,
              "retry_delay": 0}
    client = engine.ParallelSSHClient(["127.0.0.1"], **kwargs)

    output = client.run_command("echo ok")
    client.join(output)

    assert list(output[0].stdout) == ["ok"]
    assert dropping_relay.accepted == 3
    client.disconnect()


def test_the_last_drop_fails_naming_max_startups(engine, client_kwargs, dropping_relay):
    kwargs = {**client_kwargs, "port": dropping_relay.port, "num_retries": 1,
              "retry_delay": 0}
    client = engine.ParallelSSHClient(["127.0.0.1"], **kwargs)

    with pytest.raises(ConnectionError, match="MaxStartups") as caught:
        client.run_command("echo ok")

    assert_names_host(caught.value, "127.0.0.1", dropping_relay.port)
    assert dropping_relay.accepted == 2


def test_a_retry_after_a_drop_keeps_to_the_timeout(engine, client_kwargs):
    relay = DroppingRelay(None, drops=1)  # then a server that never answers
    kwargs = {**client_kwargs, "port": relay.port, "num_retries": 1, "retry_delay": 0,
              "timeout": 0.5}
    try:
        client = engine.ParallelSSHClient(["127.0.0.1"], **kwargs)
        with pytest.raises(Timeout) as caught:
            client.run_command("echo ok")
    finally:
        relay.close()

    assert_names_host(caught.value, "127.0.0.1", relay.port)
    assert relay.accepted == 2


def test_handshake_limit_is_keyword_only_with_a_default_below_sshds(engine, hosts):
    parameter = inspect.signature(engine.ParallelSSHClient).parameters["handshake_limit"]

    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default == DEFAULT_HANDSHAKE_LIMIT < 10
    assert engine.ParallelSSHClient(hosts).handshake_limit == DEFAULT_HANDSHAKE_LIMIT


@pytest.mark.parametrize("no_limit", [None, 0])
def test_none_and_zero_mean_no_limit(engine, hosts, no_limit):
    assert engine.ParallelSSHClient(hosts, handshake_limit=no_limit).handshake_limit is None


@pytest.mark.parametrize("bad", [-1, True, 2.5, "3"])
def test_a_bad_handshake_limit_is_refused(engine, hosts, bad):
    with pytest.raises(ValueError, match="handshake_limit"):
        engine.ParallelSSHClient(hosts, handshake_limit=bad)


def test_slots_hold_each_destination_to_its_limit_alone():
    slots = HandshakeSlots(2)
    inside = {("a", 22): 0, ("b", 22): 0}
    most = dict(inside)

    def set_up(address: str) -> None:
        with slots.slot(address, 22):
            inside[(address, 22)] += 1
            most[(address, 22)] = max(most[(address, 22)], inside[(address, 22)])
            gevent.sleep(0.001)
            inside[(address, 22)] -= 1

    gevent.joinall([gevent.spawn(set_up, address) for address in "ab" * 6], raise_error=True)

    assert most == {("a", 22): 2, ("b", 22): 2}
    assert "0 destinations busy" in repr(slots)


def test_a_destination_is_shared_only_while_another_host_holds_or_awaits_it():
    slots = HandshakeSlots(1)
    with slots.slot("a", 22):
        assert not slots.is_shared("a", 22)

        def take_a_turn() -> None:
            with slots.slot("a", 22):
                pass
        waiting = gevent.spawn(take_a_turn)
        gevent.sleep(0)
        assert slots.is_shared("a", 22)
        assert not slots.is_shared("b", 22)
    waiting.join()
    assert not slots.is_shared("a", 22)
