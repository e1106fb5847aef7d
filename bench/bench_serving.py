"""Serving benchmark: our service against `mlflow models serve` on the same registered model.

Runs `make bench-serve` in a generated project that already has a champion (``--project``; e.g.
the `make demo` project) and writes its table into docs/benchmarks.md between the
``BENCH:serving`` markers. Everything runs on 127.0.0.1, every load run is bounded in time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import project_env  # noqa: E402 - the same clean environment as the tests

BENCHMARKS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BENCH:serving:begin -->", "<!-- BENCH:serving:end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--project", type=Path, required=True, help="a set-up project with a champion"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per load run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as scratch:
        table = Path(scratch) / "serving.md"
        command = [
            "uv", "run", "--no-sync", "python", "-m", f"{package_of(args.project)}.serving.bench",
            "--seconds", str(args.seconds), "--output", str(table),
        ]  # fmt: skip
        subprocess.run(command, cwd=args.project, env=project_env(), check=True, timeout=900)
        figures = table.read_text(encoding="utf-8").strip()
    text = BENCHMARKS.read_text(encoding="utf-8")
    if BEGIN not in text:
        text += f"\n## Serving: our service vs `mlflow models serve`\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    BENCHMARKS.write_text(f"{head}{BEGIN}\n{figures}\n{END}{tail}", encoding="utf-8")
    print(figures)


def package_of(project: Path) -> str:
    """The generated project's package name (the only folder under src/)."""
    (package,) = [path.name for path in (project / "src").iterdir() if path.is_dir()]
    return package


if __name__ == "__main__":
    main()
