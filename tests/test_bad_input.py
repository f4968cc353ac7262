"""Every wrong argument of the public API is refused before any connection is made.

The clients point at a relay in front of the real sshd that counts the connections it
accepts: a working call would connect through it, so a count of zero after the refusal
shows the check came first. Each case asserts the exception's type and a word of its
message that names what is wrong.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import keygen

from pssh.clients import native
from pssh.config import HostConfig
from pssh.exceptions import HostArgumentError, HostConfigError, InvalidAPIUseError, PKeyFileError


class CountingRelay:
    """A TCP relay on 127.0.0.1 to one sshd address, counting accepted connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.count = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.count += 1
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                conn.close()
                continue
            for source, sink in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._closing = True
        self._server.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` into ``sink`` until either ends; then end both and close
    ``source`` (the pipe the other way closes ``sink``)."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        source.close()


@pytest.fixture
def relay(sshd, hosts) -> Iterator[CountingRelay]:
    relay = CountingRelay((hosts[0], sshd.port))
    yield relay
    relay.close()


@pytest.fixture
def relayed(client_kwargs, relay) -> dict[str, Any]:
    """Client arguments that reach the sshd through the relay."""
    return {**client_kwargs, "port": relay.port}


def _refused(relay: CountingRelay, error: type[BaseException], word: str,
             call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(error) as caught:
        call(*args, **kwargs)
    assert word.lower() in str(caught.value).lower()
    assert relay.count == 0, "the call connected before refusing its argument"


def test_the_relay_counts_a_working_call(engine, relay, relayed):
    client = engine.ParallelSSHClient(["127.0.0.1"], **relayed)
    output = client.run_command("echo through")
    client.join(output)
    assert [list(out.stdout) for out in output] == [["through"]]
    assert relay.count == 1
    client.disconnect()


# --- constructors --------------------------------------------------------------------------

BAD_CONSTRUCTOR_ARGUMENTS = [
    ({"port": 0}, ValueError, "port"),
    ({"port": "22"}, ValueError, "port"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"num_retries": -1}, ValueError, "num_retries"),
    ({"retry_delay": float("nan")}, ValueError, "retry_delay"),
    ({"keepalive_seconds": -5}, ValueError, "keepalive_seconds"),
    ({"user": 1000}, TypeError, "user"),
    ({"password": b"bytes"}, TypeError, "password"),
    ({"pkey": "/no/such/key"}, PKeyFileError, "does not exist"),
    ({"pkey": b"not a key at all"}, PKeyFileError, "not a private key"),
    ({"pkey": 42}, TypeError, "pkey"),
    ({"keyboard_interactive": True}, InvalidAPIUseError, "password"),
]


@pytest.mark.parametrize("kwargs, error, word", BAD_CONSTRUCTOR_ARGUMENTS,
                         ids=[repr(case[0]) for case in BAD_CONSTRUCTOR_ARGUMENTS])
def test_a_bad_constructor_argument_is_refused(engine, relay, relayed, kwargs, error, word):
    settings = {**relayed, **kwargs}
    _refused(relay, error, word, engine.SSHClient, "127.0.0.1", **settings)
    _refused(relay, error, word, engine.ParallelSSHClient, ["127.0.0.1"], **settings)


@pytest.mark.parametrize("kwargs, word", [({"pool_size": 0}, "pool_size"),
                                          ({"host_config": [HostConfig()] * 2}, "entries")])
def test_a_bad_parallel_argument_is_refused(engine, relay, relayed, kwargs, word):
    error = HostConfigError if "host_config" in kwargs else ValueError
    _refused(relay, error, word, engine.ParallelSSHClient, ["127.0.0.1"], **relayed, **kwargs)


@pytest.mark.parametrize("bad_hosts", ["127.0.0.1", [None], [""], 7])
def test_hosts_that_are_not_a_list_of_names_are_refused(engine, relay, relayed, bad_hosts):
    _refused(relay, TypeError, "host", engine.ParallelSSHClient, bad_hosts, **relayed)


def test_a_public_key_given_as_the_private_key_is_refused(engine, relay, relayed, tmp_path):
    key = keygen(tmp_path / "id")
    _refused(relay, PKeyFileError, "public key", engine.SSHClient, "127.0.0.1",
             **{**relayed, "pkey": key + ".pub"})


def test_an_encrypted_key_without_its_passphrase_is_refused(engine, relay, relayed, tmp_path):
    key = keygen(tmp_path / "id", passphrase="secret-words")
    _refused(relay, PKeyFileError, "passphrase", engine.SSHClient, "127.0.0.1",
             **{**relayed, "pkey": key})


# --- calls ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command, error, word", [(None, TypeError, "command"),
                                                  (42, TypeError, "command"),
                                                  ("", ValueError, "empty"),
                                                  ("   ", ValueError, "empty")],
                         ids=["None", "int", "empty", "blank"])
def test_a_command_that_is_not_one_is_refused(engine, relay, relayed, command, error, word):
    client = engine.ParallelSSHClient(["127.0.0.1"], **relayed)
    _refused(relay, error, word, client.run_command, command)


@pytest.mark.parametrize("kwargs, error, word", [
    ({"encoding": "no-such-codec"}, ValueError, "encoding"),
    ({"read_timeout": -1}, ValueError, "read_timeout"),
    ({"buffer_limit": 0}, ValueError, "buffer_limit"),
    ({"host_args": []}, HostArgumentError, "host_args"),
], ids=["encoding", "read_timeout", "buffer_limit", "host_args"])
def test_a_bad_run_command_argument_is_refused(engine, relay, relayed, kwargs, error, word):
    client = engine.ParallelSSHClient(["127.0.0.1"], **relayed)
    _refused(relay, error, word, client.run_command, "echo %s", **kwargs)


@pytest.mark.parametrize("output", ["not outputs", [1, 2], 42], ids=repr)
def test_join_refuses_what_is_not_run_commands_output(engine, relay, relayed, output):
    client = engine.ParallelSSHClient(["127.0.0.1"], **relayed)
    _refused(relay, TypeError, "output", client.join, output)


def test_open_shell_refuses_an_unknown_encoding(engine, relay, relayed):
    client = engine.ParallelSSHClient(["127.0.0.1"], **relayed)
    _refused(relay, ValueError, "encoding", client.open_shell, encoding="no-such-codec")


@pytest.mark.parametrize("method", ["copy_file", "scp_send"])
def test_an_upload_of_a_missing_local_file_is_refused(relay, relayed, tmp_path, method):
    client = native.ParallelSSHClient(["127.0.0.1"], **relayed)
    _refused(relay, FileNotFoundError, "does not exist", getattr(client, method),
             str(tmp_path / "missing"), "/tmp/target")


def test_a_download_with_an_unknown_encoding_is_refused(relay, relayed, tmp_path):
    client = native.ParallelSSHClient(["127.0.0.1"], **relayed)
    _refused(relay, ValueError, "encoding", client.copy_remote_file, "/etc/hostname",
             str(tmp_path / "copy"), encoding="no-such-codec")
