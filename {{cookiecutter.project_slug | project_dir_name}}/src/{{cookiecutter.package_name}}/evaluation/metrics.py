"""Held-out metrics of the positive class: precision (the headline), recall, F1, the AUCs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..pipeline import model_input

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ..contract import FeatureContract


def positive_probability(model: Pipeline, frame: pd.DataFrame, positive_class: str) -> np.ndarray:
    """The model's probability of `positive_class` for each row of model input `frame`."""
    classes = [str(label) for label in model.classes_]
    column = classes.index(positive_class)
    probabilities: np.ndarray = model.predict_proba(frame)[:, column]
    return probabilities


def classification_metrics(
    model: Pipeline, frame: pd.DataFrame, contract: FeatureContract, positive_class: str
) -> dict[str, float]:
    """Held-out metrics of the positive class: precision (the headline), recall, F1, AUCs."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    truth = frame[contract.label_column].astype(str).to_numpy() == positive_class
    features = model_input(frame, contract)
    predicted = model.predict(features).astype(str) == positive_class
    score = positive_probability(model, features, positive_class)
    return {
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "roc_auc": float(roc_auc_score(truth, score)),
        "average_precision": float(average_precision_score(truth, score)),
        "positive_rate": float(predicted.mean()),
        "n_rows": float(len(frame)),
    }
