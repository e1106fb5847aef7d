"""Fixtures for the monitoring tests: customers whose behaviour drifts on demand, a fitted model,
its reference profile, and a helper that logs scored rows as a batch run."""

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.contract import FeatureContract
from {{ cookiecutter.package_name }}.monitoring.reference import (
    ReferenceProfile,
    build_reference_profile,
)
from {{ cookiecutter.package_name }}.pipeline import build_pipeline
from {{ cookiecutter.package_name }}.prediction_log import log_batch


def customers(n_rows: int, shift: float = 0.0, seed: int = 0, first_id: int = 1) -> pd.DataFrame:
    """A feature table shaped like the demo's; `shift` moves it as the demo's drift does."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n_rows) + 1.5 * shift
    n_orders = rng.poisson(10, n_rows).astype(float)
    avg = rng.lognormal(3.6, 0.5, n_rows) * (1 + 0.4 * shift)
    weights = np.array([0.45, 0.30, 0.15, 0.10]) * np.exp(0.8 * shift * np.array([-1, -1, 1, 1]))
    bad = 1 / (1 + np.exp(-(-1.2 + 1.6 * risk))) > rng.random(n_rows)
    return pd.DataFrame(
        {
            "customer_id": np.arange(first_id, first_id + n_rows, dtype="int64"),
            "country": rng.choice(["DE", "FR", "NL", "ES"], n_rows),
            "segment": rng.choice(["consumer", "small_business", "corporate"], n_rows),
            "channel": rng.choice(
                ["web", "store", "partner", "phone"], n_rows, p=weights / weights.sum()
            ),
            "age_band": rng.choice(["18-34", "35-54", "55+"], n_rows),
            "tenure_days": rng.integers(30, 1800, n_rows).astype(float),
            "n_orders": n_orders,
            "total_amount": n_orders * avg,
            "avg_amount": avg,
            "max_amount": avg * rng.uniform(1.2, 2.5, n_rows),
            "return_rate": np.clip(
                1 / (1 + np.exp(-(-2.6 + 0.7 * risk))) + rng.normal(0, 0.03, n_rows), 0, 1
            ),
            "avg_payment_delay_days": rng.poisson(np.exp(1.2 + 0.55 * risk)).astype(float),
            "days_since_last_order": rng.integers(0, 365, n_rows).astype(float),
            "n_categories": rng.integers(1, 7, n_rows).astype(float),
            "label": np.where(bad, "bad", "good"),
        }
    )


@pytest.fixture(scope="session")
def make_customers():
    """:func:`customers`, for tests (conftest modules are not imported by name)."""
    return customers


@pytest.fixture(scope="session")
def model(contract: FeatureContract):
    train = customers(3000, seed=1)
    pipeline = build_pipeline(contract, "logistic_regression", {"C": 1.0, "max_iter": 500}, 0)
    return pipeline.fit(train[contract.feature_columns], train[contract.label_column])


@pytest.fixture(scope="session")
def reference(model, contract: FeatureContract) -> ReferenceProfile:
    return build_reference_profile(
        customers(2000, seed=2),
        model,
        contract,
        "good",
        model_name="customer_quality",
        model_version="1",
        run_id="run",
    )


@pytest.fixture(scope="session")
def log_scored(model, contract: FeatureContract):
    """Score a table with `model` and log it as a batch run of version 1."""

    def log(directory: Path, table: pd.DataFrame, batch_id: str) -> None:
        features = table[contract.feature_columns]
        scores = model.predict_proba(features)[:, list(model.classes_).index("good")]
        log_batch(
            directory,
            table,
            contract,
            [str(label) for label in model.predict(features)],
            scores,
            model=("customer_quality", "1"),
            batch_id=batch_id,
            scored_at=datetime.now(tz=UTC),
            latency_ms=0.01,
        )

    return log
