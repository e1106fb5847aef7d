"""A fitted ``HistGradientBoostingClassifier``'s trees, walked with numpy for small batches.

The estimator's own ``predict_proba`` costs about a millisecond whatever the batch (input checks,
then one OpenMP call per tree); for the few rows of a request, moving every row down every tree
at once in numpy is several times faster, with the same probabilities. It reads scikit-learn's
fitted internals, so it serves only after :func:`.predictor.build_predictor` has compared it
with the pipeline (and scikit-learn's version is bounded in ``pyproject.toml``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


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

    def __init__(self, estimator: Any, trees: list[tuple[int, np.ndarray]]) -> None:
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
    def of(cls, estimator: Any) -> TreeWalker | None:
        """A walker for `estimator`, or None when it is not a supported tree ensemble."""
        from sklearn.ensemble import HistGradientBoostingClassifier

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
