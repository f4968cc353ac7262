"""Draw the pool-size experiment (run.py's ``pool`` workload) as a PNG and a markdown table.

Usage::

    python benchmarks/run.py --workloads pool --clients pssh,parallel-ssh,paramiko \\
        --out benchmarks/results/pool.jsonl
    python benchmarks/plot_pool.py benchmarks/results/pool.jsonl doc/_static/pool_size.png

The second command needs matplotlib (``pip install matplotlib``) and prints the table.
Each run is one ``cat`` of a 26 KB file on N hosts with a pool of N: "started" is the
time until ``run_command`` returned (connect, authenticate, command sent to every host),
"finished" the time from then until every command had ended, "read" the time from then
until every line was read, and "total" the sum. Points are medians of the repeats.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

PHASES = ("started", "finished", "read", "total")
TITLES = {"started": "commands started", "finished": "commands finished",
          "read": "output read", "total": "total"}
STYLES = {"pssh": "-o", "parallel-ssh": "--s", "paramiko": ":^"}


def durations(phases: dict[str, float]) -> dict[str, float]:
    """Milliseconds spent in each phase, from the child's cumulative phase ends."""
    started, finished, read = phases["started"], phases["finished"], phases["read"]
    return {"started": started * 1000, "finished": (finished - started) * 1000,
            "read": (read - finished) * 1000, "total": read * 1000}


def medians(path: str) -> dict[str, dict[int, dict[str, float]]]:
    """client -> pool size -> phase -> median milliseconds, over runs with every host ok."""
    samples: dict[str, dict[int, list[dict[str, float]]]] = defaultdict(
        lambda: defaultdict(list))
    with open(path) as lines:
        for line in lines:
            run = json.loads(line)
            if run.get("kind") != "run" or run["workload"] != "pool" or run["failed"]:
                continue
            samples[run["client"]][run["hosts"]].append(durations(run["phases"]))
    return {client: {size: {phase: statistics.median(run[phase] for run in runs)
                            for phase in PHASES}
                     for size, runs in sorted(by_size.items())}
            for client, by_size in samples.items()}


def table(results: dict[str, dict[int, dict[str, float]]]) -> str:
    clients = list(results)
    head = "| pool size = hosts | " + " | ".join(
        f"{client} {phase} ms" for client in clients for phase in PHASES) + " |"
    rows = [head, "|---:|" + "---:|" * (len(clients) * len(PHASES))]
    for size in sorted({size for by_size in results.values() for size in by_size}):
        cells = [f"{results[client][size][phase]:.0f}" if size in results[client] else "-"
                 for client in clients for phase in PHASES]
        rows.append(f"| {size} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(results: dict[str, dict[int, dict[str, float]]], png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for axis, phase in zip(axes.flat, PHASES):
        for client, by_size in results.items():
            sizes = sorted(by_size)
            axis.plot(sizes, [by_size[size][phase] for size in sizes],
                      STYLES.get(client, "-"), label=client, markersize=4)
        axis.set_title(TITLES[phase])
        axis.set_ylabel("ms")
        axis.grid(True, alpha=0.3)
    for axis in axes[1]:
        axis.set_xlabel("pool size = hosts (one `cat` of 26 KB each)")
    axes[0][0].legend()
    figure.suptitle("Pool size 1 to 100 on a loopback sshd: medians")
    figure.tight_layout()
    figure.savefig(png, dpi=100)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: plot_pool.py RESULTS.jsonl OUTPUT.png")
    results = medians(argv[0])
    if not results:
        raise SystemExit(f"no successful pool runs in {argv[0]}")
    print(table(results))
    plot(results, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
