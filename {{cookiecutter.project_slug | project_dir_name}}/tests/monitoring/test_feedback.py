"""The feedback loop's data side: labels arrive late, labelled batches fold into the raw data."""

import json

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.data.generate import SourceTables
from {{ cookiecutter.package_name }}.monitoring.feedback import (
    ProductionBatch,
    fold_labelled_batches,
    list_batches,
    release_labels,
    renumber,
)
from {{ cookiecutter.package_name }}.monitoring.performance import read_labels


def write_raw(folder, customers: pd.DataFrame, sales: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    customers.to_csv(folder / "customers.csv", index=False)
    sales.to_csv(folder / "sales.csv", index=False)


def tables(ids: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    customers = pd.DataFrame({"customer_id": ids, "label": ["good", "bad"] * (len(ids) // 2)})
    sales = pd.DataFrame({"sale_id": [i * 10 for i in ids], "customer_id": ids, "amount": 1.5})
    return customers, sales


def add_batch(settings, number: int, ids: list[int]) -> ProductionBatch:
    batch = ProductionBatch(
        batch_id=f"batch-{number:04d}-sudden-{number}",
        number=number,
        kind="sudden",
        step=number,
        strength=1.0,
        rows=len(ids),
    )
    write_raw(batch.folder(settings) / "raw", *tables(ids))
    batch.save(settings)
    return batch


def test_renumbering_gives_each_batch_its_own_ids() -> None:
    customers, sales = tables([7, 8])
    renumbered = renumber(SourceTables(customers=customers, sales=sales), 3)
    assert renumbered.customers["customer_id"].tolist() == [3_000_001, 3_000_002]
    assert renumbered.sales["customer_id"].tolist() == [3_000_001, 3_000_002]
    assert renumbered.sales["sale_id"].tolist() == [30_000_001, 30_000_002]


@pytest.mark.usefixtures("project")
def test_labels_arrive_late_and_only_labelled_batches_are_folded() -> None:
    settings = get_settings()
    write_raw(settings.raw_dir, *tables([1, 2]))
    add_batch(settings, 1, [1_000_001, 1_000_002])
    add_batch(settings, 2, [2_000_001, 2_000_002])

    assert fold_labelled_batches(settings) == []  # no label has arrived yet
    assert release_labels(settings, up_to=1) == ["batch-0001-sudden-1"]
    assert release_labels(settings, up_to=1) == []  # each delivery arrives once
    assert read_labels(settings.data_dir / "labels")["entity_id"].tolist() == [
        "1000001",
        "1000002",
    ]

    assert fold_labelled_batches(settings) == ["batch-0001-sudden-1"]
    raw = pd.read_csv(settings.raw_dir / "customers.csv")
    assert raw["customer_id"].tolist() == [1, 2, 1_000_001, 1_000_002]
    assert len(pd.read_csv(settings.raw_dir / "sales.csv")) == 4
    assert [batch.folded for batch in list_batches(settings)] == [True, False]
    assert fold_labelled_batches(settings) == []  # folded once only
    record = json.loads((list_batches(settings)[0].folder(settings) / "batch.json").read_text())
    assert record["labels_released"] is True
