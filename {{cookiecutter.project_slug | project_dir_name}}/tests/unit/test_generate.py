from datetime import date
from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.data.generate import (
    DRIFT_KINDS,
    drift_shift,
    generate_batch,
    generate_tables,
    write_tables,
)

EXTRACT = date(2025, 6, 30)


@pytest.fixture(scope="module")
def tables():
    return generate_tables(seed=7, n_customers=2_000, n_sales=20_000, extract_date=EXTRACT)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = write_tables(generate_tables(3, 300, 3_000, EXTRACT), tmp_path / "a")
    second = write_tables(generate_tables(3, 300, 3_000, EXTRACT), tmp_path / "b")
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes()
    other = write_tables(generate_tables(4, 300, 3_000, EXTRACT), tmp_path / "c")
    assert other["sales"].read_bytes() != first["sales"].read_bytes()


def test_the_tables_have_the_declared_shape(tables) -> None:
    assert list(tables.customers.columns) == [
        "customer_id",
        "signup_date",
        "country",
        "segment",
        "channel",
        "age_band",
        "label",
    ]
    assert len(tables.customers) == 2_000
    assert len(tables.sales) == 20_000
    assert tables.customers["customer_id"].is_unique
    assert tables.sales["sale_id"].is_unique
    assert set(tables.sales["customer_id"]) <= set(tables.customers["customer_id"])
    assert (tables.sales["amount"] >= 0).all()


def test_the_extract_carries_realistic_dirt(tables) -> None:
    missing_channel = tables.customers["channel"].isna().mean()
    late = (tables.sales["sale_date"] > EXTRACT.isoformat()).mean()
    messy_country = (~tables.customers["country"].str.fullmatch("[A-Z]{2}")).mean()
    assert 0.005 < missing_channel < 0.05
    assert 0.001 < late < 0.02
    assert 0 < messy_country < 0.05


def test_the_label_follows_the_sales_history(tables) -> None:
    sales = tables.sales[tables.sales["sale_date"] <= EXTRACT.isoformat()]
    delay = sales.groupby("customer_id")["payment_delay_days"].mean()
    labelled = tables.customers.set_index("customer_id").join(delay.rename("delay"))
    by_label = labelled.groupby("label")["delay"].mean()
    assert 0.1 < (tables.customers["label"] == "bad").mean() < 0.45
    assert by_label["bad"] > 1.4 * by_label["good"]


@pytest.mark.parametrize(
    ("kind", "step", "expected"),
    [
        ("none", 3, 0.0),
        ("sudden", 1, 1.0),
        ("sudden", 4, 1.0),
        ("incremental", 1, 0.25),
        ("incremental", 2, 0.5),
        ("incremental", 9, 1.0),
        ("recurring", 1, 1.0),
        ("recurring", 5, 0.0),
        ("recurring", 9, 1.0),
    ],
)
def test_drift_shift_by_kind(kind, step: int, expected: float) -> None:
    shift = drift_shift(kind, 1.0, step=step, horizon=4, n_rows=100, rng=np.random.default_rng(0))
    assert shift.shape == (100,)
    assert np.allclose(shift, expected)


def test_gradual_drift_mixes_old_and_new_rows() -> None:
    rng = np.random.default_rng(0)
    early = drift_shift("gradual", 0.8, step=1, horizon=4, n_rows=4_000, rng=rng)
    late = drift_shift("gradual", 0.8, step=4, horizon=4, n_rows=4_000, rng=rng)
    assert set(np.unique(early)) == {0.0, 0.8}
    assert 0.2 < (early > 0).mean() < 0.3
    assert (late == 0.8).all()


@pytest.mark.parametrize(
    ("kind", "strength", "step", "horizon"),
    [("seasonal", 1.0, 1, 4), ("sudden", -1.0, 1, 4), ("sudden", 1.0, 0, 4)],
)
def test_bad_drift_arguments_are_refused(kind, strength, step, horizon) -> None:
    with pytest.raises(ValueError, match=r"drift kind|strength"):
        drift_shift(
            kind, strength, step=step, horizon=horizon, n_rows=5, rng=np.random.default_rng(0)
        )


def test_a_drifted_batch_has_more_bad_customers_and_fresh_ids(tables) -> None:
    calm = generate_batch(7, 2_000, 20_000, EXTRACT, kind="none", step=1)
    drifted = generate_batch(7, 2_000, 20_000, EXTRACT, kind="sudden", strength=1.0, step=1)
    bad_share = {
        name: (batch.customers["label"] == "bad").mean()
        for name, batch in (("calm", calm), ("drifted", drifted))
    }
    assert bad_share["drifted"] > bad_share["calm"] + 0.1
    assert drifted.sales["payment_delay_days"].mean() > calm.sales["payment_delay_days"].mean()
    assert not set(drifted.customers["customer_id"]) & set(tables.customers["customer_id"])
    again = generate_batch(7, 2_000, 20_000, EXTRACT, kind="sudden", strength=1.0, step=1)
    assert again.sales.equals(drifted.sales)


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_every_drift_kind_makes_a_batch(kind) -> None:
    batch = generate_batch(1, 200, 1_000, EXTRACT, kind=kind, step=2)
    assert len(batch.customers) == 200
    assert batch.customers["customer_id"].min() == 2_000_001
