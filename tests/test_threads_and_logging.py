"""Clients in native threads, file descriptors after clients are gone, and the loggers."""

from __future__ import annotations

import gc
import logging
import os
import threading

import gevent
import pytest

from pssh.clients import ParallelSSHClient, SSHClient
from pssh.utils import (
    enable_debug_logger,
    enable_host_logger,
    enable_logger,
    host_logger,
    logger,
)

SERVER_ADDRESS = "set -- $SSH_CONNECTION; echo $3"


class _Records(logging.Handler):
    """Keeps the messages of one logger, whether or not it propagates to the root."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# --- threads -----------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_clients_in_native_threads(sshd, client_kwargs):
    results, errors, hubs = {}, {}, {}

    def work(name, targets):
        try:
            import gevent as thread_gevent

            from pssh.clients import ParallelSSHClient as ThreadClient

            hubs[name] = thread_gevent.get_hub()
            client = ThreadClient(targets, **client_kwargs)
            output = client.run_command(f"echo {name}; {SERVER_ADDRESS}")
            client.join(output)
            results[name] = [(out.host, list(out.stdout), out.exit_code) for out in output]
        except BaseException as error:  # noqa: BLE001 - reported by the assertions below
            errors[name] = error

    groups = {f"thread{i}": sshd.hosts[3 * i:3 * i + 3] for i in range(3)}
    threads = [threading.Thread(target=work, args=item) for item in groups.items()]
    for thread in threads:
        thread.start()
    work("main", sshd.hosts[20:22])
    for thread in threads:
        thread.join(timeout=90)

    assert [thread.name for thread in threads if thread.is_alive()] == []
    assert errors == {}
    groups["main"] = sshd.hosts[20:22]
    for name, targets in groups.items():
        assert results[name] == [(host, [name, host], 0) for host in targets]
    assert hubs["main"] is gevent.get_hub()
    assert len({id(hub) for hub in hubs.values()}) == 4
    hubs.clear()


# --- file descriptors --------------------------------------------------------------------

def _open_fds():
    return len(os.listdir("/proc/self/fd"))


def _use_and_drop_clients(hosts, client_kwargs, count):
    clients = [ParallelSSHClient(hosts[:2], **client_kwargs) for _ in range(count)]
    outputs = [client.run_command("echo used") for client in clients]
    for client, output in zip(clients, outputs):
        client.join(output)
        assert [list(out.stdout) for out in output] == [["used"], ["used"]]
    del clients, outputs, client, output
    gc.collect()


@pytest.mark.timeout(120)
def test_deleted_parallel_clients_leave_no_descriptors(hosts, client_kwargs):
    _use_and_drop_clients(hosts, client_kwargs, 10)  # warms up the hub and thread pool
    before = _open_fds()

    _use_and_drop_clients(hosts, client_kwargs, 10)

    assert _open_fds() == before


def test_disconnected_single_client_leaves_no_descriptors(hosts, client_kwargs):
    SSHClient(hosts[0], **client_kwargs).disconnect()
    gc.collect()
    before = _open_fds()

    client = SSHClient(hosts[0], **client_kwargs)
    client.wait_finished(client.run_command("true"))
    client.disconnect()
    del client
    gc.collect()

    assert _open_fds() == before


def test_context_manager_leaves_no_descriptors(hosts, client_kwargs):
    SSHClient(hosts[0], **client_kwargs).disconnect()
    gc.collect()
    before = _open_fds()

    with SSHClient(hosts[0], **client_kwargs) as client:
        client.wait_finished(client.run_command("true"))
    del client
    gc.collect()

    assert _open_fds() == before


# --- logging -----------------------------------------------------------------------------

def test_logger_names():
    assert logger.name == "pssh"
    assert host_logger.name == "pssh.host_logger"


def test_host_logger_logs_each_line_on_join(hosts, client_kwargs, restore_loggers):
    enable_host_logger()
    records = _Records()
    host_logger.addHandler(records)
    client = ParallelSSHClient(hosts[:2], **client_kwargs)

    output = client.run_command("echo one; echo two")
    client.join(output, consume_output=True)

    for host in hosts[:2]:
        mine = [message for message in records.messages if message.startswith(f"[{host}]")]
        assert mine == [f"[{host}]\tone", f"[{host}]\ttwo"]


def test_enable_host_logger_twice_adds_one_handler(restore_loggers):
    enable_host_logger()
    enable_host_logger()

    streams = [handler for handler in host_logger.handlers
               if isinstance(handler, logging.StreamHandler)]
    assert len(streams) == 1
    assert host_logger.isEnabledFor(logging.INFO)


def test_enable_debug_logger(restore_loggers):
    enable_debug_logger()

    assert logger.isEnabledFor(logging.DEBUG)


def test_enable_logger_on_a_pssh_logger(restore_loggers):
    enable_logger(logger, logging.WARNING)

    assert logger.level == logging.WARNING
    assert any(isinstance(handler, logging.StreamHandler) for handler in logger.handlers)
