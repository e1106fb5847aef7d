"""The fitted preprocessing of a pipeline, compiled to numpy for the serving fast path.

:func:`compile_column_transformer` reads a fitted ``ColumnTransformer`` of ``SimpleImputer`` /
``StandardScaler`` / ``OneHotEncoder`` steps (inside a ``Pipeline`` or alone), ``passthrough`` and
``drop`` into blocks of plain arrays and lookup tables, which :class:`.predictor.FastPredictor`
applies to plain Python values. Any other shape raises :class:`UnsupportedPipelineError`: the
pipeline itself then serves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..contract import FeatureContract


class UnsupportedPipelineError(ValueError):
    """The fitted pipeline has a step the fast path does not reproduce; the pipeline serves."""


@dataclass
class NumericBlock:
    """Numeric columns: fill missing values, then ``(x - mean) / scale``."""

    columns: list[str]
    target: slice
    fill: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None


@dataclass
class OneHotBlock:
    """Categorical columns: fill missing values, then one-hot through lookup tables."""

    columns: list[str]
    target: slice
    fill: list[Any] | None = None
    # Per column: category -> output position (relative to the block's start).
    lookups: list[dict[Any, int]] = field(default_factory=list)


def split_pipeline(pipeline: Any) -> tuple[Any, Any]:
    """The fitted ``ColumnTransformer`` and estimator of ``Pipeline([preprocess, estimator])``.

    Raises:
        UnsupportedPipelineError: for any other shape.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:  # noqa: PLR2004
        raise UnsupportedPipelineError("expected Pipeline([preprocess, estimator])")
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(preprocess, ColumnTransformer):
        raise UnsupportedPipelineError("the first step is not a ColumnTransformer")
    return preprocess, estimator


def compile_column_transformer(
    transformer: Any,
) -> tuple[int, list[NumericBlock | OneHotBlock]]:
    """The output width and one block per fitted transformer of a ``ColumnTransformer``.

    Raises:
        UnsupportedPipelineError: naming the step the fast path cannot reproduce.
    """
    if getattr(transformer, "sparse_output_", False):
        raise UnsupportedPipelineError("the ColumnTransformer produces a sparse matrix")
    blocks: list[NumericBlock | OneHotBlock] = []
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


def _steps_of(fitted: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    return [step for _, step in fitted.steps] if isinstance(fitted, Pipeline) else [fitted]


def _compile_steps(
    columns: list[str],
    steps: list[Any],
    target: slice,
) -> NumericBlock | OneHotBlock:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

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
    block = NumericBlock(columns, target)
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
    encoder: Any,
    fill: np.ndarray | None,
    target: slice,
) -> OneHotBlock:
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
    return OneHotBlock(
        columns, target, fill=None if fill is None else fill.tolist(), lookups=lookups
    )


def _nan_is_missing(marker: Any) -> bool:
    return marker is None or (isinstance(marker, float) and math.isnan(marker))


def numeric_centres(
    pipeline: Any,
    contract: FeatureContract,
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and spread per numeric feature, from a fitted StandardScaler where there is one."""
    centre = dict.fromkeys(contract.numeric_features, 1.0)
    spread = dict.fromkeys(contract.numeric_features, 1.0)
    try:
        preprocess, _ = split_pipeline(pipeline)
        _, blocks = compile_column_transformer(preprocess)
    except UnsupportedPipelineError:
        return centre, spread
    for block in blocks:
        if isinstance(block, NumericBlock):
            for position, name in enumerate(block.columns):
                if block.mean is not None:
                    centre[name] = float(block.mean[position])
                if block.scale is not None:
                    spread[name] = float(block.scale[position])
    return centre, spread


def encoder_categories(pipeline: Any, feature: str) -> list[Any]:
    """The categories the fitted one-hot encoder knows for `feature` (empty when none)."""
    try:
        preprocess, _ = split_pipeline(pipeline)
        _, blocks = compile_column_transformer(preprocess)
    except UnsupportedPipelineError:
        return []
    for block in blocks:
        if isinstance(block, OneHotBlock) and feature in block.columns:
            return list(block.lookups[block.columns.index(feature)])
    return []
