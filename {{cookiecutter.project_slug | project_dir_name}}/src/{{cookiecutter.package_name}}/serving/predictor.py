"""Turn validated records into probabilities: a numpy fast path, checked against the pipeline.

A one-row ``Pipeline.predict_proba`` spends most of its 7-10 ms in scikit-learn's input handling
(DataFrame checks, column selection, dtype conversion), not in the model. :class:`FastPredictor`
reads the fitted preprocessing once (imputer statistics, scaler arrays, one-hot lookup tables) and
applies it to plain Python values with numpy, then calls the fitted estimator directly. For a
``HistGradientBoostingClassifier``, whose own ``predict_proba`` costs about a millisecond whatever
the batch (input checks, then one OpenMP call per tree), small batches walk the trees instead:
:class:`TreeWalker` holds every tree in flat numpy arrays and moves all rows down all trees one
level per step (:mod:`.trees`); the preprocessing is compiled by :mod:`.preprocessing`.

It is only used when :func:`build_predictor` has checked, at load time, that it gives the same
probabilities as the pipeline on the verification rows; otherwise the pipeline itself serves and
the reason is logged (and shown by ``GET /model``). Supported shapes: a ``ColumnTransformer`` of
``SimpleImputer`` / ``StandardScaler`` / ``OneHotEncoder`` steps (in ``Pipeline``s or alone),
``passthrough`` and ``drop``, followed by any estimator with ``predict_proba``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .preprocessing import (
    NumericBlock,
    UnsupportedPipelineError,
    compile_column_transformer,
    encoder_categories,
    numeric_centres,
    split_pipeline,
)
from .trees import TreeWalker

if TYPE_CHECKING:
    import pandas as pd

    from ..contract import FeatureContract

logger = logging.getLogger(__name__)

Record = Mapping[str, Any]
"""One validated input row: feature name to value (``None`` where missing)."""

# Fast and pipeline probabilities must agree to this absolute tolerance (float64 arithmetic in a
# different order can differ in the last bits; a real mismatch is orders of magnitude larger).
TOLERANCE = 1e-9


class Predictor(Protocol):
    """Anything that scores validated records."""

    classes: tuple[str, ...]

    def predict_proba(self, records: Sequence[Record]) -> np.ndarray:
        """Class probabilities, one row per record, columns in :attr:`classes` order."""
        ...


class PipelinePredictor:
    """The fitted pipeline as trained: always correct, slower per call (builds a DataFrame)."""

    def __init__(self, pipeline: Any, contract: FeatureContract) -> None:
        self.pipeline = pipeline
        self.contract = contract
        self.classes = tuple(str(label) for label in pipeline.classes_)

    def predict_proba(self, records: Sequence[Record]) -> np.ndarray:
        """Class probabilities from ``pipeline.predict_proba`` on a DataFrame of `records`."""
        frame = records_to_frame(records, self.contract)
        return np.asarray(self.pipeline.predict_proba(frame), dtype=np.float64)


def records_to_frame(records: Sequence[Record], contract: FeatureContract) -> pd.DataFrame:
    """The model-input DataFrame of `records`, with the dtypes training used.

    Numeric features are ``float64`` with ``NaN`` for missing values; categorical ones are object
    columns with ``NaN`` (not ``None``) for missing values, because ``SimpleImputer`` only treats
    ``NaN`` as missing in object columns.
    """
    import pandas as pd

    data: dict[str, Any] = {}
    for name in contract.feature_columns:
        values = [record.get(name) for record in records]
        if contract.column(name).is_numeric:
            data[name] = np.array(values, dtype=np.float64)  # None becomes NaN
        else:
            data[name] = np.array([math.nan if v is None else v for v in values], dtype=object)
    return pd.DataFrame(data, columns=contract.feature_columns)


class FastPredictor:
    """The fitted preprocessing applied with numpy, then the fitted estimator."""

    def __init__(self, pipeline: Any, contract: FeatureContract) -> None:
        """Read the fitted preprocessing of `pipeline`, checked against `contract`.

        The contract is the one source of column names and order (the request validator's too);
        a pipeline fitted on other columns, or in another order, does not get a fast path.

        Raises:
            UnsupportedPipelineError: naming the step or the column the fast path cannot follow.
        """
        preprocess, estimator = split_pipeline(pipeline)
        fitted_on = [str(name) for name in getattr(preprocess, "feature_names_in_", ())]
        if fitted_on != contract.feature_columns:
            raise UnsupportedPipelineError(
                f"the pipeline was fitted on {fitted_on}, the contract's features are "
                f"{contract.feature_columns}"
            )
        if hasattr(estimator, "feature_names_in_"):
            raise UnsupportedPipelineError("the estimator was fitted on named columns")
        if not hasattr(estimator, "predict_proba"):
            raise UnsupportedPipelineError(f"{type(estimator).__name__} has no predict_proba")
        self.estimator = estimator
        self.classes = tuple(str(label) for label in estimator.classes_)
        self.width, self.blocks = compile_column_transformer(preprocess)
        self.walker = TreeWalker.of(estimator)

    def transform(self, records: Sequence[Record]) -> np.ndarray:
        """The model matrix of `records` (what the ColumnTransformer would produce)."""
        matrix = np.zeros((len(records), self.width), dtype=np.float64)
        for block in self.blocks:
            if isinstance(block, NumericBlock):
                values = np.array(
                    [[record.get(name) for name in block.columns] for record in records],
                    dtype=np.float64,
                )
                if block.fill is not None:
                    missing = np.isnan(values)
                    if missing.any():
                        values = np.where(missing, block.fill, values)
                if block.mean is not None:
                    values -= block.mean
                if block.scale is not None:
                    values /= block.scale
                matrix[:, block.target] = values
            else:
                start = block.target.start
                for position, name in enumerate(block.columns):
                    lookup = block.lookups[position]
                    for row, record in enumerate(records):
                        value = record.get(name)
                        if value is None and block.fill is not None:
                            value = block.fill[position]
                        index = lookup.get(value)
                        if index is not None:  # unknown categories stay all-zero (ignored)
                            matrix[row, start + index] = 1.0
        return matrix

    def predict_proba(self, records: Sequence[Record]) -> np.ndarray:
        """Class probabilities from the estimator (or its trees, walked) on the fast-path matrix."""
        matrix = self.transform(records)
        if self.walker is not None and len(records) <= self.walker.max_rows:
            return self.walker.predict_proba(matrix)
        return self.estimator_proba(matrix)

    def estimator_proba(self, matrix: np.ndarray) -> np.ndarray:
        """The fitted estimator's own ``predict_proba`` (batches above the walker's limit)."""
        return np.asarray(self.estimator.predict_proba(matrix), dtype=np.float64)

    def walk_in_chunks(self, matrix: np.ndarray) -> np.ndarray:
        """The tree walker on `matrix`, at most ``max_rows`` rows at a time, as it serves."""
        if self.walker is None:
            raise UnsupportedPipelineError("no tree walker for this estimator")
        step = self.walker.max_rows
        return np.vstack(
            [
                self.walker.predict_proba(matrix[start : start + step])
                for start in range(0, len(matrix), step)
            ]
        )

    def serving_paths(self) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
        """Every way :meth:`predict_proba` turns the matrix into probabilities, by name.

        :func:`build_predictor` checks each of them against the pipeline on every verification
        row, so no path serves that was not compared, whatever the batch size.
        """
        paths: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        if self.walker is not None:
            paths[f"tree walker (batches of at most {self.walker.max_rows} rows)"] = (
                self.walk_in_chunks
            )
        larger = f"above {self.walker.max_rows} rows" if self.walker is not None else "any batch"
        paths[f"{type(self.estimator).__name__}.predict_proba ({larger})"] = self.estimator_proba
        return paths


@dataclass(frozen=True)
class Verification:
    """How the fast path compared with the pipeline at load time."""

    used_fast_path: bool
    rows: int
    source: str
    max_abs_difference: float | None
    reason: str
    paths: tuple[str, ...] = ()  # the fast path's code paths compared (all of them, or none)


def build_predictor(
    pipeline: Any,
    contract: FeatureContract,
    verification_rows: Sequence[Record],
    source: str,
) -> tuple[Predictor, Verification]:
    """The fast path when every one of its code paths reproduces the pipeline, else the pipeline.

    Args:
        pipeline: The fitted pipeline.
        contract: The model's feature contract.
        verification_rows: Records to compare on (held-out rows and probes).
        source: Where the rows came from, for the log and ``GET /model``.

    Returns:
        The predictor to serve with, and what the comparison found.

    Raises:
        Exception: whatever the pipeline itself raises on the verification rows (the model
            cannot serve at all then).
    """
    slow = PipelinePredictor(pipeline, contract)
    if not verification_rows:
        return slow, _fallback("no rows to verify the fast path on", 0, source)
    expected = slow.predict_proba(verification_rows)
    try:
        fast = FastPredictor(pipeline, contract)
    except UnsupportedPipelineError as error:
        return slow, _fallback(f"fast path unsupported ({error})", 0, source)
    # Anything else comes from scikit-learn internals the fast path reads (a private attribute
    # renamed in a new release, say): the pipeline serves and the reason is shown, never a crash.
    except Exception as error:
        return slow, _fallback(f"fast path could not be built ({error!r})", 0, source)
    count = len(verification_rows)
    try:
        matrix = fast.transform(verification_rows)
        outputs = {name: path(matrix) for name, path in fast.serving_paths().items()}
    except Exception as error:
        return slow, _fallback(
            f"fast path failed on the verification rows ({error!r})", count, source
        )
    worst = 0.0
    for name, actual in outputs.items():
        difference = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
        worst = max(worst, difference)
        same_labels = bool(np.array_equal(actual.argmax(axis=1), expected.argmax(axis=1)))
        if fast.classes != slow.classes or difference > TOLERANCE or not same_labels:
            reason = (
                f"fast path ({name}) differs from the pipeline on {source} (max |difference| "
                f"{difference:.3g} > {TOLERANCE:g})"
            )
            return slow, _fallback(reason, count, source, difference)
    paths = ", ".join(outputs)
    reason = f"fast path equals the pipeline on {count} rows ({source}) through {paths}"
    logger.info("%s; max |difference| %.3g", reason, worst)
    return fast, Verification(True, count, source, worst, reason, tuple(outputs))


def _fallback(
    problem: str, rows: int, source: str, difference: float | None = None
) -> Verification:
    """Log why the pipeline serves instead of the fast path, and record it for ``GET /model``."""
    reason = f"{problem}; serving with the pipeline"
    logger.warning(reason)
    return Verification(False, rows, source, difference, reason)


def probe_rows(
    pipeline: Any,
    contract: FeatureContract,
    n_rows: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Deterministic synthetic rows that exercise every input the fast path must get right.

    Every category the contract accepts (seen in training or not), values spread around each
    numeric feature's training distribution (from the fitted scaler when there is one) within
    the contract's bounds (the only values a request can carry), and a missing value in every
    nullable feature in turn.
    """
    rng = np.random.default_rng(seed)
    centre, spread = numeric_centres(pipeline, contract)
    rows: list[dict[str, Any]] = []
    for index in range(n_rows):
        row: dict[str, Any] = {}
        for name in contract.feature_columns:
            column = contract.column(name)
            if column.is_numeric:
                value = float(centre[name] + spread[name] * rng.normal(scale=1.5))
                low = -math.inf if column.minimum is None else column.minimum
                high = math.inf if column.maximum is None else column.maximum
                value = min(max(value, low), high)
                row[name] = round(value) if column.is_integer else value
            else:
                choices = list(column.accepted_values or encoder_categories(pipeline, name))
                row[name] = choices[index % len(choices)] if choices else "unknown"
        nullable = [name for name in contract.feature_columns if contract.column(name).nullable]
        if nullable and index % 4 == 0:
            row[nullable[(index // 4) % len(nullable)]] = None
        rows.append(row)
    return rows
