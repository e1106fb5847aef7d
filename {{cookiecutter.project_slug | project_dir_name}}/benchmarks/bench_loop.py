"""`make bench-loop`: the whole loop run by Make and DVC, against Dagster's `loop` job.

A development tool, kept out of the package. Each round runs, in turn, on this project:

* ``make all`` with every DVC stage out of date (``dvc.lock`` set aside: all stages run);
* ``make all`` again, nothing changed (DVC skips data to evaluate; the rest always runs);
* ``make orchestrate``: Dagster materializes the whole graph in one process (it has no cache
  of its own, so every asset runs).

Prints the median wall time of each over the rounds, and the ratio to the first, as Markdown;
``--output FILE`` also writes it there. ``dvc.lock`` is put back at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
RUNS = {
    "`make all`, every DVC stage out of date": ["make", "all"],
    "`make all`, nothing changed (DVC skips to register)": ["make", "all"],
    "`make orchestrate` (Dagster job `loop`, in-process)": ["make", "orchestrate"],
}


def timed(command: list[str], env: dict[str, str]) -> float:
    """Seconds `command` took in the project; its failure stops the benchmark."""
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="Rounds (median over them).")
    parser.add_argument("--output", type=Path, help="Also write the table to this file.")
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    lock = PROJECT_DIR / "dvc.lock"
    saved = lock.with_suffix(".lock.bench")
    if lock.exists():
        shutil.copy2(lock, saved)
    times: dict[str, list[float]] = {label: [] for label in RUNS}
    try:
        timed(["make", "all"], env)  # warm: caches, the champion, the manifest
        for _ in range(args.rounds):
            for index, (label, command) in enumerate(RUNS.items()):
                if index == 0:
                    lock.unlink(missing_ok=True)
                times[label].append(timed(command, env))
    finally:
        if saved.exists():
            saved.replace(lock)
    first = statistics.median(next(iter(times.values())))
    lines = [
        f"Whole loop on this project, median of {args.rounds} rounds "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}):",
        "",
        "| run | median s | vs first |",
        "|---|---:|---:|",
        *(
            f"| {label} | {statistics.median(values):.1f} | "
            f"{statistics.median(values) / first:.2f}x |"
            for label, values in times.items()
        ),
    ]
    table = "\n".join(lines)
    print(table)
    if args.output:
        args.output.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
