"""The register, promote and rollback steps, and the lineage of a model version.

Aliases, never stages: every evaluated candidate becomes a new model version with the alias
``challenger``; :func:`promote` moves ``champion`` to it only when all its post-train tests passed
and it is not worse than the current champion beyond ``gate.tolerance``; :func:`rollback` moves
``champion`` back to the version before. The champion history is a tag on the registered model,
so a rollback needs no other store.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .provenance import LINEAGE_TAGS
from .tracking import connect
from .training import load_training_run

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from .config import Params, Settings

logger = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
HISTORY_TAG = "champion.history"  # on the registered model: JSON list of champion versions
TAG_PASSED = "evaluation.passed"
TAG_FAILED = "evaluation.failed"
TAG_NOT_ASSESSED = "evaluation.not_assessed"
TAG_CHECKS = "evaluation.checks"
TAG_PRECISION = "evaluation.precision"
TAG_COMPARED_WITH = "champion.compared_version"
TAG_CHAMPION_PRECISION = "champion.precision"
NONE = "none"
# How each verdict is written in the `evaluation.checks` tag.
CHECK_MARKS = {"pass": "pass", "fail": "FAIL", "not_assessed": "n/a"}


class RegistryError(RuntimeError):
    """A registry step that cannot be done as asked; the message says why and what to run."""


class PromotionRefusedError(RegistryError):
    """The challenger does not become champion; `reasons` lists every failed condition."""

    def __init__(self, version: str, reasons: list[str]) -> None:
        self.version = version
        self.reasons = reasons
        listed = "\n".join(f"  - {reason}" for reason in reasons)
        super().__init__(f"challenger v{version} not promoted:\n{listed}")


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version `alias` points to, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if error.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def load_evaluation_report(settings: Settings) -> dict[str, Any]:
    """The latest evaluation report (``reports/evaluation/latest.json``).

    Raises:
        RegistryError: when there is none yet.
    """
    path = settings.reports_dir / "evaluation" / "latest.json"
    if not path.is_file():
        raise RegistryError(f"{path}: no evaluation yet; run `make evaluate` first")
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


def version_tags(run_tags: Mapping[str, str], report: Mapping[str, Any]) -> dict[str, str]:
    """The tags a new model version carries: the run's lineage and its test results."""
    tags = {key: run_tags[key] for key in LINEAGE_TAGS if key in run_tags}
    champion = report["champion"]
    tags.update(
        {
            TAG_PASSED: str(report["passed"]).lower(),
            TAG_FAILED: ",".join(report["failed"]) or NONE,
            TAG_NOT_ASSESSED: ",".join(report["not_assessed"]) or NONE,
            TAG_CHECKS: ";".join(
                f"{check['name']}={CHECK_MARKS[check['status']]}" for check in report["checks"]
            ),
            TAG_PRECISION: f"{report['metrics']['precision']:.6f}",
            TAG_COMPARED_WITH: champion["version"] or NONE,
            TAG_CHAMPION_PRECISION: (
                f"{champion['metrics']['precision']:.6f}" if champion["metrics"] else NONE
            ),
        }
    )
    return tags


def register(settings: Settings) -> ModelVersion:
    """Register the latest evaluated training run as a new version with alias ``challenger``.

    The version is created with all its tags in one call; if the alias cannot be set, the version
    is deleted again, so a failure never leaves a half-registered candidate.

    Raises:
        RegistryError: when the latest training run has not been evaluated.
        TrackingUnavailableError: when the registry cannot be reached (nothing written).
    """
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    training = load_training_run(settings)
    report = load_evaluation_report(settings)
    if report.get("run_id") != training.run_id:
        raise RegistryError(
            f"the latest evaluation is of run {report.get('run_id')}, the latest training run is "
            f"{training.run_id}: run `make evaluate` first"
        )
    client = connect(settings)
    name = settings.model_name
    existing = _version_of_run(client, name, training.run_id)
    if existing is not None:
        # Registering the same run again (e.g. `make all` with nothing changed) adds no version.
        client.set_registered_model_alias(name, CHALLENGER, existing.version)
        logger.info("%s v%s already holds run %s", name, existing.version, training.run_id)
        return existing
    tags = version_tags(client.get_run(training.run_id).data.tags, report)
    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name, description="Registered by the register step.")
    version = client.create_model_version(
        name,
        source=training.model_uri,
        run_id=training.run_id,
        tags=tags,
        model_id=training.model_uri.removeprefix("models:/"),
    )
    try:
        client.set_registered_model_alias(name, CHALLENGER, version.version)
    except Exception:
        client.delete_model_version(name, version.version)
        raise
    logger.info(
        "Registered %s v%s as %s (tests %s)",
        name,
        version.version,
        CHALLENGER,
        "passed" if report["passed"] else "FAILED: " + ", ".join(report["failed"]),
    )
    return version


def promotion_reasons(
    challenger_tags: Mapping[str, str],
    champion: str | None,
    tolerance: float,
    *,
    block_not_assessed: bool = False,
) -> list[str]:
    """Why the challenger may not become champion (an empty list means it may).

    Args:
        challenger_tags: The challenger version's tags (test results, the comparison).
        champion: The current champion version, or None for the first model.
        tolerance: How far the challenger's precision may trail the champion's.
        block_not_assessed: Refuse a challenger with checks that had nothing to judge
            (``gate.block_not_assessed``).
    """
    reasons = []
    if challenger_tags.get(TAG_PASSED) != "true":
        failed = challenger_tags.get(TAG_FAILED, "unknown")
        checks = challenger_tags.get(TAG_CHECKS, "")
        reasons.append(f"post-train tests failed: {failed}")
        reasons.extend(
            f"failed check {entry.split('=')[0]}"
            for entry in checks.split(";")
            if entry.endswith("=FAIL")
        )
    not_assessed = not_assessed_checks(challenger_tags)
    if block_not_assessed and not_assessed:
        reasons.append(
            f"checks not assessed: {', '.join(not_assessed)} (gate.block_not_assessed is true)"
        )
    if champion is not None:
        compared = challenger_tags.get(TAG_COMPARED_WITH, NONE)
        if compared != champion:
            reasons.append(
                f"evaluated against champion {compared}, but the champion is now v{champion}: "
                "run `make evaluate` and `make register` again"
            )
        else:
            ours = float(challenger_tags.get(TAG_PRECISION, "nan"))
            theirs = float(challenger_tags.get(TAG_CHAMPION_PRECISION, "nan"))
            if not ours >= theirs - tolerance:
                reasons.append(
                    f"precision {ours:.3f} is worse than champion v{champion}'s {theirs:.3f} "
                    f"beyond the tolerance {tolerance:.3f}"
                )
    return reasons


def not_assessed_checks(tags: Mapping[str, str]) -> list[str]:
    """The checks of a version that had nothing to judge (from its tags)."""
    value = tags.get(TAG_NOT_ASSESSED, NONE)
    return [] if value == NONE else value.split(",")


def champion_history(client: MlflowClient, name: str) -> list[str]:
    """The versions that were champion, oldest first (the last is the current one)."""
    history: list[str] = json.loads(client.get_registered_model(name).tags.get(HISTORY_TAG, "[]"))
    return history


def promote(settings: Settings, params: Params) -> str:
    """Move ``champion`` to the challenger when it passes the gate.

    Returns:
        The new champion version.

    Raises:
        PromotionRefusedError: listing every reason when the challenger does not pass.
        RegistryError: when there is no challenger.
    """
    client = connect(settings)
    name = settings.model_name
    challenger = alias_version(client, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"{name} has no {CHALLENGER}: run `make register` first")
    champion = alias_version(client, name, CHAMPION)
    if champion == challenger:
        logger.info("%s v%s is already %s", name, challenger, CHAMPION)
        return challenger
    tags = client.get_model_version(name, challenger).tags
    reasons = promotion_reasons(
        tags,
        champion,
        params.gate.tolerance,
        block_not_assessed=params.gate.block_not_assessed,
    )
    if reasons:
        raise PromotionRefusedError(challenger, reasons)
    unjudged = not_assessed_checks(tags)
    if unjudged:
        logger.warning(
            "Promoting %s v%s although %d check(s) were NOT ASSESSED: %s "
            "(set gate.block_not_assessed: true to refuse such models)",
            name,
            challenger,
            len(unjudged),
            ", ".join(unjudged),
        )
    _move_champion(client, name, challenger, [*champion_history(client, name), challenger])
    client.set_model_version_tag(name, challenger, "promoted_at", _now())
    logger.info("%s v%s is now %s (was %s)", name, challenger, CHAMPION, champion or "none")
    return challenger


def rollback(settings: Settings) -> str:
    """Move ``champion`` back to the version that was champion before the current one.

    Returns:
        The restored champion version.

    Raises:
        RegistryError: when there is no earlier champion, or the alias was moved by hand.
    """
    client = connect(settings)
    name = settings.model_name
    history = champion_history(client, name)
    current = alias_version(client, name, CHAMPION)
    if len(history) < 2:  # noqa: PLR2004 (a current and a previous champion)
        raise RegistryError(f"{name} has no previous {CHAMPION} to roll back to")
    if history[-1] != current:
        raise RegistryError(
            f"{name}@{CHAMPION} is v{current} but the recorded history ends with v{history[-1]}: "
            "the alias was moved outside this tool; set it by hand"
        )
    previous = history[-2]
    _move_champion(client, name, previous, history[:-1])
    client.set_model_version_tag(name, history[-1], "rolled_back_at", _now())
    logger.info("%s@%s rolled back from v%s to v%s", name, CHAMPION, current, previous)
    return previous


def lineage(settings: Settings, reference: str) -> dict[str, Any]:
    """Where a model version came from: run, data version, dbt invocation, commit, tests.

    Args:
        settings: Where the registry is.
        reference: A version number (``3``) or an alias (``champion``).
    """
    client = connect(settings)
    name = settings.model_name
    if reference.isdigit():
        version = client.get_model_version(name, reference)
    else:
        version = client.get_model_version_by_alias(name, reference)
    run = client.get_run(str(version.run_id))
    tags = version.tags
    return {
        "model": name,
        "version": str(version.version),
        "aliases": sorted(version.aliases),
        "run_id": version.run_id,
        "model_uri": version.source,
        "code": {
            "git_commit": tags.get("lineage.git_commit"),
            "git_dirty": tags.get("lineage.git_dirty"),
            "params_hash": tags.get("lineage.params_hash"),
            "lock_hash": tags.get("lineage.lock_hash"),
            "python_version": tags.get("lineage.python_version"),
        },
        "data": {
            "data_version": tags.get("lineage.data_version"),
            "dbt_invocation_id": tags.get("lineage.dbt_invocation_id"),
            "validation": tags.get("lineage.validation"),
        },
        "tests": {
            "passed": tags.get(TAG_PASSED),
            "failed": tags.get(TAG_FAILED),
            "not_assessed": tags.get(TAG_NOT_ASSESSED),
            "checks": tags.get(TAG_CHECKS, "").split(";") if tags.get(TAG_CHECKS) else [],
        },
        "metrics": {
            key: value for key, value in sorted(run.data.metrics.items()) if key.startswith("test_")
        },
    }


def _version_of_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The version that already holds `run_id`, or None.

    Any registry error propagates: answering "not registered yet" to a failed search would
    register the same run twice.
    """
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return found[0] if found else None


def _move_champion(client: MlflowClient, name: str, version: str, history: list[str]) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    # Keep the history short enough for a tag value (MLflow caps them at a few kB).
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-100:]))


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")
