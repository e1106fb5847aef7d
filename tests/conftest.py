"""Render the template into scratch folders and work with the result as a user would."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE_DIR = Path(__file__).resolve().parents[1]
# Where each command a test runs in a generated project appends its wall time (tab-separated:
# seconds, project folder, command), to see where the slow tier's minutes go.
TIMINGS = "TEMPLATE_TESTS_TIMINGS"
# Debian's `prometheus` package has promtool; .ci/run installs it, and sets this so that a
# missing promtool fails there instead of skipping.
REQUIRE_PROMETHEUS = "TEMPLATE_TESTS_REQUIRE_PROMETHEUS"

# Named option sets, not a blind cartesian product: the defaults, each non-default answer on its
# own, and the smallest project. Each is rendered by the fast tier; the slow tier installs two
# (the defaults, with GitHub Actions; Python 3.12 with GitLab CI), and runs their CI/CD.
COMBINATIONS: dict[str, dict[str, str]] = {
    "defaults": {},
    "python312": {"python_version": "3.12", "ci_provider": "gitlab"},
    "gitlab": {"ci_provider": "gitlab"},
    "apache": {"license": "Apache-2.0"},
    "bsd": {"license": "BSD-3-Clause"},
    "minimal": {"ci_provider": "none", "license": "Proprietary"},
    "custom-names": {
        "project_name": "Fraud Radar",
        "project_slug": "fraud-radar-2",
        "package_name": "fraud_radar",
        "author_name": 'Zoë O\'Brien "QA"',
        "description": 'Flags fraud: "quotes", back\\slashes and {braces} survive.',
    },
}


@dataclass
class BakedProject:
    """A rendered project, with helpers to look at it and run its commands."""

    path: Path
    answers: dict[str, str]
    # Settings for this project's commands on top of the user's environment (e.g. DATA_REMOTE).
    env: dict[str, str] = field(default_factory=dict)

    def has_file(self, relative: str) -> bool:
        return (self.path / relative).is_file()

    def files(self) -> set[str]:
        """Every file in the project, relative, outside `.git`."""
        return {
            p.relative_to(self.path).as_posix()
            for p in self.path.rglob("*")
            if p.is_file() and ".git" not in p.relative_to(self.path).parts
        }

    def run(
        self, *command: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the project, with this test session's virtualenv out of the way."""
        started = time.monotonic()
        result = subprocess.run(
            command,
            cwd=self.path,
            env={**project_env(), **self.env},
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        record_timing(time.monotonic() - started, self.path, command)
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} exited {result.returncode} in {self.path}\n"
                f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result


def record_timing(seconds: float, where: Path, command: tuple[str, ...]) -> None:
    """Append a command's wall time to the `TEMPLATE_TESTS_TIMINGS` file, when one is named."""
    log = os.environ.get(TIMINGS)
    if log:
        with Path(log).open("a", encoding="utf-8") as timings:
            timings.write(
                f"{seconds:.1f}\t{where.parent.name}/{where.name}\t{shlex.join(command)}\n"
            )


def project_env() -> dict[str, str]:
    """The environment a user's shell would have: no outer virtualenv, no uv project overrides."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "UV_RUN_RECURSION_DEPTH"}
    }
    venv_bin = os.environ.get("VIRTUAL_ENV")
    if venv_bin:
        env["PATH"] = os.pathsep.join(
            part for part in env["PATH"].split(os.pathsep) if not part.startswith(venv_bin)
        )
    # Offline discipline for the tests: never download a Python build.
    env["UV_PYTHON_DOWNLOADS"] = "never"
    # Two slow-tier workers share two cores: an OpenMP thread per core in each project's process
    # (scikit-learn's trees) oversubscribes them, and the spin-waits double the wall time.
    env.setdefault("OMP_NUM_THREADS", "1")
    # Machines with pyenv (CI's included) expose only the global version through its shims; make
    # every installed version visible, as `pyenv global 3.11 3.12` would, so uv can find 3.12.
    if shutil.which("pyenv"):
        current, *_ = _pyenv("version-name") or [""]
        others = [
            v for v in _pyenv("versions", "--bare", "--skip-aliases", "--skip-envs") if v != current
        ]
        # The current version first, so `python3` stays what the user has.
        env["PYENV_VERSION"] = ":".join([current, *others])
    return env


def _pyenv(*args: str) -> list[str]:
    result = subprocess.run(["pyenv", *args], capture_output=True, text=True, check=False)
    return result.stdout.split()


def bake_into(output_dir: Path, **answers: Any) -> BakedProject:
    """Render the template with `answers` into `output_dir` (raises on a refused answer)."""
    project_dir = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context=answers,
        output_dir=str(output_dir),
    )
    return BakedProject(Path(project_dir), answers)


@pytest.fixture
def bake(tmp_path: Path) -> Callable[..., BakedProject]:
    """Render the template into this test's scratch folder."""

    def _bake(**answers: Any) -> BakedProject:
        return bake_into(tmp_path, **answers)

    return _bake


def prometheus_tool(name: str) -> str:
    """The path of `name` (promtool, prometheus, prometheus-pushgateway); skips, or fails in CI,
    when it is missing."""
    found = shutil.which(name)
    if found is None:
        package = name if name == "prometheus-pushgateway" else "prometheus"
        reason = f"{name} is missing: apt-get install -y {package}"
        if os.environ.get(REQUIRE_PROMETHEUS) == "1":
            pytest.fail(f"{reason} ({REQUIRE_PROMETHEUS}=1)")
        pytest.skip(reason)
    return found
