"""The model: a scikit-learn pipeline built from the feature contract and ``train`` in params.yaml.

The pipeline is the contract's features in, a label out: numeric features are imputed and
scaled, categorical ones imputed and one-hot encoded (categories unseen in training are ignored),
then the estimator chosen in ``train.estimator``. The id and the sensitive attributes are never
model inputs. Estimators that take monotonic constraints (the two tree ensembles, on a binary
label) get one per feature of ``evaluate.directional``: the direction the post-train tests check is
a fact about the domain, so the model is fitted to respect it instead of merely tested for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd
    from sklearn.base import ClassifierMixin
    from sklearn.pipeline import Pipeline

    from .contract import FeatureContract
    from .params import EvaluateParams

logger = logging.getLogger(__name__)


def model_input(frame: pd.DataFrame, contract: FeatureContract) -> pd.DataFrame:
    """The columns the model reads (the contract's features, in contract order)."""
    return frame[contract.feature_columns]


def monotonic_constraints(
    evaluate: EvaluateParams, classes: Sequence[str], positive_class: str
) -> dict[str, int]:
    """The monotonic constraint per feature implied by ``evaluate.directional``.

    scikit-learn constrains the probability of ``classes_[1]`` (of a binary label; the classes
    sorted): +1 may only rise with the feature, -1 only fall. ``not_more_likely`` for the
    positive class after a positive ``change`` means its probability must not rise: -1 on the
    positive class, flipped when the positive class is ``classes_[0]`` or the change is negative.

    Returns:
        Feature name to -1 or +1; empty for a label that is not binary (scikit-learn supports no
        monotonic constraints there) or when there are no expectations. A feature whose
        expectations contradict each other is left unconstrained (the tests will report it).
    """
    if len(classes) != 2 or not evaluate.directional:  # noqa: PLR2004 (binary)
        if evaluate.directional:
            logger.warning("%d classes: directional expectations are not constraints", len(classes))
        return {}
    towards_positive = 1 if positive_class == sorted(classes)[1] else -1
    signs: dict[str, set[int]] = {}
    for expectation in evaluate.directional:
        if expectation.change == 0:
            continue
        direction = 1 if expectation.expect == "not_less_likely" else -1
        step = 1 if expectation.change > 0 else -1
        signs.setdefault(expectation.feature, set()).add(direction * step * towards_positive)
    return {feature: next(iter(sign)) for feature, sign in signs.items() if len(sign) == 1}


def constrain_monotonic(
    pipeline: Pipeline, features: pd.DataFrame, constraints: Mapping[str, int]
) -> Pipeline:
    """Give the pipeline's estimator `constraints`, if it takes ``monotonic_cst``.

    The estimator sees the preprocessed columns (numeric features keep their names, one-hot
    columns are added after them), so the constraint array is aligned to the preprocessing's
    output for `features`, the rows the pipeline is about to be fitted on. Scaling and imputation
    are increasing, so a constraint on a scaled column is one on the raw feature.
    """
    from sklearn.base import clone

    if not constraints or "monotonic_cst" not in pipeline["model"].get_params():
        return pipeline
    names = clone(pipeline["preprocess"]).fit(features).get_feature_names_out()
    pipeline.set_params(model__monotonic_cst=[constraints.get(str(name), 0) for name in names])
    return pipeline


def build_estimator(name: str, hyperparameters: Mapping[str, Any], seed: int) -> ClassifierMixin:
    """The scikit-learn classifier called `name`, seeded where it draws random numbers."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression

    if name == "logistic_regression":
        return LogisticRegression(**hyperparameters, random_state=seed)
    if name == "random_forest":
        return RandomForestClassifier(**hyperparameters, random_state=seed, n_jobs=1)
    if name == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(**hyperparameters, random_state=seed)
    raise ValueError(f"unknown estimator {name!r}")  # params validation makes this unreachable


def build_pipeline(
    contract: FeatureContract, estimator: str, hyperparameters: Mapping[str, Any], seed: int
) -> Pipeline:
    """Preprocessing derived from the contract, then the estimator."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    preprocess = ColumnTransformer(
        [
            ("numeric", numeric, contract.numeric_features),
            ("categorical", categorical, contract.categorical_features),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    return Pipeline(
        [("preprocess", preprocess), ("model", build_estimator(estimator, hyperparameters, seed))]
    )
