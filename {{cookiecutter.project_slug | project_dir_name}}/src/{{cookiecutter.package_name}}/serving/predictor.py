"""Turn validated records into probabilities: a numpy fast path, checked against the pipeline.

A one-row ``Pipeline.predict_proba`` spends most of its 7-10 ms in scikit-learn's input handling
(DataFrame checks, column selection, dtype conversion), not in the model. :class:`FastPredictor`
reads the fitted preprocessing once (imputer statistics, scaler arrays, one-hot lookup tables) and
applies it to plain Python values with numpy, then calls the fitted estimator directly. For a
``HistGradientBoostingClassifier``, whose own ``predict_proba`` costs about a millisecond whatever
the batch (input checks, then one OpenMP call per tree), small batches walk the trees instead:
:class:`TreeWalker` holds every tree in flat numpy arrays and moves all rows down all trees one
level per step.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

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


class UnsupportedPipelineError(ValueError):
    """The fitted pipeline has a step the fast path does not reproduce; the pipeline serves."""


class PipelinePredictor:
    """The fitted pipeline as trained: always correct, slower per call (builds a DataFrame)."""

    def __init__(self, pipeline: Any, contract: FeatureContract) -> None:  # noqa: ANN401 (sklearn)
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
    import pandas as pd  # noqa: PLC0415 (only the pipeline path and the batch step need pandas)

    data: dict[str, Any] = {}
    for name in contract.feature_columns:
        values = [record.get(name) for record in records]
        if contract.column(name).is_numeric:
            data[name] = np.array(values, dtype=np.float64)  # None becomes NaN
        else:
            data[name] = np.array([math.nan if v is None else v for v in values], dtype=object)
    return pd.DataFrame(data, columns=contract.feature_columns)


@dataclass
class _NumericBlock:
    """Numeric columns: fill missing values, then ``(x - mean) / scale``."""

    columns: list[str]
    target: slice
    fill: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None


@dataclass
class _OneHotBlock:
    """Categorical columns: fill missing values, then one-hot through lookup tables."""

    columns: list[str]
    target: slice
    fill: list[Any] | None = None
    # Per column: category -> output position (relative to the block's start).
    lookups: list[dict[Any, int]] = field(default_factory=list)


class FastPredictor:
    """The fitted preprocessing applied with numpy, then the fitted estimator."""

    def __init__(self, pipeline: Any) -> None:  # noqa: ANN401 (a fitted sklearn Pipeline)
        """Read the fitted preprocessing of `pipeline`.

        Raises:
            UnsupportedPipelineError: naming the step the fast path cannot reproduce.
        """
        preprocess, estimator = _split_pipeline(pipeline)
        if hasattr(estimator, "feature_names_in_"):
            raise UnsupportedPipelineError("the estimator was fitted on named columns")
        if not hasattr(estimator, "predict_proba"):
            raise UnsupportedPipelineError(f"{type(estimator).__name__} has no predict_proba")
        self.estimator = estimator
        self.classes = tuple(str(label) for label in estimator.classes_)
        self.width, self.blocks = _compile_column_transformer(preprocess)
        self.walker = TreeWalker.of(estimator)

    def transform(self, records: Sequence[Record]) -> np.ndarray:
        """The model matrix of `records` (what the ColumnTransformer would produce)."""
        matrix = np.zeros((len(records), self.width), dtype=np.float64)
        for block in self.blocks:
            if isinstance(block, _NumericBlock):
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


class TreeWalker:
    """A fitted ``HistGradientBoostingClassifier``'s trees, evaluated with numpy.

    Every node of every tree is one position in flat arrays (feature, threshold, children, missing
    direction, leaf value). A leaf's children are itself, so walking ``depth`` levels leaves each
    (row, tree) pair on its leaf without a per-level leaf test. The decision rule is the one of
    scikit-learn's predictor: ``NaN`` goes where the node sends missing values, otherwise
    ``x <= threshold`` goes left. Raw scores are the baseline plus the leaf values, turned into
    probabilities by the estimator's own loss, as ``predict_proba`` does.
    """

    # Rows x trees beyond which scikit-learn's compiled loop is used. Measured here (100 trees):
    # the walker is 2.5x faster at 100 rows, 1.6x at 200; the two meet at about 500 rows.
    CELLS_LIMIT = 20_000

    def __init__(self, estimator: Any, trees: list[tuple[int, np.ndarray]]) -> None:  # noqa: ANN401
        # scikit-learn internals, read once; the load-time check against the pipeline guards them.
        self.loss = estimator._loss  # the link from raw scores to probabilities
        self.baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64)
        self.n_outputs = int(estimator.n_trees_per_iteration_)
        sizes = [len(nodes) for _, nodes in trees]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        nodes = np.concatenate([nodes for _, nodes in trees])
        offsets = np.repeat(starts, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(len(nodes), dtype=np.intp)
        self.feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.left = np.where(leaf, own, offsets + nodes["left"]).astype(np.intp)
        self.right = np.where(leaf, own, offsets + nodes["right"]).astype(np.intp)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.value = nodes["value"].astype(np.float64)
        self.roots = starts
        self.output = np.array([output for output, _ in trees], dtype=np.intp)
        self.depth = int(nodes["depth"].max())
        self.max_rows = max(1, self.CELLS_LIMIT // len(trees))

    @classmethod
    def of(cls, estimator: Any) -> TreeWalker | None:  # noqa: ANN401 (any fitted estimator)
        """A walker for `estimator`, or None when it is not a supported tree ensemble."""
        from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415

        if not isinstance(estimator, HistGradientBoostingClassifier):
            return None
        if getattr(estimator, "_preprocessor", None) is not None:
            return None  # categorical features encoded by the estimator itself
        trees = [
            (output, predictor.nodes)
            for iteration in estimator._predictors  # the fitted trees, per boosting iteration
            for output, predictor in enumerate(iteration)
        ]
        if not trees or any(nodes["is_categorical"].any() for _, nodes in trees):
            return None
        return cls(estimator, trees)

    def raw_predict(self, matrix: np.ndarray) -> np.ndarray:
        """Baseline plus the sum of leaf values: shape (rows, outputs)."""
        n_rows, n_features = matrix.shape
        values = matrix.ravel()
        row_start = (np.arange(n_rows, dtype=np.intp) * n_features)[:, None]
        node = np.broadcast_to(self.roots, (n_rows, len(self.roots)))
        has_missing = bool(np.isnan(values).any())
        for _ in range(self.depth):
            x = values[row_start + self.feature[node]]
            go_left = x <= self.threshold[node]
            if has_missing:
                go_left |= np.isnan(x) & self.missing_left[node]
            node = np.where(go_left, self.left[node], self.right[node])
        leaves = self.value[node]
        raw = np.empty((n_rows, self.n_outputs), dtype=np.float64)
        for output in range(self.n_outputs):
            raw[:, output] = leaves[:, self.output == output].sum(axis=1)
        return raw + self.baseline

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """What the estimator's ``predict_proba`` returns for `matrix`."""
        return np.asarray(self.loss.predict_proba(self.raw_predict(matrix)), dtype=np.float64)


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
    pipeline: Any,  # noqa: ANN401 (a fitted sklearn Pipeline)
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
        fast = FastPredictor(pipeline)
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
    pipeline: Any,  # noqa: ANN401 (a fitted sklearn Pipeline)
    contract: FeatureContract,
    n_rows: int = 200,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Deterministic synthetic rows that exercise every input the fast path must get right.

    Every category the contract accepts (seen in training or not), values spread around each
    numeric feature's training distribution (from the fitted scaler when there is one), and a
    missing value in every nullable feature in turn.
    """
    rng = np.random.default_rng(seed)
    centre, spread = _numeric_centres(pipeline, contract)
    rows: list[dict[str, Any]] = []
    for index in range(n_rows):
        row: dict[str, Any] = {}
        for name in contract.feature_columns:
            column = contract.column(name)
            if column.is_numeric:
                value = float(centre[name] + spread[name] * rng.normal(scale=1.5))
                row[name] = round(value) if column.is_integer else value
            else:
                choices = list(column.accepted_values or _encoder_categories(pipeline, name))
                row[name] = choices[index % len(choices)] if choices else "unknown"
        nullable = [name for name in contract.feature_columns if contract.column(name).nullable]
        if nullable and index % 4 == 0:
            row[nullable[(index // 4) % len(nullable)]] = None
        rows.append(row)
    return rows


def _split_pipeline(pipeline: Any) -> tuple[Any, Any]:  # noqa: ANN401
    from sklearn.compose import ColumnTransformer  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:  # noqa: PLR2004
        raise UnsupportedPipelineError("expected Pipeline([preprocess, estimator])")
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer):
        raise UnsupportedPipelineError("the first step is not a ColumnTransformer")
    return preprocess, estimator


def _compile_column_transformer(
    transformer: Any,  # noqa: ANN401
) -> tuple[int, list[_NumericBlock | _OneHotBlock]]:
    if getattr(transformer, "sparse_output_", False):
        raise UnsupportedPipelineError("the ColumnTransformer produces a sparse matrix")
    blocks: list[_NumericBlock | _OneHotBlock] = []
    width = 0
    for name, fitted, columns in transformer.transformers_:
        target: slice = transformer.output_indices_[name]
        width = max(width, target.stop)
        if fitted == "drop" or target.stop == target.start:
            continue
        column_names = [str(column) for column in columns]
        steps = [] if fitted == "passthrough" else _steps_of(fitted)
        blocks.append(_compile_steps(column_names, steps, target))
    return width, blocks


def _steps_of(fitted: Any) -> list[Any]:  # noqa: ANN401
    from sklearn.pipeline import Pipeline  # noqa: PLC0415

    return [step for _, step in fitted.steps] if isinstance(fitted, Pipeline) else [fitted]


def _compile_steps(
    columns: list[str],
    steps: list[Any],
    target: slice,
) -> _NumericBlock | _OneHotBlock:
    from sklearn.impute import SimpleImputer  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: PLC0415

    fill: np.ndarray | None = None
    remaining = list(steps)
    if remaining and isinstance(remaining[0], SimpleImputer):
        imputer = remaining.pop(0)
        if imputer.add_indicator or not _nan_is_missing(imputer.missing_values):
            raise UnsupportedPipelineError("SimpleImputer with indicators or non-NaN markers")
        fill = np.asarray(imputer.statistics_)
        if len(fill) != len(columns):
            raise UnsupportedPipelineError("SimpleImputer dropped an all-missing column")
    if remaining and isinstance(remaining[0], OneHotEncoder):
        encoder = remaining.pop(0)
        if remaining:
            raise UnsupportedPipelineError(f"a step after OneHotEncoder: {remaining[0]!r}")
        return _one_hot_block(columns, encoder, fill, target)
    block = _NumericBlock(columns, target)
    if fill is not None:
        block.fill = fill.astype(np.float64)
    if remaining and isinstance(remaining[0], StandardScaler):
        scaler = remaining.pop(0)
        block.mean = None if scaler.mean_ is None else np.asarray(scaler.mean_, dtype=np.float64)
        block.scale = None if scaler.scale_ is None else np.asarray(scaler.scale_, dtype=np.float64)
    if remaining:
        raise UnsupportedPipelineError(f"unsupported step {remaining[0]!r}")
    if target.stop - target.start != len(columns):
        raise UnsupportedPipelineError("a numeric block's width differs from its column count")
    return block


def _one_hot_block(
    columns: list[str],
    encoder: Any,  # noqa: ANN401
    fill: np.ndarray | None,
    target: slice,
) -> _OneHotBlock:
    if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
        raise UnsupportedPipelineError("OneHotEncoder with drop or infrequent categories")
    if encoder.handle_unknown not in {"ignore", "infrequent_if_exist"}:
        # Unknown categories would raise in the pipeline; the contract check rejects them first,
        # but the fast path must not silently disagree, so it does not serve this shape.
        raise UnsupportedPipelineError(f"OneHotEncoder(handle_unknown={encoder.handle_unknown!r})")
    lookups: list[dict[Any, int]] = []
    offset = 0
    for categories in encoder.categories_:
        lookups.append({category: offset + i for i, category in enumerate(categories.tolist())})
        offset += len(categories)
    if offset != target.stop - target.start:
        raise UnsupportedPipelineError("one-hot width differs from the encoder's categories")
    return _OneHotBlock(
        columns, target, fill=None if fill is None else fill.tolist(), lookups=lookups
    )


def _nan_is_missing(marker: Any) -> bool:  # noqa: ANN401
    return marker is None or (isinstance(marker, float) and math.isnan(marker))


def _numeric_centres(
    pipeline: Any,  # noqa: ANN401
    contract: FeatureContract,
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and spread per numeric feature, from a fitted StandardScaler where there is one."""
    centre = dict.fromkeys(contract.numeric_features, 1.0)
    spread = dict.fromkeys(contract.numeric_features, 1.0)
    try:
        preprocess, _ = _split_pipeline(pipeline)
        _, blocks = _compile_column_transformer(preprocess)
    except UnsupportedPipelineError:
        return centre, spread
    for block in blocks:
        if isinstance(block, _NumericBlock):
            for position, name in enumerate(block.columns):
                if block.mean is not None:
                    centre[name] = float(block.mean[position])
                if block.scale is not None:
                    spread[name] = float(block.scale[position])
    return centre, spread


def _encoder_categories(pipeline: Any, feature: str) -> list[Any]:  # noqa: ANN401
    try:
        preprocess, _ = _split_pipeline(pipeline)
        _, blocks = _compile_column_transformer(preprocess)
    except UnsupportedPipelineError:
        return []
    for block in blocks:
        if isinstance(block, _OneHotBlock) and feature in block.columns:
            return list(block.lookups[block.columns.index(feature)])
    return []
