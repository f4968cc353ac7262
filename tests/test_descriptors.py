"""A process out of file descriptors: every host ends with its output or a typed error
naming it, within the caller's time, and nothing hangs.

The client runs in a child process that lowers its own soft limit on open files (as on
the many machines whose default is 1,024) before running a command on more hosts than it
has descriptors for. The child prints what each host ended with, as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys
limit, engine, hosts, kwargs = sys.argv[1:5]
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (int(limit), hard))
import importlib
clients = importlib.import_module("pssh.clients." + engine)
client = clients.ParallelSSHClient(json.loads(hosts), **json.loads(kwargs))
output = client.run_command("echo ok", stop_on_errors=False)
client.join(output, timeout=60)
print(json.dumps([[out.host, type(out.exception).__name__ if out.exception else None,
                   str(out.exception or ""), out.exit_code] for out in output]))
"""


@pytest.mark.timeout(180)
def test_more_hosts_than_descriptors_each_host_ends_with_output_or_a_named_error(
        engine, sshd, client_kwargs):
    hosts = sshd.hosts * 2  # 200 connections for a process allowed 64 open files
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "64", engine.__name__.rpartition(".")[2],
         json.dumps(hosts), json.dumps({**client_kwargs, "timeout": 30})],
        capture_output=True, text=True, timeout=150)

    assert result.returncode == 0, result.stderr[-3000:]
    ended = json.loads(result.stdout)
    assert [host for host, *_ in ended] == hosts
    succeeded = [host for host, error, _, code in ended if error is None and code == 0]
    failed = [(host, error, message) for host, error, message, _ in ended if error]
    assert succeeded and failed
    for host, error, message in failed:
        assert error == "ConnectionError"
        assert host in message and "file descriptors" in message and "ulimit -n" in message
    assert "Traceback" not in result.stderr
