"""Slow tier: install generated projects and run their own Make targets, as a user would.

Two option sets are installed (the defaults and Python 3.12); each runs `make setup`, then lint,
test, format and the pre-commit hooks, then every other Makefile target. Each option set's tests
run in order on one xdist worker (`--dist loadscope` keeps a class together), sharing one
installed project.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import COMBINATIONS, BakedProject, bake_into, project_env

pytestmark = pytest.mark.slow

# Targets not smoke-run by `test_every_other_target_runs`, each with the reason.
COVERED_ELSEWHERE = {
    "help": "run by test_help_lists_every_target",
    "setup": "run by the installed fixture",
    "lint": "run by test_lint",
    "test": "run by test_the_projects_own_tests_pass",
    "format": "run by test_format_leaves_no_diff",
    "serve": "a server that runs until stopped: run by test_serve_answers_until_stopped",
    "drift-demo": "run by test_drift_triggers_the_monitor_and_retrain_folds_the_labels",
    "retrain": "run by test_drift_triggers_the_monitor_and_retrain_folds_the_labels (the gate "
    "may refuse the retrained model: a non-zero exit there is the gate working)",
    "rollback": "needs two champions: run by test_promote_then_rollback_moves_champion_back",
}
# Arguments that keep a smoke run short; the target itself is the one a user types.
SMOKE_ARGS = {"bench-serve": ["BENCH_ARGS=--seconds 1 --connections 8"]}


@pytest.fixture(scope="class")
def installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> BakedProject:
    """The class's option set, rendered and set up once; its tests then run in order."""
    name = request.cls.combination
    project = bake_into(tmp_path_factory.mktemp(name), **COMBINATIONS[name])
    # `make data-push` must not write into the user's home (the default remote is ~/.cache/...).
    project.env["DATA_REMOTE"] = str(tmp_path_factory.mktemp(f"{name}-dvc-remote"))
    project.run("make", "setup")
    # Stage everything (uv.lock included) so a later `git diff` shows what a target changed.
    project.run("git", "add", "--all")
    return project


def make_targets(project: BakedProject) -> list[str]:
    makefile = (project.path / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-zA-Z][\w-]*):.*## ", makefile, flags=re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class InstalledProjectChecks:
    """Every check of an installed project; a subclass names the option set (`combination`)."""

    combination: str

    def test_setup_installed_the_environment_and_hooks(self, installed: BakedProject) -> None:
        assert (installed.path / ".venv").is_dir()
        assert installed.has_file("uv.lock")
        assert installed.has_file(".git/hooks/pre-commit")
        version = installed.run(".venv/bin/python", "-c", "import sys; print(sys.version[:4])")
        assert version.stdout.strip().startswith(
            (installed.path / ".python-version").read_text().strip()
        )

    def test_help_lists_every_target(self, installed: BakedProject) -> None:
        listed = installed.run("make").stdout
        for target in make_targets(installed):
            assert re.search(rf"^\s+(\x1b\[\d+m)?{re.escape(target)}\b", listed, flags=re.MULTILINE)

    def test_lint(self, installed: BakedProject) -> None:
        installed.run("make", "lint")

    def test_the_projects_own_tests_pass(self, installed: BakedProject) -> None:
        result = installed.run("make", "test")
        assert re.search(r"\d+ passed", result.stdout)
        assert " failed" not in result.stdout

    def test_format_leaves_no_diff(self, installed: BakedProject) -> None:
        installed.run("make", "format")
        diff = installed.run("git", "diff", "--stat", check=False)
        assert diff.stdout == "", f"make format changed files on the first pass:\n{diff.stdout}"

    def test_pre_commit_hooks_pass_offline_on_every_file(self, installed: BakedProject) -> None:
        installed.run("uv", "run", "--no-sync", "pre-commit", "run", "--all-files")

    def test_every_other_target_runs(self, installed: BakedProject) -> None:
        targets = [t for t in make_targets(installed) if t not in COVERED_ELSEWHERE]
        # `clean` last: it removes what the others leave.
        targets.sort(key=lambda target: target == "clean")
        for target in targets:
            installed.run("make", target, *SMOKE_ARGS.get(target, []))

    def test_promote_then_rollback_moves_champion_back(self, installed: BakedProject) -> None:
        package = next((installed.path / "src").iterdir()).name
        cli = ("uv", "run", "--no-sync", "python", "-m", package)

        def champion() -> str:
            return str(json.loads(installed.run(*cli, "lineage", "champion").stdout)["version"])

        installed.run("make", "all")  # on a fresh project the first model that passes is champion
        before = champion()
        # Another candidate from the same data and params: metrics are equal, so it is promoted.
        for step in ("train", "evaluate", "register", "promote"):
            installed.run(*cli, step)
        assert champion() != before
        installed.run("make", "rollback")
        assert champion() == before
        installed.run("make", "lineage")

    def test_drift_triggers_the_monitor_and_retrain_folds_the_labels(
        self, installed: BakedProject
    ) -> None:
        """The feedback loop as a scheduler drives it: exit 3 on drift, then `make retrain`."""
        if installed.answers != COMBINATIONS["defaults"]:
            pytest.skip("the loop is the same for every option set: run once, on the defaults")
        installed.run("make", "drift-demo", "SCENARIO=sudden")
        quiet = installed.run("make", "monitor")  # without the flag an alarm is only reported
        assert "drift" in quiet.stdout
        alarm = installed.run("make", "monitor", "FAIL_ON_DRIFT=1", check=False)
        assert alarm.returncode != 0
        assert "Error 3" in alarm.stderr, alarm.stderr  # 3: retrain recommended, not a crash
        summary = json.loads((installed.path / "reports/monitoring/latest.json").read_text())
        assert summary["drift_detected"] is True
        assert summary["retrain_recommended"] is True
        raw = installed.path / "data/raw/customers.csv"
        rows_before = len(raw.read_text(encoding="utf-8").splitlines())
        retrain = installed.run("make", "retrain", check=False)
        rows_after = len(raw.read_text(encoding="utf-8").splitlines())
        assert rows_after > rows_before, "the labelled batches were folded into the raw data"
        assert "folded" in retrain.stdout
        # Whether the retrained model becomes champion is the gate's call; either way it was asked.
        assert "promote" in retrain.stdout, retrain.stdout[-3000:]

    def test_serve_answers_until_stopped(self, installed: BakedProject, tmp_path: Path) -> None:
        """`make serve` on the champion: ready within 90 s, healthy, and stopped by SIGTERM."""
        # Runs after test_every_other_target_runs: `make all` has made a champion.
        port = free_port()
        log = tmp_path / "serve.log"
        with log.open("w", encoding="utf-8") as output:
            server = subprocess.Popen(
                ["make", "serve"],
                cwd=installed.path,
                env={**project_env(), **installed.env, "PORT": str(port)},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: make, uv, uvicorn stop together
            )
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/ready", timeout=2
                    ) as reply:
                        ready = json.loads(reply.read())
                        break
                except (urllib.error.URLError, ConnectionError):
                    assert server.poll() is None, log.read_text(encoding="utf-8")[-3000:]
                    assert time.monotonic() < deadline, "the service was not ready within 90 s"
                    time.sleep(0.5)
            assert ready["ready"] is True
            assert ready["version"], ready  # the champion `make all` promoted
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                assert reply.status == 200
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


class TestDefaults(InstalledProjectChecks):
    combination = "defaults"


class TestPython312(InstalledProjectChecks):
    combination = "python312"
