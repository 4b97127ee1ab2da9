"""How long the ``rasoat`` command takes to answer ``--version`` and ``--help``, beside a bare Python start
in the same run (what no command can go below on this machine at this moment).

    .venv/bin/python benchmarks/cli_startup.py -n 15

Each command runs ``-n`` times alternately in a fresh process; the median and the best wall time are
reported, with the 1-minute load average (the machine is shared, so a figure means little without it).
CPU time (user+system of the child) is printed too: it is less disturbed by other processes than wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RASOAT = str(Path(sys.executable).with_name("rasoat"))
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "rasoat --version": [RASOAT, "--version"],
    "rasoat --help": [RASOAT, "--help"],
}


def one(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="runs per command")
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm the page cache and .pyc files
        one(cmd)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(args.n):
        for name, cmd in COMMANDS.items():
            results[name].append(one(cmd))
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}, runs: {args.n}")
    print(f"{'command':<18} {'median s':>9} {'best s':>8} {'median CPU s':>13}")
    for name, runs in results.items():
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        median, best, cpu = statistics.median(walls), min(walls), statistics.median(cpus)
        print(f"{name:<18} {median:>9.3f} {best:>8.3f} {cpu:>13.3f}")


if __name__ == "__main__":
    main()
