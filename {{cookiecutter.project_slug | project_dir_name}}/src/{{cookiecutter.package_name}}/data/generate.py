"""The demo source: ``customers`` and ``sales`` tables of a master-data system, generated.

Deterministic (one seeded numpy ``Generator``), shipped with the project, no download. Each customer
has a hidden risk; it drives late payments and returns, and, with the segment, tenure and noise, the
``good``/``bad`` label, so a model can learn it from the sales history. The tables carry the dirt
real extracts carry: a few customers without a ``channel``, country codes typed by hand, and sales
that arrived after the extract date (staging drops them).

:func:`generate_batch` emits a later production batch under one of the four kinds of drift, for the
monitoring step: ``sudden``, ``gradual``, ``incremental`` and ``recurring`` (or ``none``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..params import DemoSource

logger = logging.getLogger(__name__)

DriftKind = Literal["none", "sudden", "gradual", "incremental", "recurring"]
DRIFT_KINDS: tuple[str, ...] = get_args(DriftKind)

COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "PL")
COUNTRY_WEIGHTS = (0.30, 0.22, 0.14, 0.14, 0.12, 0.08)
SEGMENTS = ("consumer", "small_business", "corporate")
SEGMENT_WEIGHTS = (0.65, 0.25, 0.10)
CHANNELS = ("web", "store", "partner", "phone")
CHANNEL_WEIGHTS = (0.45, 0.30, 0.15, 0.10)
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
AGE_BAND_WEIGHTS = (0.12, 0.24, 0.22, 0.18, 0.14, 0.10)
PRODUCT_CATEGORIES = ("electronics", "home", "fashion", "grocery", "sports", "books")
CATEGORY_WEIGHTS = (0.15, 0.20, 0.22, 0.25, 0.10, 0.08)

# How the hidden risk moves each observable (and the label). Chosen so that the label is
# learnable (precision well above the base rate) but not trivial.
_SEGMENT_RISK = {"consumer": 0.25, "small_business": 0.0, "corporate": -0.5}
_MISSING_CHANNEL_RATE = 0.02
_MESSY_COUNTRY_RATE = 0.01
_LATE_ROW_RATE = 0.005
_INACTIVE_RATE = 0.03


@dataclass(frozen=True)
class SourceTables:
    """The two raw tables of one extract."""

    customers: pd.DataFrame
    sales: pd.DataFrame


def demo_tables(demo: DemoSource) -> SourceTables:
    """The demo source's extract, as params.yaml's ``data:`` section describes it."""
    return generate_tables(
        demo.seed, demo.n_customers, demo.n_sales, demo.extract_date, demo.unlabelled_share
    )


def generate_tables(
    seed: int,
    n_customers: int,
    n_sales: int,
    extract_date: date,
    unlabelled_share: float = 0.0,
) -> SourceTables:
    """The reference extract: what the model is first trained on, and what is scored nightly.

    Args:
        seed: Seed of the random generator; the same seed gives the same tables, byte for byte.
        n_customers: Rows of ``customers``.
        n_sales: Rows of ``sales`` (including a few late-arriving ones).
        extract_date: The day the extract was taken; later sales are late arrivals.
        unlabelled_share: Customers, drawn at random, the business has not assessed yet: their
            label is empty (nightly scoring scores them; training never sees them).

    Returns:
        The ``customers`` and ``sales`` tables.
    """
    rng = np.random.default_rng(seed)
    tables = _simulate(
        rng, n_customers, n_sales, extract_date, shift=np.zeros(n_customers), first_id=1
    )
    # Its own stream: the share changes which labels are blank, never the customers themselves.
    blank = np.random.default_rng([seed, 1]).random(n_customers) < unlabelled_share
    tables.customers["label"] = tables.customers["label"].where(~blank, None)
    return tables


def drift_shift(
    kind: DriftKind,
    strength: float,
    *,
    step: int,
    horizon: int,
    n_rows: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """How far each row of batch `step` is moved towards the drifted concept, in [0, strength].

    * ``none``: never.
    * ``sudden``: every row, fully, from the first batch on.
    * ``gradual``: each row is either old or fully new; the share of new rows grows from 0 to 1
      over `horizon` batches.
    * ``incremental``: every row moves a little further each batch, reaching `strength` at
      `horizon`.
    * ``recurring``: the drifted concept comes and goes: fully on in odd periods of `horizon`
      batches, off in even ones.

    Args:
        kind: The kind of drift.
        strength: The size of the full shift (0 = none; 1 = strong).
        step: The batch number, from 1 (the first batch after the reference extract).
        horizon: Batches over which gradual and incremental drift complete, and the period of
            recurring drift.
        n_rows: Rows in the batch.
        rng: The random generator (used by ``gradual`` only).

    Returns:
        One shift per row.
    """
    if kind not in DRIFT_KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; choose one of {', '.join(DRIFT_KINDS)}")
    if strength < 0 or step < 1 or horizon < 1:
        raise ValueError("strength must be >= 0, step >= 1 and horizon >= 1")
    progress = min(1.0, step / horizon)
    if kind == "sudden":
        return np.full(n_rows, strength)
    if kind == "gradual":
        return np.where(rng.random(n_rows) < progress, strength, 0.0)
    if kind == "incremental":
        return np.full(n_rows, strength * progress)
    if kind == "recurring":
        return np.full(n_rows, strength if ((step - 1) // horizon) % 2 == 0 else 0.0)
    return np.zeros(n_rows)


def generate_batch(
    seed: int,
    n_customers: int,
    n_sales: int,
    extract_date: date,
    *,
    kind: DriftKind = "none",
    strength: float = 1.0,
    step: int = 1,
    horizon: int = 5,
) -> SourceTables:
    """A new production batch: new customers, their sales, and their (later known) labels.

    Drift raises the hidden risk (more late payments, more returns, more ``bad``), moves the
    channel mix towards ``partner`` and ``phone``, and raises amounts.

    Args:
        seed: The reference extract's seed; each batch derives its own from it and `step`.
        n_customers: New customers in the batch.
        n_sales: Sales of those customers.
        extract_date: The reference extract date; batch `step` is taken `step` weeks later.
        kind: The kind of drift (see :func:`drift_shift`).
        strength: The size of the full shift.
        step: The batch number, from 1.
        horizon: See :func:`drift_shift`.

    Returns:
        The batch's ``customers`` and ``sales`` tables; customer ids never collide with the
        reference extract's or another batch's.
    """
    rng = np.random.default_rng([seed, step, DRIFT_KINDS.index(kind)])
    shift = drift_shift(kind, strength, step=step, horizon=horizon, n_rows=n_customers, rng=rng)
    return _simulate(
        rng,
        n_customers,
        n_sales,
        extract_date + timedelta(weeks=step),
        shift=shift,
        first_id=1_000_000 * step + 1,
    )


def write_tables(tables: SourceTables, raw_dir: Path) -> dict[str, Path]:
    """Write the tables as CSV under `raw_dir`, byte-identical for identical tables.

    Returns:
        The path of each table's file, by table name.
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in (("customers", tables.customers), ("sales", tables.sales)):
        path = raw_dir / f"{name}.csv"
        # Written to a sibling file and moved into place: a reader never sees half a table.
        partial = path.with_suffix(".csv.partial")
        frame.to_csv(partial, index=False, lineterminator="\n", float_format="%.2f")
        partial.replace(path)
        paths[name] = path
        logger.info("Wrote %s rows to %s", f"{len(frame):,}", path)
    return paths


def _simulate(
    rng: np.random.Generator,
    n_customers: int,
    n_sales: int,
    extract_date: date,
    *,
    shift: np.ndarray,
    first_id: int,
) -> SourceTables:
    customer_ids = np.arange(first_id, first_id + n_customers, dtype=np.int64)
    tenure_days = rng.integers(30, 5 * 365, size=n_customers)
    signup = pd.Timestamp(extract_date) - pd.to_timedelta(tenure_days, unit="D")
    segment = rng.choice(SEGMENTS, size=n_customers, p=SEGMENT_WEIGHTS)
    country = rng.choice(COUNTRIES, size=n_customers, p=COUNTRY_WEIGHTS)
    age_band = rng.choice(AGE_BANDS, size=n_customers, p=AGE_BAND_WEIGHTS)
    channel_weights = np.array(CHANNEL_WEIGHTS)
    channel = np.array(
        [rng.choice(CHANNELS, p=_tilt(channel_weights, np.array([-1, -1, 1, 1]), s)) for s in shift]
    )

    segment_risk = np.vectorize(_SEGMENT_RISK.__getitem__)(segment)
    risk = rng.normal(0.0, 1.0, n_customers) + segment_risk + 1.5 * shift

    # Sales: active customers buy at their own rate; a few never bought anything.
    activity = rng.gamma(2.0, 1.0, n_customers) * (rng.random(n_customers) >= _INACTIVE_RATE)
    buyer = rng.choice(n_customers, size=n_sales, p=activity / activity.sum())
    sale_offset = (rng.random(n_sales) * tenure_days[buyer]).astype(np.int64)
    sale_date = pd.Timestamp(extract_date) - pd.to_timedelta(sale_offset, unit="D")
    late = rng.random(n_sales) < _LATE_ROW_RATE
    sale_date = sale_date.where(
        ~late, pd.Timestamp(extract_date) + pd.to_timedelta(rng.integers(1, 15, n_sales), unit="D")
    )
    buyer_risk = risk[buyer]
    amount = np.round(
        rng.lognormal(3.6, 0.8, n_sales)
        * np.where(segment[buyer] == "corporate", 3.0, 1.0)
        * (1 + 0.4 * shift[buyer]),
        2,
    )
    returned = rng.random(n_sales) < _sigmoid(-2.6 + 0.7 * buyer_risk)
    payment_delay = rng.poisson(np.exp(1.2 + 0.55 * buyer_risk)).astype(np.int64)
    sales = pd.DataFrame(
        {
            "sale_id": np.arange(1, n_sales + 1, dtype=np.int64) + (first_id - 1) * 10,
            "customer_id": customer_ids[buyer],
            "sale_date": sale_date.strftime("%Y-%m-%d"),
            "amount": amount,
            "product_category": rng.choice(PRODUCT_CATEGORIES, size=n_sales, p=CATEGORY_WEIGHTS),
            "returned": np.where(returned, "true", "false"),
            "payment_delay_days": payment_delay,
        }
    ).sort_values(["sale_date", "sale_id"], kind="stable", ignore_index=True)

    # The label: the hidden risk (seen through delays and returns), loyalty, and noise.
    logit = -1.2 + 1.6 * risk - 0.35 * (tenure_days / 365) + rng.normal(0.0, 0.6, n_customers)
    label = np.where(rng.random(n_customers) < _sigmoid(logit), "bad", "good")

    channel = channel.astype(object)
    channel[rng.random(n_customers) < _MISSING_CHANNEL_RATE] = None
    messy = rng.random(n_customers) < _MESSY_COUNTRY_RATE
    country = np.where(messy, np.char.add(" ", np.char.lower(country.astype(str))), country)
    customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "signup_date": signup.strftime("%Y-%m-%d"),
            "country": country,
            "segment": segment,
            "channel": channel,
            "age_band": age_band,
            "label": label,
        }
    )
    return SourceTables(customers=customers, sales=sales)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def _tilt(weights: np.ndarray, direction: np.ndarray, amount: float) -> np.ndarray:
    """Move probability mass along `direction` by `amount`, keeping a valid distribution."""
    tilted: np.ndarray = weights * np.exp(0.8 * amount * direction)
    normalised: np.ndarray = tilted / tilted.sum()
    return normalised
