"""The reference a model version is monitored against: what its inputs and scores looked like.

A :class:`ReferenceProfile` is built from the model's held-out rows (recorded by the train step as
``split/test_ids.json``): per numeric feature, PSI bin edges at the reference quantiles, the share
of rows in each bin and a sample of values for the KS test; per categorical feature, the count of
each category; the missing share of every feature; the distribution of the model's scores; and the
held-out precision and recall that performance is compared with. Held-out rows, not training rows,
because the model's scores on rows it was fitted to are sharper than on any new data.

The profile is stored as ``monitoring/reference.json`` on the model's MLflow run, and cached in
``data/reference/<model>/v<version>.json`` (keyed by model version). :func:`log_reference_profile`
records it at training time; :func:`ensure_reference` builds it on first use when training did
not.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from pathlib import Path

    from sklearn.pipeline import Pipeline

    from ..config import Settings
    from ..contract import FeatureContract

logger = logging.getLogger(__name__)

REFERENCE_ARTIFACT = "monitoring/reference.json"
# KS needs raw values; beyond this many the sample is thinned (the test's power hardly changes).
MAX_SAMPLE = 5_000


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericReference(_Frozen):
    """A numeric column in the reference: bins, their shares, a sample and the missing share."""

    edges: list[float]  # interior PSI bin edges (reference quantiles, distinct)
    proportions: list[float]  # share of non-missing values per bin (len(edges) + 1)
    sample: list[float]  # non-missing values, for the KS test and the plots
    missing_share: float
    count: int


class CategoricalReference(_Frozen):
    """A categorical column in the reference: the count of each value and the missing share."""

    counts: dict[str, int]
    missing_share: float
    count: int


class ReferenceProfile(_Frozen):
    """What a model version's inputs and outputs looked like on its held-out rows."""

    model_name: str
    model_version: str | None
    run_id: str | None
    created_at: str
    positive_class: str
    n_rows: int
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    score: NumericReference
    positive_rate: float
    baseline: dict[str, float]  # held-out precision and recall of the positive class

    def to_json(self) -> str:
        """The profile as JSON."""
        return self.model_dump_json(indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        """Read a profile written by :meth:`to_json`."""
        return cls.model_validate_json(text)


def numeric_reference(values: pd.Series, bins: int, seed: int = 0) -> NumericReference:
    """Bin edges at the quantiles of `values`, the share per bin, and a sample of the values.

    Args:
        values: The reference values (missing ones count towards ``missing_share`` only).
        bins: Number of quantile bins; tied quantiles merge, so there may be fewer.
        seed: Seed of the thinning when there are more than :data:`MAX_SAMPLE` values.
    """
    numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    present = numbers[~np.isnan(numbers)]
    missing = float(1 - len(present) / len(numbers)) if len(numbers) else 0.0
    if len(present) == 0:
        return NumericReference(
            edges=[], proportions=[1.0], sample=[], missing_share=missing, count=0
        )
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    proportions = bin_shares(present, edges)
    sample = present
    if len(present) > MAX_SAMPLE:
        sample = np.random.default_rng(seed).choice(present, MAX_SAMPLE, replace=False)
    return NumericReference(
        edges=[float(edge) for edge in edges],
        proportions=[float(share) for share in proportions],
        sample=[float(value) for value in sample],
        missing_share=missing,
        count=len(present),
    )


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of `values` in each bin; bin ``i`` holds ``edges[i-1] <= v < edges[i]``."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    total = counts.sum()
    return counts / total if total else counts.astype("float64")


def categorical_reference(values: pd.Series) -> CategoricalReference:
    """The count of each category (as text) and the missing share."""
    present = values.dropna().astype(str)
    missing = float(1 - len(present) / len(values)) if len(values) else 0.0
    counts = present.value_counts()
    return CategoricalReference(
        counts={str(key): int(value) for key, value in counts.items()},
        missing_share=missing,
        count=len(present),
    )


def build_reference_profile(
    frame: pd.DataFrame,
    model: Pipeline,
    contract: FeatureContract,
    positive_class: str,
    *,
    bins: int = 10,
    model_name: str = "",
    model_version: str | None = None,
    run_id: str | None = None,
) -> ReferenceProfile:
    """Profile `frame` (held-out rows with their labels) and `model`'s scores on it.

    Args:
        frame: Rows the model was not fitted to, with the contract's features and label.
        model: The fitted pipeline.
        contract: The feature contract (which columns are numeric, categorical, the label).
        positive_class: The label whose probability is the score.
        bins: PSI bins per numeric feature.
        model_name: Registered model name (recorded in the profile).
        model_version: Registered version, when known.
        run_id: The training run.

    Returns:
        The profile.
    """
    from sklearn.metrics import precision_score, recall_score  # noqa: PLC0415

    features = frame[contract.feature_columns]
    classes = [str(label) for label in model.classes_]
    scores = model.predict_proba(features)[:, classes.index(positive_class)]
    predicted = np.asarray(model.predict(features)).astype(str) == positive_class
    truth = frame[contract.label_column].astype(str).to_numpy() == positive_class
    return ReferenceProfile(
        model_name=model_name,
        model_version=model_version,
        run_id=run_id,
        created_at=datetime.now(tz=UTC).isoformat(timespec="seconds"),
        positive_class=positive_class,
        n_rows=len(frame),
        numeric={name: numeric_reference(frame[name], bins) for name in contract.numeric_features},
        categorical={
            name: categorical_reference(frame[name]) for name in contract.categorical_features
        },
        score=numeric_reference(pd.Series(scores), bins),
        positive_rate=float(predicted.mean()) if len(predicted) else math.nan,
        baseline={
            "precision": float(precision_score(truth, predicted, zero_division=0)),
            "recall": float(recall_score(truth, predicted, zero_division=0)),
        },
    )


def log_reference_profile(profile: ReferenceProfile) -> None:
    """Record `profile` on the active MLflow run (the train step's one-line hook)."""
    import mlflow  # noqa: PLC0415

    mlflow.log_text(profile.to_json(), REFERENCE_ARTIFACT)


def reference_cache_path(settings: Settings, version: str) -> Path:
    """Where the profile of model version `version` is cached locally."""
    return settings.data_dir / "reference" / settings.model_name / f"v{version}.json"


def ensure_reference(settings: Settings, version: str, bins: int) -> ReferenceProfile:
    """The reference profile of registered version `version`, built and recorded on first use.

    Looked up in the local cache, then on the version's MLflow run; when neither has it, built
    from the run's held-out rows (found by id in the current feature table) and recorded in both.

    Raises:
        RuntimeError: when the profile has to be built but the held-out rows are gone.
    """
    cached = reference_cache_path(settings, version)
    if cached.is_file():
        return ReferenceProfile.from_json(cached.read_text(encoding="utf-8"))
    import mlflow  # noqa: PLC0415
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from ..tracking import connect  # noqa: PLC0415

    client = connect(settings)
    model_version = client.get_model_version(settings.model_name, version)
    run_id = str(model_version.run_id)
    try:
        text = mlflow.artifacts.load_text(f"runs:/{run_id}/{REFERENCE_ARTIFACT}")
        profile = ReferenceProfile.from_json(text).model_copy(update={"model_version": version})
    except (MlflowException, OSError):
        logger.info(
            "v%s has no recorded reference yet: building it from its held-out rows", version
        )
        profile = _build_from_run(settings, run_id, str(model_version.source), version, bins)
        with mlflow.start_run(run_id=run_id):
            log_reference_profile(profile)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(profile.to_json(), encoding="utf-8")
    return profile


def _build_from_run(
    settings: Settings, run_id: str, model_uri: str, version: str, bins: int
) -> ReferenceProfile:
    import mlflow  # noqa: PLC0415

    from ..contract import FeatureContract  # noqa: PLC0415
    from ..data.warehouse import load_feature_table  # noqa: PLC0415
    from ..tracking import CONTRACT_ARTIFACT, load_sklearn_model  # noqa: PLC0415
    from ..training import TEST_IDS_ARTIFACT  # noqa: PLC0415

    contract = FeatureContract.from_json(
        mlflow.artifacts.load_text(f"runs:/{run_id}/{CONTRACT_ARTIFACT}")
    )
    params = mlflow.artifacts.load_dict(f"runs:/{run_id}/params.json")
    test_ids = mlflow.artifacts.load_dict(f"runs:/{run_id}/{TEST_IDS_ARTIFACT}")
    table = load_feature_table(settings, contract)
    held_out = table[table[contract.id_column].isin(test_ids[contract.id_column])]
    if len(held_out) < len(test_ids[contract.id_column]) * 0.9:
        raise RuntimeError(
            f"most held-out rows of run {run_id} are no longer in the feature table: cannot "
            "profile v{version}; record the reference at training time (log_reference_profile)"
        )
    return build_reference_profile(
        held_out,
        load_sklearn_model(model_uri),
        contract,
        str(params["train"]["positive_class"]),
        bins=bins,
        model_name=settings.model_name,
        model_version=version,
        run_id=run_id,
    )


def load_reference_file(path: Path) -> ReferenceProfile:
    """A profile from a JSON file (``monitor --reference``)."""
    return ReferenceProfile.from_json(path.read_text(encoding="utf-8"))


__all__ = [
    "REFERENCE_ARTIFACT",
    "CategoricalReference",
    "NumericReference",
    "ReferenceProfile",
    "bin_shares",
    "build_reference_profile",
    "ensure_reference",
    "load_reference_file",
    "log_reference_profile",
]
