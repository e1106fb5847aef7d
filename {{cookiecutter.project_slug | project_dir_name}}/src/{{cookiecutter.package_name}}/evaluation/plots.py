"""The evaluation's plots: confusion matrix, ROC, precision-recall and permutation importance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..pipeline import model_input
from .metrics import positive_probability

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    from sklearn.pipeline import Pipeline

    from ..contract import FeatureContract
    from ..params import Params

# Each permutation repeat scores the whole pipeline once per feature: a sample keeps it to seconds.
PERMUTATION_ROWS = 1_000


def write_plots(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    params: Params,
    folder: Path,
) -> dict[str, float]:
    """Confusion matrix, ROC, precision-recall (PNG and CSV) and permutation importance (PNG).

    Returns:
        The mean permutation importance of each feature (drop in average precision).
    """
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        PrecisionRecallDisplay,
        RocCurveDisplay,
        average_precision_score,
        precision_recall_curve,
        roc_curve,
    )

    folder.mkdir(parents=True, exist_ok=True)
    positive_class = params.train.positive_class
    features = model_input(frame, contract)
    truth = frame[contract.label_column].astype(str).to_numpy()
    predicted = model.predict(features).astype(str)
    score = positive_probability(model, features, positive_class)
    is_positive = truth == positive_class

    pd.DataFrame({"actual": truth, "predicted": predicted}).to_csv(
        folder / "confusion.csv", index=False
    )
    fpr, tpr, _ = roc_curve(is_positive, score)
    pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(folder / "roc.csv", index=False)
    precision, recall, _ = precision_recall_curve(is_positive, score)
    pd.DataFrame({"recall": recall, "precision": precision}).to_csv(
        folder / "precision_recall.csv", index=False
    )

    figure, axes = plt.subplots(figsize=(5, 4))
    ConfusionMatrixDisplay.from_predictions(truth, predicted, ax=axes, colorbar=False)
    _save(figure, folder / "confusion_matrix.png", "Confusion matrix (held-out)")
    figure, axes = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(is_positive, score, ax=axes, name=positive_class)
    _save(figure, folder / "roc.png", "ROC (held-out)")
    figure, axes = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(is_positive, score, ax=axes, name=positive_class)
    _save(figure, folder / "precision_recall.png", "Precision-recall (held-out)")

    def positive_average_precision(
        estimator: Pipeline, rows: pd.DataFrame, labels: np.ndarray
    ) -> float:
        """Average precision of the positive class against the rest (any number of classes)."""
        scores = positive_probability(estimator, rows, positive_class)
        return float(average_precision_score(labels == positive_class, scores))

    importance = permutation_importance(
        model,
        features,
        truth,
        scoring=positive_average_precision,
        n_repeats=params.evaluate.permutation_repeats,
        random_state=params.train.seed,
        # Each repeat scores the whole pipeline once per feature: a sample keeps it to seconds.
        max_samples=min(len(features), PERMUTATION_ROWS),
    )
    means = pd.Series(importance.importances_mean, index=features.columns).sort_values()
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(means) + 1.5))
    axes.barh(means.index, means.to_numpy())
    axes.set_xlabel("drop in average precision when shuffled")
    _save(figure, folder / "permutation_importance.png", "Permutation importance (held-out)")
    return {str(name): float(value) for name, value in means.sort_values(ascending=False).items()}


def _save(figure: Any, path: Path, title: str) -> None:  # noqa: ANN401 (matplotlib Figure)
    import matplotlib.pyplot as plt

    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
