"""Exceptions as parallel-ssh's scripts handle them: ``args`` laid out as parallel-ssh laid
them out, printf-style constructors, and the builtin exceptions parallel-ssh raised.

The errors are real where a server can make them: a closed port refuses, a listener that
never speaks times the handshake out, ``sleep`` outlasts a join, an unknown key is refused,
and a ``host_args`` dict lacks a key.
"""

from __future__ import annotations

import builtins
import errno
import pickle

import pytest
from conftest import NATIVE_ONLY, keygen

import pssh.exceptions as exc_module
from pssh.exceptions import (
    AuthenticationError,
    ConnectionError,
    HostArgumentError,
    HostArgumentKeyError,
    NoIPv6AddressFoundError,
    ProxyError,
    RefusedConnectionError,
    SSHError,
    Timeout,
    UnknownHostError,
)

UNKNOWN_HOST = "nosuchhost.invalid"


def _assert_host_layout(error: SSHError, host: str, port: int | None) -> None:
    """parallel-ssh's layout for an error about a host: the host at ``args[1]``, the port
    at ``args[2]``; ``args[0]`` is the sentence ``str()`` gives."""
    assert error.args[:3] == (str(error), host, port)
    assert (error.host, error.port) == (host, port)


# --- cannot connect ----------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_a_closed_port_raises_the_builtin_connection_refused(engine, closed_port,
                                                             client_kwargs):
    with pytest.raises(builtins.ConnectionRefusedError) as caught:
        engine.SSHClient("127.0.0.1", **{**client_kwargs, "port": closed_port})

    error = caught.value
    assert isinstance(error, RefusedConnectionError)
    assert isinstance(error, ConnectionError)
    assert isinstance(error, builtins.ConnectionError)
    assert error.errno == errno.ECONNREFUSED
    _assert_host_layout(error, "127.0.0.1", closed_port)
    assert error.args[3] == error.reason == error.strerror
    assert "refused" in str(error)


@pytest.mark.timeout(60)
def test_a_refused_host_in_parallel_output_reads_like_parallel_ssh(engine, closed_port,
                                                                  client_kwargs):
    client = engine.ParallelSSHClient(["127.0.0.1"], **{**client_kwargs, "port": closed_port})

    output = client.run_command("echo unreachable", stop_on_errors=False)

    error = output[0].exception
    assert isinstance(error, builtins.ConnectionRefusedError)
    assert error.args[1] == "127.0.0.1"
    assert error.args[2] == closed_port


@pytest.mark.timeout(60)
def test_an_unknown_host_is_a_builtin_connection_error(engine, client_kwargs):
    try:
        engine.SSHClient(UNKNOWN_HOST, **client_kwargs)
    except builtins.ConnectionError as error:
        assert isinstance(error, UnknownHostError)
        _assert_host_layout(error, UNKNOWN_HOST, client_kwargs["port"])
    else:
        pytest.fail(f"{UNKNOWN_HOST} resolved")


@pytest.mark.timeout(60)
def test_no_ipv6_address_is_a_builtin_connection_error(engine, hosts, client_kwargs):
    with pytest.raises(builtins.ConnectionError) as caught:
        engine.SSHClient(hosts[0], ipv6_only=True, **client_kwargs)

    assert isinstance(caught.value, NoIPv6AddressFoundError)
    _assert_host_layout(caught.value, hosts[0], client_kwargs["port"])


@NATIVE_ONLY
@pytest.mark.timeout(60)
def test_a_proxy_that_refuses_is_a_builtin_connection_error(engine, hosts, client_kwargs,
                                                            closed_port):
    with pytest.raises(builtins.ConnectionError) as caught:
        engine.SSHClient(hosts[0], proxy_host="127.0.0.1", proxy_port=closed_port,
                         **client_kwargs)

    assert isinstance(caught.value, ProxyError)
    _assert_host_layout(caught.value, "127.0.0.1", closed_port)


@pytest.mark.timeout(60)
def test_an_unknown_key_puts_the_host_at_args_1(engine, hosts, client_kwargs, tmp_path):
    stranger = keygen(tmp_path / "stranger")
    kwargs = {**client_kwargs, "pkey": stranger, "allow_agent": False,
              "identity_auth": False}

    with pytest.raises(AuthenticationError) as caught:
        engine.SSHClient(hosts[0], **kwargs)

    _assert_host_layout(caught.value, hosts[0], client_kwargs["port"])


# --- timed out ---------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_a_silent_server_times_out_with_the_host_layout(engine, black_hole, client_kwargs):
    host, port = black_hole

    with pytest.raises(builtins.TimeoutError) as caught:
        engine.SSHClient(host, **{**client_kwargs, "port": port, "timeout": 0.5})

    assert isinstance(caught.value, Timeout)
    _assert_host_layout(caught.value, host, port)


@pytest.mark.timeout(60)
def test_a_join_timeout_has_parallel_ssh_args(parallel):
    output = parallel.run_command("sleep %s", host_args=["0", "5", "0"])

    with pytest.raises(Timeout) as caught:
        parallel.join(output, timeout=0.5)

    error = caught.value
    assert isinstance(error, builtins.TimeoutError)
    assert error.args == (str(error), 0.5, error.finished_output, error.unfinished_output)
    finished_output, unfinished_output = error.args[2], error.args[3]
    assert finished_output == [output[0], output[2]]
    assert unfinished_output == [output[1]]
    assert error.timeout == 0.5


@pytest.mark.timeout(60)
def test_a_join_shells_timeout_has_parallel_ssh_args(parallel):
    shells = parallel.open_shell()
    parallel.run_shell_commands(shells[:1], "sleep 5")

    with pytest.raises(Timeout) as caught:
        parallel.join_shells(shells, timeout=0.5)

    error = caught.value
    assert error.args == (str(error), 0.5, error.finished_output, error.unfinished_output)
    assert error.args[2] == shells[1:]
    assert error.args[3] == shells[:1]


# --- host_args ---------------------------------------------------------------------------

def test_a_host_args_dict_without_the_key_is_a_key_error(parallel, hosts):
    host_args = [{"name": "a"}, {"other": "b"}, {"name": "c"}]

    with pytest.raises(KeyError) as caught:
        parallel.run_command("echo %(name)s", host_args=host_args)

    error = caught.value
    assert isinstance(error, HostArgumentKeyError)
    assert isinstance(error, HostArgumentError)
    assert error.key == "name"
    assert "'name'" in str(error) and hosts[1] in str(error)
    assert error.args[:2] == (str(error), hosts[1])


def test_a_host_args_tuple_that_does_not_fit_is_no_key_error(parallel):
    with pytest.raises(HostArgumentError) as caught:
        parallel.run_command("echo %s %s", host_args=[("a",), ("b",), ("c",)])

    assert not isinstance(caught.value, KeyError)


# --- constructing errors -----------------------------------------------------------------

def test_printf_style_fills_the_message_and_keeps_the_args():
    error = SSHError("Host %s refused on port %s", "h", 22)

    assert str(error) == "Host h refused on port 22"
    assert error.args == ("Host h refused on port 22", "h", 22)


@pytest.mark.parametrize("message, args", [
    ("needs %d", ("not a number",)),
    ("needs %(key)s", ("h",)),
    ("one %s", ("h", 22)),
    ("no placeholder", ("h", 22)),
])
def test_a_template_that_does_not_fit_is_kept_as_given(message, args):
    error = SSHError(message, *args)

    assert str(error) == message
    assert error.args == (message, *args)


def test_a_message_with_percent_and_no_args_is_kept():
    assert str(SSHError("disk 100% full", host="h", port=22)) == "disk 100% full"


def test_keywords_give_the_host_layout():
    error = ConnectionError("Cannot connect to h:22", host="h", port=22, reason="EHOSTDOWN")

    assert error.args == ("Cannot connect to h:22", "h", 22, "EHOSTDOWN")
    assert (error.host, error.port, error.reason) == ("h", 22, "EHOSTDOWN")


def test_an_error_about_no_host_has_only_the_message():
    assert SSHError("bad call").args == ("bad call",)


@pytest.mark.parametrize("error", [
    RefusedConnectionError("refused", host="h", port=22, reason="Connection refused"),
    Timeout("join timed out", timeout=1.0, finished_output=[1], unfinished_output=[2]),
    HostArgumentKeyError("no key 'k'", key="k", host="h"),
    SSHError("Host %s down", "h"),
])
def test_errors_survive_pickling(error):
    copy = pickle.loads(pickle.dumps(error))

    assert type(copy) is type(error)
    assert copy.args == error.args
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    assert getattr(copy, "errno", None) == getattr(error, "errno", None)


# --- builtin catchability ----------------------------------------------------------------

@pytest.mark.parametrize("name, builtin", [
    ("ConnectionError", builtins.ConnectionError),
    ("ConnectionErrorException", builtins.ConnectionError),
    ("RefusedConnectionError", builtins.ConnectionRefusedError),
    ("UnknownHostError", builtins.ConnectionError),
    ("NoIPv6AddressFoundError", builtins.ConnectionError),
    ("ProxyError", builtins.ConnectionError),
    ("Timeout", builtins.TimeoutError),
    ("HostArgumentKeyError", KeyError),
    ("HostConfigError", ValueError),
])
def test_pssh_errors_are_the_builtins_parallel_ssh_raised(name, builtin):
    cls = getattr(exc_module, name)

    assert issubclass(cls, builtin)
    assert issubclass(cls, SSHError)
    assert name in exc_module.__all__


def test_an_os_error_from_a_connection_error_has_no_bogus_errno():
    error = ConnectionError("Cannot connect to h:22", host="h", port=22)

    assert isinstance(error, OSError)
    assert (error.errno, error.strerror, error.filename) == (None, None, None)
