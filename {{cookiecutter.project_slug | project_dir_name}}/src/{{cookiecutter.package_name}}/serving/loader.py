"""Load a model version for serving: from the registry by alias, or from a bundle folder.

A :class:`LoadedModel` is everything the service needs about one version: the predictor (the
verified numpy fast path, or the pipeline), the feature contract recorded with it (the request
schema is derived from it), and the lineage shown by ``GET /model``. Loading happens in a worker
thread; the result is swapped in whole, so a request never sees half a model.

A *bundle* (``make bundle``) is one model version written to a folder with its contract,
metadata and held-out verification rows, for images that carry their model instead of pulling it
from the registry at start (``SERVING_MODEL_URI=/path/to/bundle``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..contract import FeatureContract
from ..prediction_log import request_log_rows
from ..registry import CHAMPION, ModelUnavailableError, fetch_registered
from .predictor import Predictor, Record, Verification, build_predictor, probe_rows
from .records import RecordValidator

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

    from ..config import Settings

logger = logging.getLogger(__name__)

BUNDLE_FILE = "bundle.json"
BUNDLE_MODEL_DIR = "model"
BUNDLE_VERIFICATION_FILE = "verification.json"
# Held-out rows compared at load time: enough to cover the data, few enough to load in < 1 s.
MAX_VERIFICATION_ROWS = 1000


@dataclass(frozen=True)
class LoadedModel:
    """One model version, ready to answer."""

    name: str
    version: str
    alias: str
    run_id: str
    source: str
    data_version: str
    contract: FeatureContract
    predictor: Predictor
    verification: Verification
    validator: RecordValidator
    positive_class: str
    loaded_at: str
    load_seconds: float
    lineage: dict[str, str] = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        """The labels, in the order of the probability columns."""
        return self.predictor.classes

    def score(self, records: Sequence[Record]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Predicted labels, positive-class scores and all probabilities for `records`."""
        probabilities = self.predictor.predict_proba(records)
        labels = [self.classes[index] for index in probabilities.argmax(axis=1)]
        positive = self.classes.index(self.positive_class)
        return labels, probabilities[:, positive], probabilities

    def log_rows(
        self,
        records: Sequence[Record],
        labels: Sequence[str],
        scores: Sequence[float],
        request_id: str,
        latency_ms: float,
        *,
        shadow: bool = False,
    ) -> list[dict[str, Any]]:
        """The prediction log's rows for `records` this version scored in a request."""
        return request_log_rows(
            self.contract,
            records,
            labels,
            scores,
            model=(self.name, self.version, self.alias),
            request_id=request_id,
            source="api",
            latency_ms=latency_ms,
            shadow=shadow,
        )

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` shows about this version."""
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "source": self.source,
            "data_version": self.data_version,
            "positive_class": self.positive_class,
            "classes": list(self.classes),
            "loaded_at": self.loaded_at,
            "load_seconds": round(self.load_seconds, 3),
            "fast_path": self.verification.used_fast_path,
            "verification": self.verification.reason,
            "verified_paths": list(self.verification.paths),
            "lineage": self.lineage,
            "contract": self.contract.model_dump(mode="json"),
        }


def load_registered(settings: Settings, alias: str, version: str | None = None) -> LoadedModel:
    """Load `version` (default: the one `alias` points to) of the project's registered model.

    Raises:
        ModelUnavailableError: with the reason, when the registry, the alias or an artifact the
            service needs is missing.
    """
    started = time.perf_counter()
    fetched = fetch_registered(settings, alias, version)
    rows, source = _verification_rows(settings, fetched.pipeline, fetched.contract, fetched.run_id)
    return _assemble(
        name=fetched.name,
        version=fetched.version,
        alias=alias,
        run_id=fetched.run_id,
        source=fetched.source,
        tags=fetched.tags,
        contract=fetched.contract,
        pipeline=fetched.pipeline,
        positive_class=fetched.positive_class,
        verification=(rows, source),
        started=started,
    )


def load_bundle(folder: Path) -> LoadedModel:
    """Load the model version `make bundle` wrote to `folder`.

    Raises:
        ModelUnavailableError: when the folder is not a complete bundle.
    """
    from ..tracking import load_sklearn_model

    started = time.perf_counter()
    manifest_path = folder / BUNDLE_FILE
    if not manifest_path.is_file():
        raise ModelUnavailableError(f"{folder}: no {BUNDLE_FILE}; write one with `make bundle`")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    contract = FeatureContract.model_validate(manifest["contract"])
    try:
        pipeline = load_sklearn_model(str(folder / BUNDLE_MODEL_DIR))
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(f"{folder}: cannot load the model: {error}") from error
    rows: list[Record] = list(probe_rows(pipeline, contract))
    source = "probe rows"
    held_out = folder / BUNDLE_VERIFICATION_FILE
    if held_out.is_file():
        rows = [*json.loads(held_out.read_text(encoding="utf-8")), *rows]
        source = "held-out rows from the bundle and probe rows"
    return _assemble(
        name=manifest["name"],
        version=str(manifest["version"]),
        alias=manifest["alias"],
        run_id=manifest["run_id"],
        source=f"bundle:{folder}",
        tags=manifest.get("tags", {}),
        contract=contract,
        pipeline=pipeline,
        positive_class=manifest.get("positive_class", ""),
        verification=(rows, source),
        started=started,
    )


def export_bundle(settings: Settings, output: Path, alias: str = CHAMPION) -> dict[str, Any]:
    """Write the version `alias` points to, with everything serving needs, to `output`.

    Returns:
        The bundle's manifest.

    Raises:
        ModelUnavailableError: when there is no such version or the registry is unreachable.
    """
    import shutil

    import mlflow

    model = load_registered(settings, alias)  # connects: MLflow's URIs point at the registry
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(
        f"models:/{model.name}/{model.version}", dst_path=str(output / BUNDLE_MODEL_DIR)
    )
    manifest = {
        "name": model.name,
        "version": model.version,
        "alias": model.alias,
        "run_id": model.run_id,
        "positive_class": model.positive_class,
        "tags": model.lineage,
        "contract": model.contract.model_dump(mode="json"),
        "exported_at": _now(),
    }
    (output / BUNDLE_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    held_out, _ = _held_out_rows(settings, model.contract, model.run_id)
    (output / BUNDLE_VERIFICATION_FILE).write_text(json.dumps(held_out) + "\n", encoding="utf-8")
    logger.info("Bundled %s v%s into %s", model.name, model.version, output)
    return manifest


def frame_to_records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of `frame` as records of plain Python values, missing values as None."""
    records = frame[list(columns)].to_dict("records")
    return [
        {
            str(key): None if isinstance(value, float) and math.isnan(value) else _plain(value)
            for key, value in record.items()
        }
        for record in records
    ]


def _assemble(
    *,
    name: str,
    version: str,
    alias: str,
    run_id: str,
    source: str,
    tags: dict[str, str],
    contract: FeatureContract,
    pipeline: Any,  # noqa: ANN401 (a fitted sklearn Pipeline)
    positive_class: str,
    verification: tuple[list[Record], str],
    started: float,
) -> LoadedModel:
    from ..provenance import TAG_DATA_VERSION

    rows, rows_source = verification
    predictor, checked = build_predictor(pipeline, contract, rows, rows_source)
    classes = predictor.classes
    if positive_class not in classes:
        positive_class = classes[-1]
    model = LoadedModel(
        name=name,
        version=version,
        alias=alias,
        run_id=run_id,
        source=source,
        data_version=tags.get(TAG_DATA_VERSION, "unknown"),
        contract=contract,
        predictor=predictor,
        verification=checked,
        validator=RecordValidator(contract),
        positive_class=positive_class,
        loaded_at=_now(),
        load_seconds=time.perf_counter() - started,
        lineage={key: value for key, value in tags.items() if key.startswith("lineage.")},
    )
    logger.info(
        "Loaded %s v%s (%s) in %.2f s; %s",
        name,
        version,
        alias,
        model.load_seconds,
        checked.reason,
    )
    return model


def _verification_rows(
    settings: Settings,
    pipeline: Any,  # noqa: ANN401
    contract: FeatureContract,
    run_id: str,
) -> tuple[list[Record], str]:
    """Held-out rows of the training run when the warehouse is at hand, plus probe rows."""
    probes: list[Record] = list(probe_rows(pipeline, contract))
    held_out, where = _held_out_rows(settings, contract, run_id)
    if held_out:
        return [*held_out, *probes], f"{len(held_out)} {where} and {len(probes)} probe rows"
    return probes, f"{len(probes)} probe rows ({where})"


def _held_out_rows(
    settings: Settings, contract: FeatureContract, run_id: str
) -> tuple[list[dict[str, Any]], str]:
    """The training run's held-out rows from the feature table, or ``[]`` and why not."""
    from ..data.warehouse import load_feature_table
    from ..tracking import connect, run_artifact_text
    from ..training import TEST_IDS_ARTIFACT

    try:
        recorded = run_artifact_text(connect(settings, create=False), run_id, TEST_IDS_ARTIFACT)
        ids = json.loads(recorded)[contract.id_column]
        table = load_feature_table(settings, contract, rows="labelled")
    # The rows only strengthen the check; without them the probe rows still verify the fast
    # path, so any failure to read them (no warehouse in an image, a locked file...) is logged.
    except Exception as error:
        logger.info("No held-out rows to verify on: %s", error)
        return [], f"held-out rows unavailable: {type(error).__name__}"
    chosen = table[table[contract.id_column].isin(ids)].head(MAX_VERIFICATION_ROWS)
    return frame_to_records(chosen, contract.feature_columns), "held-out rows"


def _plain(value: Any) -> Any:  # noqa: ANN401
    """Plain Python values for numpy scalars (JSON and the fast path's lookups want them)."""
    return value.item() if isinstance(value, np.generic) else value


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")
