"""Measure what a user waits for: render, install (cold and warm uv cache), the generated tests.

Prints a Markdown table and writes it into docs/benchmarks.md between the BENCH markers. Figures
are medians of repeated runs; render time is also given as a ratio to a peer measured in the same
run: cookiecutter rendering a one-file template (its own floor: start-up, prompts, hooks machinery).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import BakedProject, project_env  # noqa: E402 - the tests' clean environment
from tests.test_generated import commit, write_accounts  # noqa: E402 - the tests' team table

BENCHMARKS = REPO / "docs" / "benchmarks.md"
LOOP_STEPS = ["data", "validate", "train", "evaluate", "register", "promote", "score", "monitor"]
BEGIN, END = "<!-- BENCH:template:begin -->", "<!-- BENCH:template:end -->"


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall time of one run of `command`; a failure stops the benchmark with its output."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return elapsed


def render_times(template: Path, label: str, repeats: int, scratch: Path) -> list[float]:
    times = []
    for index in range(repeats):
        out = scratch / f"render-{label}-{index}"
        out.mkdir()
        cookiecutter = [sys.executable, "-m", "cookiecutter", "--no-input", str(template)]
        times.append(timed([*cookiecutter, "--output-dir", str(out)], cwd=scratch))
    return times


def make_floor_template(scratch: Path) -> Path:
    """The peer: the smallest template cookiecutter can render (one file, no hooks)."""
    floor = scratch / "floor-template"
    (floor / "{{cookiecutter.name}}").mkdir(parents=True)
    (floor / "cookiecutter.json").write_text('{"name": "floor"}\n', encoding="utf-8")
    (floor / "{{cookiecutter.name}}" / "README.md").write_text("# {{ cookiecutter.name }}\n")
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--renders", type=int, default=7, help="renders per template")
    parser.add_argument("--test-runs", type=int, default=3, help="runs of the generated tests")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-template-") as tmp:
        scratch = Path(tmp)
        ours = render_times(REPO, "ours", args.renders, scratch)
        floor = render_times(make_floor_template(scratch), "floor", args.renders, scratch)

        env = project_env()
        cold_env = {**env, "UV_CACHE_DIR": str(scratch / "empty-uv-cache")}
        cold_project = scratch / "render-ours-0" / "customer-quality"
        warm_project = scratch / "render-ours-1" / "customer-quality"
        cold = timed(["make", "setup"], cold_project, cold_env)
        warm = timed(["make", "setup"], warm_project, env)
        # The loop's steps one by one on a fresh project, then `validate` again: DVC finds
        # nothing changed and skips every stage (the no-op repro).
        steps = [
            (f"`make {step}`", timed(["make", step], warm_project, env)) for step in LOOP_STEPS
        ]
        again = timed(["make", "validate"], warm_project, env)
        steps.append(("`make validate` again (no-op `dvc repro`)", again))
        tests = [timed(["make", "test"], warm_project, env) for _ in range(args.test_runs)]
        # A team's own table, the documented path: commit, adopt, commit, the whole loop.
        adopting = BakedProject(scratch / "render-ours-2" / "customer-quality", {})
        timed(["make", "setup"], adopting.path, env)
        commit(adopting, "Before adopting")
        table = write_accounts(scratch / "accounts.csv")
        adopt = ["make", "adopt", f"FILE={table}", "ID=account_no", "LABEL=churned"]
        adopted = [("`make adopt`, a 3,000-row CSV", timed(adopt, adopting.path, env))]
        commit(adopting, "Adopt accounts.csv")
        loop = timed(["make", "all"], adopting.path, env)
        adopted.append(("`make all` on the adopted table", loop))

    rows = [
        ("render, `cookiecutter --no-input` (median)", statistics.median(ours)),
        ("peer: cookiecutter, one-file template (median)", statistics.median(floor)),
        ("install, `make setup`, cold uv cache", cold),
        ("install, `make setup`, warm uv cache", warm),
        ("generated `make test` (median)", statistics.median(tests)),
    ]
    table = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.renders} renders, {args.test_runs} test runs.",
        "",
        "| what | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in rows),
        f"| render / peer ratio | {statistics.median(ours) / statistics.median(floor):.2f}x |",
        "",
        "The loop, step by step on a fresh project (`make <step>`, one run each, wall time",
        "including `uv run` and the tools' start-up):",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in steps),
        "",
        "Bring your own data (README): a fresh project adopts a team's table, then runs the loop",
        "on it (one run each):",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in adopted),
    ]
    text = "\n".join(table)
    print(text)
    document = BENCHMARKS.read_text(encoding="utf-8")
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    BENCHMARKS.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
