"""The model registry: aliases, fetching a version, registering, the promotion gate, rollback.

Everything that reads or moves an alias goes through this module: the register, promote and
rollback steps, the service's loader, batch scoring and monitoring. Aliases, never stages: every
evaluated candidate becomes a new model version with the alias ``challenger``; :func:`promote`
moves ``champion`` to it only when no post-train test failed and it is not worse than the current
champion beyond ``gate.tolerance``; :func:`rollback` moves ``champion`` back to the version
before. The champion history is a tag on the registered model, so a rollback needs no other
store.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .contract import FeatureContract
from .errors import StepError
from .gate import (
    TAG_CHECKS,
    TAG_FAILED,
    TAG_NOT_ASSESSED,
    TAG_PASSED,
    TAG_ROLLED_BACK,
    not_assessed_checks,
    promotion_reasons,
    version_tags,
)
from .tracking import (
    CONTRACT_ARTIFACT,
    TrackingUnavailableError,
    connect,
    load_sklearn_model,
    run_artifact_text,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from .config import Settings
    from .evaluation.report import EvaluationReport
    from .params import Params
    from .training import TrainingRun

logger = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
HISTORY_TAG = "champion.history"  # on the registered model: JSON list of champion versions
# The lineage tags `lineage` groups (see provenance.LINEAGE_TAGS), without their prefix.
_CODE_TAGS = ("git_commit", "git_dirty", "params_hash", "lock_hash", "python_version")
_DATA_TAGS = ("data_version", "dbt_invocation_id", "validation")
# MLflow's error codes for "no such model, version or alias".
_NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


class RegistryError(StepError):
    """A registry step that cannot be done as asked; the message says why and what to run."""


class ModelUnavailableError(RegistryError):
    """No model version can be fetched (no registry, no such alias, a missing artifact)."""


class PromotionRefusedError(RegistryError):
    """The challenger does not become champion; `reasons` lists every failed condition."""

    def __init__(self, version: str, reasons: list[str]) -> None:
        self.version = version
        self.reasons = reasons
        listed = "\n".join(f"  - {reason}" for reason in reasons)
        super().__init__(f"challenger v{version} not promoted:\n{listed}")


@dataclass(frozen=True)
class RegisteredModel:
    """A registered version's fitted pipeline and what was recorded with it."""

    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str]
    contract: FeatureContract
    pipeline: Any
    positive_class: str


def alias_version(settings: Settings, alias: str) -> str | None:
    """The version `alias` points to now, or None when the model or the alias does not exist.

    Raises:
        ModelUnavailableError: when the registry cannot be reached or answers with an error.
    """
    return _alias(_reader(settings), settings.model_name, alias)


def fetch_registered(settings: Settings, alias: str, version: str | None = None) -> RegisteredModel:
    """The fitted pipeline, contract and tags of `version` (default: where `alias` points).

    Raises:
        ModelUnavailableError: with the reason and the step to run, when the registry, the alias
            or an artifact the model needs is missing.
    """
    from mlflow.exceptions import MlflowException

    client = _reader(settings)
    name = settings.model_name
    version = version or _alias(client, name, alias)
    if version is None:
        raise ModelUnavailableError(missing_alias_reason(client, name, alias))
    try:
        record = client.get_model_version(name, version)
        run_id = str(record.run_id)
        contract = FeatureContract.from_json(run_artifact_text(client, run_id, CONTRACT_ARTIFACT))
        params = client.get_run(run_id).data.params
        # By version, not alias: the alias may move while this loads.
        pipeline = load_sklearn_model(client.get_model_version_download_uri(name, version))
    except (MlflowException, OSError, ValueError) as error:
        raise ModelUnavailableError(f"cannot load {name} v{version}: {error}") from error
    classes = [str(label) for label in pipeline.classes_]
    positive = params.get("positive_class", "")
    return RegisteredModel(
        name=name,
        version=str(version),
        run_id=run_id,
        source=str(record.source),
        tags=dict(record.tags),
        contract=contract,
        pipeline=pipeline,
        # A run logged without it: scikit-learn's convention, the last class is the positive one.
        positive_class=positive if positive in classes else classes[-1],
    )


def missing_alias_reason(client: MlflowClient, name: str, alias: str) -> str:
    """Why no version has `alias`, naming the step that is actually missing."""
    from mlflow.exceptions import MlflowException

    try:
        registered = bool(client.search_model_versions(f"name = '{name}'", max_results=1))
    except MlflowException as error:
        return f"no version of model {name!r} has the alias {alias!r} ({error.message})"
    if not registered:
        return f"no model {name!r} is registered yet: run `make all` (train to promote)"
    if alias != CHAMPION:
        return f"no version of model {name!r} has the alias {alias!r}"
    waiting = _alias(client, name, CHALLENGER)  # search results carry no aliases: ask for it
    if waiting is None:
        return (
            f"{name} has no {CHAMPION} and no {CHALLENGER}: run `make register`, then "
            "`make promote`"
        )
    return (
        f"{name} has no {CHAMPION}: challenger v{waiting} is waiting; run `make promote` "
        "(if the gate refuses it, its reasons say what failed)"
    )


def register(settings: Settings, training: TrainingRun, report: EvaluationReport) -> ModelVersion:
    """Register the evaluated training run as a new version with the alias ``challenger``.

    The version is created with all its tags in one call; if the alias cannot be set, the version
    is deleted again, so a failure never leaves a half-registered candidate.

    Raises:
        RegistryError: when `report` is not the evaluation of `training`.
        TrackingUnavailableError: when the registry cannot be reached (nothing written).
    """
    from mlflow.exceptions import MlflowException

    if report.run_id != training.run_id:
        raise RegistryError(
            f"the latest evaluation is of run {report.run_id}, the latest training run is "
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
    outcome = "passed" if report.passed else "FAILED: " + ", ".join(report.failed)
    logger.info("Registered %s v%s as %s (tests %s)", name, version.version, CHALLENGER, outcome)
    return version


def register_latest(settings: Settings) -> ModelVersion:
    """Register the latest training run with its evaluation (the register step as a whole)."""
    from .evaluation.report import read_evaluation_report
    from .training import load_training_run

    return register(settings, load_training_run(settings), read_evaluation_report(settings))


def champion_versions(settings: Settings) -> list[str]:
    """The versions that were champion, oldest first (empty before the first promotion)."""
    return champion_history(_reader(settings), settings.model_name)


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
    challenger = _alias(client, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"{name} has no {CHALLENGER}: run `make register` first")
    champion = _alias(client, name, CHAMPION)
    if champion == challenger:
        logger.info("%s v%s is already %s", name, challenger, CHAMPION)
        return challenger
    tags = client.get_model_version(name, challenger).tags
    gate = params.gate
    reasons = promotion_reasons(
        tags, champion, gate.tolerance, block_not_assessed=gate.block_not_assessed
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
    current = _alias(client, name, CHAMPION)
    if len(history) < 2:  # noqa: PLR2004 (a current and a previous champion)
        raise RegistryError(f"{name} has no previous {CHAMPION} to roll back to")
    if history[-1] != current:
        raise RegistryError(
            f"{name}@{CHAMPION} is v{current} but the recorded history ends with v{history[-1]}: "
            "the alias was moved outside this tool; set it by hand"
        )
    previous = history[-2]
    _move_champion(client, name, previous, history[:-1])
    # Marked, so the gate never promotes it again (``make all`` would otherwise undo this).
    client.set_model_version_tag(name, history[-1], TAG_ROLLED_BACK, _now())
    logger.info("%s@%s rolled back from v%s to v%s", name, CHAMPION, current, previous)
    return previous


@dataclass(frozen=True)
class VersionRecord:
    """A registered version as the registry records it: aliases, tags, and its training run."""

    name: str
    version: str
    aliases: tuple[str, ...]
    created_at: datetime
    source: str
    tags: dict[str, str]
    run_id: str
    run_params: dict[str, str]
    run_metrics: dict[str, float]


def describe_version(settings: Settings, reference: str) -> VersionRecord:
    """The registry's record of a version, by number (``3``) or alias (``champion``).

    Raises:
        RegistryError: when there is no such version or alias.
        ModelUnavailableError: when the registry cannot be reached.
    """
    from mlflow.exceptions import MlflowException

    client = _reader(settings)
    name = settings.model_name
    try:
        if reference.isdigit():
            version = client.get_model_version(name, reference)
        else:
            version = client.get_model_version_by_alias(name, reference)
        run = client.get_run(str(version.run_id))
    except MlflowException as error:
        if error.error_code not in _NOT_FOUND:
            raise ModelUnavailableError(f"registry error: {error.message}") from error
        if reference.isdigit():
            raise RegistryError(f"{name} has no version {reference}") from error
        raise RegistryError(missing_alias_reason(client, name, reference)) from error
    return VersionRecord(
        name=name,
        version=str(version.version),
        aliases=tuple(sorted(version.aliases)),
        created_at=datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC),
        source=str(version.source),
        tags=dict(version.tags),
        run_id=str(version.run_id),
        run_params=dict(run.data.params),
        run_metrics=dict(run.data.metrics),
    )


def version_artifact_text(settings: Settings, record: VersionRecord, path: str) -> str | None:
    """The text of an artifact of the version's run, or None when the run has no such file.

    Raises:
        ModelUnavailableError: when the registry cannot be reached.
    """
    from mlflow.exceptions import MlflowException

    try:
        return run_artifact_text(_reader(settings), record.run_id, path)
    except (MlflowException, OSError):
        return None


def attach_to_version(
    settings: Settings, record: VersionRecord, file: Path, *, folder: str, tag: str
) -> str:
    """Store `file` with the version's run, in `folder`, and point the version's `tag` at it.

    A model version has no artifacts of its own: the file goes with the run that produced the
    version, and the tag names it as a ``runs:/`` URI.

    Returns:
        The artifact's URI.
    """
    client = connect(settings)
    client.log_artifact(record.run_id, str(file), folder)
    uri = f"runs:/{record.run_id}/{folder}/{file.name}"
    client.set_model_version_tag(record.name, record.version, tag, uri)
    return uri


def lineage(settings: Settings, reference: str) -> dict[str, Any]:
    """Where a model version came from: run, data version, dbt invocation, commit, tests.

    Args:
        settings: Where the registry is.
        reference: A version number (``3``) or an alias (``champion``).

    Raises:
        RegistryError: when there is no such version or alias.
    """
    record = describe_version(settings, reference)
    tags = record.tags
    return {
        "model": record.name,
        "version": record.version,
        "aliases": list(record.aliases),
        "run_id": record.run_id,
        "model_uri": record.source,
        "code": {key: tags.get(f"lineage.{key}") for key in _CODE_TAGS},
        "data": {key: tags.get(f"lineage.{key}") for key in _DATA_TAGS},
        "tests": {
            "passed": tags.get(TAG_PASSED),
            "failed": tags.get(TAG_FAILED),
            "not_assessed": tags.get(TAG_NOT_ASSESSED),
            "checks": tags.get(TAG_CHECKS, "").split(";") if tags.get(TAG_CHECKS) else [],
        },
        "metrics": {
            key: value
            for key, value in sorted(record.run_metrics.items())
            if key.startswith("test_")
        },
    }


def registered_versions(settings: Settings) -> list[int]:
    """The version numbers of the project's model, ascending (empty before the first one).

    Raises:
        ModelUnavailableError: when the registry cannot be reached or answers with an error.
    """
    from mlflow.exceptions import MlflowException

    client = _reader(settings)
    try:
        found = client.search_model_versions(f"name = '{settings.model_name}'")
    except MlflowException as error:
        raise ModelUnavailableError(f"registry error: {error.message}") from error
    return sorted(int(version.version) for version in found)


def version_of_run(settings: Settings, run_id: str) -> str | None:
    """The registered version that holds training run `run_id`, or None when it has none."""
    found = _version_of_run(_reader(settings), settings.model_name, run_id)
    return None if found is None else str(found.version)


def _reader(settings: Settings) -> MlflowClient:
    """A client for the steps that only read the registry (it must exist already)."""
    try:
        return connect(settings, create=False)
    except TrackingUnavailableError as error:
        raise ModelUnavailableError(str(error)) from error


def _alias(client: MlflowClient, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        if error.error_code in _NOT_FOUND:
            return None
        raise ModelUnavailableError(f"registry error: {error.message}") from error


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
