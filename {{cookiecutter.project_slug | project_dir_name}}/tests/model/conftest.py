"""Fixtures for the model tests: a small synthetic feature table that follows the contract, and a
project folder with its own SQLite MLflow store, so no test touches the real one."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Settings, get_settings
from {{ cookiecutter.package_name }}.params import Params, load_params


@pytest.fixture(autouse=True)
def _own_tracking_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test uses its project's store: `mlflow.set_tracking_uri` also exports the variable."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")


def synthetic_table(n_rows: int = 800, seed: int = 0) -> pd.DataFrame:
    """A feature table whose label follows payment delay and returns, like the demo data."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n_rows)
    n_orders = rng.poisson(10, n_rows).astype(float)
    total = n_orders * rng.gamma(2.0, 40.0, n_rows)
    delay = np.clip(10 + 12 * risk + rng.normal(0, 4, n_rows), 0, None)
    returns = np.clip(0.15 + 0.1 * risk + rng.normal(0, 0.05, n_rows), 0, 1)
    bad = risk + rng.normal(0, 0.5, n_rows) > 0.6
    table = pd.DataFrame(
        {
            "customer_id": np.arange(1, n_rows + 1, dtype="int64"),
            "country": rng.choice(["DE", "FR", "NL"], n_rows),
            "segment": rng.choice(["consumer", "small_business", "corporate"], n_rows),
            "channel": rng.choice(["web", "store", "partner"], n_rows),
            "age_band": rng.choice(["18-34", "35-54", "55+"], n_rows),
            "tenure_days": rng.integers(30, 3000, n_rows).astype(float),
            "n_orders": n_orders,
            "total_amount": total,
            "avg_amount": np.where(n_orders > 0, total / np.maximum(n_orders, 1), np.nan),
            "max_amount": total / np.maximum(n_orders, 1) * 1.8,
            "return_rate": returns,
            "avg_payment_delay_days": delay,
            "days_since_last_order": rng.integers(0, 365, n_rows).astype(float),
            "n_categories": rng.integers(1, 6, n_rows).astype(float),
            "label": np.where(bad, "bad", "good"),
        }
    )
    table.loc[::50, "channel"] = None
    return table


@pytest.fixture(scope="session")
def table() -> pd.DataFrame:
    return synthetic_table()


@pytest.fixture
def params(project: Path) -> Params:
    """The synthetic tables' params.yaml, with fairness bounds loose enough for their size."""
    params = load_params(project / "params.yaml")
    # ~70 held-out rows per slice: fairness differences are mostly noise at this size
    loose = {"max_equalized_odds_difference": 0.6, "max_demographic_parity_difference": 0.6}
    return params.model_copy(update={"gate": params.gate.model_copy(update=loose)})


@pytest.fixture
def settings(project: Path) -> Settings:
    """Settings of the scratch project: MLflow store and artifacts inside `project`."""
    assert get_settings().project_dir == project.resolve()
    return get_settings()
