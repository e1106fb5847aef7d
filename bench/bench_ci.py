"""Time the generated `ci` pipeline's steps on this machine, as the slow tier runs them.

Renders the defaults (GitHub Actions), runs `make setup` once (a runner's cold start is not
measured: it depends on the runner's cache), then runs the `ci` workflow's jobs step by step
with the slow tier's runner (tests/workflows.py): the same commands, environment and fakes. The
image is built with podman on the local stand-ins for the Dockerfile's base images. Prints a
Markdown table and writes it into docs/benchmarks.md between the BENCH markers.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import COMBINATIONS, bake_into  # noqa: E402 - the tests' renders
from tests.images import image_store  # noqa: E402 - the local base images
from tests.test_generated import Pipelines  # noqa: E402 - the slow tier's pipeline runner

BENCHMARKS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BENCH:ci:begin -->", "<!-- BENCH:ci:end -->"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        scratch = Path(tmp)
        project = bake_into(scratch / "render", **COMBINATIONS["defaults"])
        project.env["DATA_REMOTE"] = str(scratch / "dvc-remote")
        project.run("make", "setup", "EXTRAS=postgres")
        version = (project.path / ".python-version").read_text(encoding="utf-8").strip()
        with image_store(scratch / "podman", version) as podman:
            started = time.perf_counter()
            (scratch / "ci").mkdir()
            with Pipelines(project, podman, scratch / "ci") as pipelines:
                result = pipelines.run("ci")
            total = time.perf_counter() - started
        if set(result.jobs.values()) != {"success"}:
            sys.exit(f"the ci pipeline failed:\n{result.failures()}")
    rows = [
        f"| {step.job} | `{step.name.splitlines()[0]}` | {step.seconds:.1f} |"
        for step in result.steps
        if step.seconds
    ]
    table = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} "
            f"cores, Python {platform.python_version()}: the jobs one after the other (a CI "
            "service runs `checks` and `image` side by side), on a project set up once.",
            "",
            "| job | step | seconds |",
            "|---|---|---:|",
            *rows,
            f"| | **the whole pipeline** | **{total:.1f}** |",
        ]
    )
    print(table)
    text = BENCHMARKS.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    BENCHMARKS.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
