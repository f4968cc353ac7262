"""HostOutput and the exception classes on their own, without a server."""

from __future__ import annotations

from pssh.exceptions import ConnectionError, SSHError, Timeout
from pssh.output import HostOutput


def _failed_output():
    error = ConnectionError("cannot connect to h:22", host="h", port=22)
    return HostOutput(host="h", channel=None, stdin=None, client=None, exception=error), error


def test_failed_output_has_no_lines():
    output, _ = _failed_output()

    assert list(output.stdout) == []
    assert list(output.stderr) == []


def test_failed_output_has_no_exit_code():
    output, error = _failed_output()

    assert output.exit_code is None
    assert output.exception is error
    assert output.host == "h"


def test_output_repr_names_the_host():
    output, _ = _failed_output()

    assert "h" in repr(output)
    assert "HostOutput" in repr(output)


def test_error_carries_host_and_port():
    error = SSHError("something failed on h:2222", host="h", port=2222)

    assert (error.host, error.port) == ("h", 2222)
    assert str(error) == "something failed on h:2222"


def test_timeout_lists_default_to_empty():
    error = Timeout("ran out of time")

    assert error.finished_output == []
    assert error.unfinished_output == []
    assert isinstance(error, SSHError)
