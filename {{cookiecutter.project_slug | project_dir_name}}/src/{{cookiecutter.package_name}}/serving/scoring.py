"""The scoring routes: ``POST /predict`` and ``POST /invocations`` (MLflow's protocol).

The hot path is ``async def`` with no thread hop: read the body, check it against the served
version's contract, score with the verified fast path, queue the log rows, answer. Logging and
shadow scoring with the challenger happen later, in the log writer's thread.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..registry import ModelUnavailableError
from .deps import LogWriterDep, MetricsDep, ServingStateDep
from .errors import (
    ERROR_RESPONSES,
    JSON,
    REQUEST_ID_HEADER,
    ServiceError,
    checked,
    not_ready,
    request_id,
    too_large,
)
from .log_writer import LogJob, PredictionLogWriter
from .openapi import CSV, body_placeholder
from .records import parse_json
from .schema import FieldError, InputError, InvocationsResponse, PredictResponse
from .security import protection

if TYPE_CHECKING:
    import numpy as np

    from ..config import Settings
    from .loader import LoadedModel
    from .metrics import ServingMetrics
    from .state import ServingState

VERSION_HEADER = "X-Model-Version"


def scoring_router(settings: Settings) -> APIRouter:
    """The two scoring routes, behind the API key when one is set."""
    dependencies, unauthorized = protection(settings)
    router = APIRouter(tags=["model"], dependencies=dependencies)
    refusals = {status: ERROR_RESPONSES[status] for status in (400, 413, 415, 422, 503)}
    route: dict[str, Any] = {
        "responses": {**refusals, **unauthorized},
        "openapi_extra": {"requestBody": body_placeholder()},
    }
    max_batch, max_body = settings.serving_max_batch, settings.serving_max_body_bytes

    @router.post("/predict", response_model=PredictResponse, **route)
    async def predict(
        request: Request, state: ServingStateDep, log: LogWriterDep, metrics: MetricsDep
    ) -> Response:
        """Score one record (a JSON object) or a list of records with the champion.

        The record schema is the served version's contract (see ``GET /model``). The response
        names the version that answered (``model``); with a canary it may be the challenger.
        """
        started = time.perf_counter()
        rid = request_id(request)
        payload = _json_of(await _body(request, max_body))
        served = _route(state, rid)
        records = checked(lambda: served.validator.predict_body(payload, max_batch))
        labels, scores, probabilities = served.score(records)
        classes, id_column = served.classes, served.contract.id_column
        # Python floats in bulk (`tolist`): converting numpy scalars one by one costs more.
        predictions = [
            {
                "prediction": label,
                "score": score,
                "probabilities": dict(zip(classes, row, strict=True)),
                "id": record.get(id_column),
            }
            for label, score, row, record in zip(
                labels, scores.tolist(), probabilities.tolist(), records, strict=True
            )
        ]
        body = {
            "request_id": rid,
            "model": {"name": served.name, "version": served.version, "alias": served.alias},
            "predictions": predictions,
        }
        _after_scoring(state, log, metrics, served, records, labels, scores, rid, started)
        return _json_response(body, rid, served.version)

    @router.post("/invocations", response_model=InvocationsResponse, **route)
    async def invocations(
        request: Request, state: ServingStateDep, log: LogWriterDep, metrics: MetricsDep
    ) -> Response:
        """MLflow's scoring protocol, for clients of ``mlflow models serve``.

        Accepts JSON with ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``,
        or ``text/csv`` with a header row, and answers ``{"predictions": [labels]}``.
        """
        started = time.perf_counter()
        rid = request_id(request)
        body = await _body(request, max_body, (JSON, CSV))
        served = _route(state, rid)
        if _media_type(request) == CSV:
            records = checked(lambda: served.validator.csv_body(body, max_batch))
        else:
            payload = _json_of(body)
            records = checked(lambda: served.validator.invocations_body(payload, max_batch))
        labels, scores, _ = served.score(records)
        _after_scoring(state, log, metrics, served, records, labels, scores, rid, started)
        return _json_response({"predictions": labels}, rid, served.version)

    return router


def _after_scoring(  # noqa: PLR0917 (an internal helper of the two scoring routes)
    state: ServingState,
    log: PredictionLogWriter,
    metrics: ServingMetrics,
    served: LoadedModel,
    records: list[dict[str, Any]],
    labels: list[str],
    scores: np.ndarray,
    rid: str,
    started: float,
) -> None:
    """Count, queue the log rows and any shadow job: all O(records), none of it blocking."""
    metrics.count_predictions(served, labels)
    if not state.settings.prediction_log_enabled:
        return
    latency_ms = (time.perf_counter() - started) * 1000
    log.submit(served.log_rows(records, labels, scores.tolist(), rid, latency_ms))
    shadow = state.shadow_for(served)
    if shadow is not None:
        log.submit(
            LogJob(
                compute=lambda: _score_shadow(shadow, records, rid, metrics),
                size=len(records),
                description=f"Shadow scoring with v{shadow.version}",
            )
        )


def _score_shadow(
    model: LoadedModel, records: list[dict[str, Any]], rid: str, metrics: ServingMetrics
) -> list[dict[str, Any]]:
    """Score `records` with the challenger (in the log writer's thread) into log rows."""
    started = time.perf_counter()
    labels, scores, _ = model.score(records)
    for label in labels:
        metrics.shadow_predictions.labels(model.version, label).inc()
    latency_ms = (time.perf_counter() - started) * 1000
    return model.log_rows(records, labels, scores.tolist(), rid, latency_ms, shadow=True)


def _route(state: ServingState, rid: str) -> LoadedModel:
    try:
        return state.route(rid)
    except ModelUnavailableError as error:
        raise not_ready(str(error)) from None


def _media_type(request: Request) -> str:
    """The request's media type, without parameters (``application/json; charset=utf-8``)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def _body(request: Request, limit: int, accepted: tuple[str, ...] = (JSON,)) -> bytes:
    """The request's body; refuses a content type not `accepted` (415), or over `limit` (413)."""
    if _media_type(request) not in accepted:
        given = request.headers.get("content-type", "") or "none"
        raise ServiceError(
            415,
            "unsupported_media_type",
            [
                FieldError(
                    field="Content-Type",
                    message=f"expected {' or '.join(accepted)}, got {given}",
                    type="media_type",
                )
            ],
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body that did not declare its length
            raise too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_of(body: bytes) -> Any:  # noqa: ANN401 (any JSON value)
    """The JSON value of `body`; malformed JSON is a 400 naming the position."""
    try:
        return parse_json(body)
    except InputError as error:
        raise ServiceError(error.status, "malformed_json", error.errors) from None


def _json_response(body: dict[str, Any], rid: str, version: str) -> Response:
    # Serialised directly: the body is built from plain types, so FastAPI's response-model
    # round trip (validate, then encode) would only add time to every request.
    return Response(
        json.dumps(body, separators=(",", ":")),
        media_type=JSON,
        headers={REQUEST_ID_HEADER: rid, VERSION_HEADER: version},
    )
