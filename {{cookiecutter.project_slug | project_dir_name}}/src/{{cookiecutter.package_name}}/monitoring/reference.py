"""The reference a model version is monitored against: what its inputs and scores looked like.

A :class:`ReferenceProfile` is built from the model's held-out rows (recorded by the train step as
``split/test_ids.json``): per numeric feature, PSI bin edges at the reference quantiles, the share
of rows in each bin and a sample of values for the KS test; per categorical feature, the count of
each category; the missing share of every feature; the distribution of the model's scores; and the
held-out precision and recall that performance is compared with. Held-out rows, not training rows,
because the model's scores on rows it was fitted to are sharper than on any new data.

The train step builds the profile from the held-out rows of its own split and records it as
``monitoring/reference.json`` on the run (:func:`log_reference_profile`), so every model version
carries the reference it was judged on. The monitor reads it back (:func:`recorded_reference`);
it never rebuilds one from today's feature table, which after a retrain holds other rows.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import ConfigError
from ..errors import StepError

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
    from sklearn.metrics import precision_score, recall_score

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
    """Record `profile` on the active MLflow run (the train step does this for every model)."""
    import mlflow

    mlflow.log_text(profile.to_json(), REFERENCE_ARTIFACT)


class ReferenceMissingError(StepError):
    """The model version carries no recorded reference profile; the message says what to run."""


def recorded_reference(settings: Settings, version: str) -> ReferenceProfile:
    """The reference profile recorded with registered version `version` at training time.

    Raises:
        ReferenceMissingError: when its run has none (a model trained before references were
            recorded, or logged by other code): retrain and register it.
    """
    from mlflow.exceptions import MlflowException

    from ..tracking import connect, run_artifact_text

    client = connect(settings, create=False)
    run_id = str(client.get_model_version(settings.model_name, version).run_id)
    try:
        text = run_artifact_text(client, run_id, REFERENCE_ARTIFACT)
    except (MlflowException, OSError) as error:
        raise ReferenceMissingError(
            f"{settings.model_name} v{version} (run {run_id}) has no {REFERENCE_ARTIFACT}: the "
            "train step records it; train, register and promote a new version (make all)"
        ) from error
    return ReferenceProfile.from_json(text).model_copy(update={"model_version": version})


def load_reference_file(path: Path) -> ReferenceProfile:
    """A profile from a JSON file (``monitor --reference``).

    Raises:
        ConfigError: when the file is missing or is not a reference profile.
    """
    try:
        return ReferenceProfile.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as error:
        raise ConfigError(
            f"--reference {path}: not a readable reference profile ({error})"
        ) from error
