"""Results in the order hosts finish (``iter_completed``), while ``output`` keeps host
order; the command line is built on this."""

from __future__ import annotations

import pytest

from pssh.exceptions import Timeout


def test_outputs_come_in_the_order_their_commands_end(parallel):
    # The first host finishes last, the last host first.
    output = parallel.run_command("sleep %s; echo done", host_args=("1.5", "0.8", "0"))

    ended = list(parallel.iter_completed(output))

    assert [out.host for out in ended] == list(reversed(parallel.hosts))
    assert [out.host for out in output] == parallel.hosts
    assert all(out.exit_code == 0 and list(out.stdout) == ["done"] for out in ended)


def test_a_failed_host_is_yielded_with_its_error(engine, hosts, client_kwargs, closed_port):
    from pssh.config import HostConfig

    client = engine.ParallelSSHClient(hosts[:2], **client_kwargs,
                                      host_config=[HostConfig(), HostConfig(port=closed_port)])
    output = client.run_command("echo fine", stop_on_errors=False)

    ended = {out.host: out for out in client.iter_completed(output)}

    assert ended[hosts[0]].exit_code == 0
    assert ended[hosts[1]].exception is not None and ended[hosts[1]].exit_code is None
    client.disconnect()


@pytest.mark.timeout(60)
def test_timeout_lists_what_finished_and_what_did_not(parallel):
    output = parallel.run_command("sleep %s", host_args=("0", "30", "30"))
    seen = []

    with pytest.raises(Timeout) as caught:
        for host_out in parallel.iter_completed(output, timeout=2):
            seen.append(host_out)

    assert seen == [output[0]] == caught.value.finished_output
    assert caught.value.unfinished_output == output[1:]


def test_consume_output_drops_lines_as_they_come(parallel):
    output = parallel.run_command("seq 1 1000")
    ended = list(parallel.iter_completed(output, consume_output=True))
    assert [out.exit_code for out in ended] == [0, 0, 0]
    assert [list(out.stdout) for out in output] == [[], [], []]
