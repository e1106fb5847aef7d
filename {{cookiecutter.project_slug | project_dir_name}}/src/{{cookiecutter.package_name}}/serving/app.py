"""The prediction service: a FastAPI app serving ``models:/<name>@champion``.

Routes: ``POST /predict`` (one record or a list), ``POST /invocations`` (MLflow's scoring
protocol), ``GET /health`` (liveness), ``GET /ready`` (503 with the reason until a model is
loaded), ``GET /model`` (version, lineage, contract), ``GET /metrics`` (Prometheus),
``POST /admin/reload`` (check the registry now), ``GET /docs`` and ``GET /redoc`` (served from
the ``fastapi-offline`` package's assets: no CDN), ``GET /openapi.json``.

The hot path is ``async def`` with no thread hop: parse, validate against the served version's
contract, score with the verified fast path, queue the log rows, answer. Everything else (the
prediction log, shadow scoring, model loading) runs in background threads or tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from importlib.resources import files
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import ConfigError, Settings, get_settings
from .loader import LoadedModel, ModelUnavailableError
from .metrics import MetricsMiddleware, ServingMetrics
from .predlog import PredictionLog, ShadowJob, log_rows
from .runtime import ServingState
from .schema import (
    ErrorResponse,
    FieldError,
    InputError,
    InvocationsResponse,
    PredictResponse,
    parse_json,
)

if TYPE_CHECKING:
    from .predictor import Record

logger = logging.getLogger(__name__)

JSON = "application/json"
CSV = "text/csv"
CSV_DESCRIPTION = "A header row of feature names, then one record per line (MLflow's CSV input)."
REQUEST_ID_HEADER = "X-Request-ID"
VERSION_HEADER = "X-Model-Version"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed JSON",
        401: "Missing or wrong X-API-Key",
        413: "Body or batch too large",
        415: "Content-Type is not application/json (nor text/csv on /invocations)",
        422: "A record does not follow the model's contract",
        503: "No model loaded yet",
    }.items()
}


class Health(BaseModel):
    """Liveness: the process answers."""

    status: str
    version: str


class Readiness(BaseModel):
    """Readiness: a model is loaded (and which), or why not."""

    ready: bool
    reason: str
    model: str | None = None
    version: str | None = None


class ReloadResponse(BaseModel):
    """What ``POST /admin/reload`` found."""

    champion: str | None
    challenger: str | None
    changed: list[str]
    error: str | None = None


class ServedModels(BaseModel):
    """``GET /model``: the versions being served, their lineage and contract, the rollout."""

    champion: dict[str, Any] | None
    challenger: dict[str, Any] | None
    shadow: bool
    canary_fraction: float
    poll_seconds: float
    last_error: str | None


class ServiceError(Exception):
    """A refusal with an HTTP status, answered as an :class:`ErrorResponse`."""

    def __init__(self, status: int, code: str, errors: list[FieldError]) -> None:
        self.status = status
        self.code = code
        self.errors = errors
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))


def create_app(  # noqa: PLR0915 (one factory declares every route: the API reads top to bottom)
    settings: Settings | None = None,
    state: ServingState | None = None,
    prediction_log: PredictionLog | None = None,
) -> FastAPI:
    """Build the service.

    Args:
        settings: Where the registry is and how to serve; read from the environment if not given.
        state: A pre-built serving state (tests load a model before building the app).
        prediction_log: Where predictions go; built from the settings if not given.

    Returns:
        The FastAPI app; its lifespan starts the model loader and the prediction log writer.

    Raises:
        ConfigError: outside ``local`` without an ``API_KEY``.
    """
    settings = settings or get_settings()
    if settings.environment != "local" and not settings.api_key.get_secret_value():
        raise ConfigError(
            f"API_KEY is required when ENVIRONMENT={settings.environment}: set it to a secret"
        )
    metrics = ServingMetrics()
    state = state or ServingState(settings)
    state.metrics = metrics
    state.publish_metrics()
    log = prediction_log or PredictionLog(
        settings.prediction_log_dir,
        on_drop=metrics.log_dropped.inc,
        shadow_scorer=lambda job: _score_shadow(job, metrics),
        on_shadow_error=metrics.shadow_errors.inc,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.prediction_log_enabled:
            log.start()
        loader = asyncio.create_task(state.keep_loaded(), name="model-loader")
        # Workers share one listening socket, so a load balancer's /ready reaches one of them
        # only: each worker waits for its own model before it accepts a connection.
        await state.wait_until_ready(settings.serving_startup_wait_seconds)
        try:
            yield
        finally:
            loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
            log.stop()

    app = FastAPI(
        title="Prediction service",
        version=__version__,
        summary="Scores records with the champion model; the request schema follows its contract.",
        lifespan=lifespan,
        docs_url=None,  # served below from packaged assets, not a CDN
        redoc_url=None,
    )
    app.state.serving = state
    app.state.prediction_log = log
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_error_handlers(app)
    _add_docs(app)
    # The key check exists (and the OpenAPI document declares it) only when a key is set:
    # `local` may run without one, and the document must not demand a header nobody checks.
    keyed = bool(settings.api_key.get_secret_value())
    protected = [Depends(_ApiKeyCheck(settings))] if keyed else []
    unauthorized: dict[int | str, dict[str, Any]] = {401: _ERRORS[401]} if keyed else {}
    # What /predict and /invocations share: their refusals, the key check, the body's schema.
    scoring_route: dict[str, Any] = {
        "responses": {
            **{status: _ERRORS[status] for status in (400, 413, 415, 422, 503)},
            **unauthorized,
        },
        "dependencies": protected,
        "tags": ["model"],
        "openapi_extra": {"requestBody": _body_placeholder()},
    }
    max_batch = settings.serving_max_batch

    @app.get("/health", response_model=Health, tags=["operations"])
    async def health() -> Health:
        """Liveness: 200 whenever the process answers (a model need not be loaded)."""
        return Health(status="ok", version=__version__)

    @app.get(
        "/ready",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready; `reason` says why"}},
        tags=["operations"],
    )
    async def ready() -> Response:
        """Readiness: 200 once a champion is loaded; 503 with the reason until then."""
        champion = state.champion
        if champion is None:
            body = Readiness(ready=False, reason=state.reason)
            return Response(body.model_dump_json(), status_code=503, media_type=JSON)
        body = Readiness(ready=True, reason="ready", model=champion.name, version=champion.version)
        return Response(body.model_dump_json(), media_type=JSON)

    @app.get(
        "/model",
        response_model=ServedModels,
        responses={**unauthorized, 503: _ERRORS[503]},
        dependencies=protected,
        tags=["model"],
    )
    async def model() -> ServedModels:
        """The versions being served: name, version, run, data version, lineage, contract."""
        if state.champion is None:
            raise _not_ready(state.reason)
        return ServedModels(**state.describe())

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}},
        tags=["operations"],
    )
    async def metrics_endpoint() -> Response:
        """Prometheus metrics: requests, latency, errors, in-flight, predictions, model info."""
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.post(
        "/predict",
        response_model=PredictResponse,
        **scoring_route,
    )
    async def predict(request: Request) -> Response:
        """Score one record (a JSON object) or a list of records with the champion.

        The record schema is the served version's contract (see ``GET /model``). The response
        names the version that answered (``model``); with a canary it may be the challenger.
        """
        started = time.perf_counter()
        request_id = _request_id(request)
        payload = _json_of(await _body(request, settings.serving_max_body_bytes))
        served = _route(state, request_id)
        records = _checked(lambda: served.validator.predict_body(payload, max_batch))
        labels, scores, probabilities = served.score(records)
        classes = served.classes
        id_column = served.contract.id_column
        predictions = [
            {
                "prediction": label,
                "score": float(score),
                "probabilities": dict(zip(classes, map(float, row), strict=True)),
                "id": record.get(id_column),
            }
            for label, score, row, record in zip(
                labels, scores, probabilities, records, strict=True
            )
        ]
        body = {
            "request_id": request_id,
            "model": {"name": served.name, "version": served.version, "alias": served.alias},
            "predictions": predictions,
        }
        _after_scoring(state, log, metrics, served, records, labels, scores, request_id, started)
        return _json_response(body, request_id, served.version)

    @app.post(
        "/invocations",
        response_model=InvocationsResponse,
        **scoring_route,
    )
    async def invocations(request: Request) -> Response:
        """MLflow's scoring protocol, for clients of ``mlflow models serve``.

        Accepts JSON with ``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``,
        or ``text/csv`` with a header row, and answers ``{"predictions": [labels]}``.
        """
        started = time.perf_counter()
        request_id = _request_id(request)
        body = await _body(request, settings.serving_max_body_bytes, (JSON, CSV))
        served = _route(state, request_id)
        if _media_type(request) == CSV:
            records = _checked(lambda: served.validator.csv_body(body, max_batch))
        else:
            payload = _json_of(body)
            records = _checked(lambda: served.validator.invocations_body(payload, max_batch))
        labels, scores, _ = served.score(records)
        _after_scoring(state, log, metrics, served, records, labels, scores, request_id, started)
        return _json_response({"predictions": labels}, request_id, served.version)

    @app.post(
        "/admin/reload",
        response_model=ReloadResponse,
        responses={**unauthorized, 503: {"model": ReloadResponse, "description": "Failed"}},
        dependencies=protected,
        tags=["operations"],
    )
    async def reload() -> Response:
        """Check the registry now; load the version `champion` (and `challenger`) points to."""
        outcome = await state.reload()
        app.openapi_schema = None  # the request schema follows the (maybe new) contract
        body = ReloadResponse(**outcome.__dict__)
        status = 503 if outcome.error and state.uses_registry else 200
        return Response(body.model_dump_json(), status_code=status, media_type=JSON)

    def contract_openapi() -> dict[str, Any]:
        """The OpenAPI document, with the request schemas of the version being served now."""
        champion = state.champion
        version = champion.version if champion else None
        cached = app.openapi_schema
        if cached is not None and cached.get("x-model-version") == version:
            return cached
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=app.routes,
        )
        if champion is not None:
            validator = champion.validator
            document["paths"]["/predict"]["post"]["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": validator.body_schema(max_batch)}},
            }
            document["paths"]["/invocations"]["post"]["requestBody"] = {
                "required": True,
                "content": {
                    JSON: {"schema": validator.invocations_schema(max_batch)},
                    CSV: {"schema": {"type": "string", "description": CSV_DESCRIPTION}},
                },
            }
        document["x-model-version"] = version
        app.openapi_schema = document
        return document

    app.openapi = contract_openapi  # type: ignore[method-assign]
    return app


def _after_scoring(  # noqa: PLR0917 (an internal helper of the two scoring routes)
    state: ServingState,
    log: PredictionLog,
    metrics: ServingMetrics,
    served: LoadedModel,
    records: list[dict[str, Any]],
    labels: list[str],
    scores: np.ndarray,
    request_id: str,
    started: float,
) -> None:
    """Count, queue the log rows and any shadow job: all O(records), none of it blocking."""
    metrics.count_predictions(served, labels)
    if not state.settings.prediction_log_enabled:
        return
    latency_ms = (time.perf_counter() - started) * 1000
    log.submit(
        log_rows(
            served,
            records,
            labels,
            scores.tolist(),
            request_id=request_id,
            source="api",
            latency_ms=latency_ms,
        )
    )
    shadow = state.shadow_for(served)
    if shadow is not None:
        log.submit(ShadowJob(shadow, request_id, records, "api"))


def _score_shadow(job: ShadowJob, metrics: ServingMetrics) -> list[dict[str, Any]]:
    """Score a shadow job with the challenger (in the log's thread) into log rows."""
    started = time.perf_counter()
    records: list[Record] = list(job.records)
    labels, scores, _ = job.model.score(records)
    for label in labels:
        metrics.shadow_predictions.labels(job.model.version, label).inc()
    return log_rows(
        job.model,
        records,
        labels,
        scores.tolist(),
        request_id=job.request_id,
        source=job.source,
        latency_ms=(time.perf_counter() - started) * 1000,
        shadow=True,
    )


def _route(state: ServingState, request_id: str) -> LoadedModel:
    try:
        return state.route(request_id)
    except ModelUnavailableError as error:
        raise _not_ready(str(error)) from None


def _checked(validate: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    try:
        return validate()
    except InputError as error:
        code = "payload_too_large" if error.status == 413 else "invalid_input"  # noqa: PLR2004
        raise ServiceError(error.status, code, error.errors) from None


def _not_ready(reason: str) -> ServiceError:
    return ServiceError(
        503, "not_ready", [FieldError(field="model", message=reason, type="not_ready")]
    )


def _request_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


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
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body that did not declare its length
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_of(body: bytes) -> Any:  # noqa: ANN401 (any JSON value)
    """The JSON value of `body`; malformed JSON is a 400 naming the position."""
    try:
        return parse_json(body)
    except InputError as error:
        raise ServiceError(error.status, "malformed_json", error.errors) from None


def _too_large(size: int, limit: int) -> ServiceError:
    return ServiceError(
        413,
        "payload_too_large",
        [
            FieldError(
                field="body",
                message=f"{size} bytes exceed the limit of {limit} (SERVING_MAX_BODY_BYTES)",
                type="too_large",
            )
        ],
    )


def _json_response(body: dict[str, Any], request_id: str, version: str) -> Response:
    # Serialised directly: the body is built from plain types, so FastAPI's response-model
    # round trip (validate, then encode) would only add time to every request.
    return Response(
        json.dumps(body, separators=(",", ":")),
        media_type=JSON,
        headers={REQUEST_ID_HEADER: request_id, VERSION_HEADER: version},
    )


def _error_response(status: int, code: str, errors: list[FieldError], request: Request) -> Response:
    request_id = _request_id(request)
    body = ErrorResponse(
        error=code,
        message="; ".join(f"{error.field}: {error.message}" for error in errors),
        errors=errors,
        request_id=request_id,
    )
    return Response(
        body.model_dump_json(),
        status_code=status,
        media_type=JSON,
        headers={REQUEST_ID_HEADER: request_id},
    )


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal, including FastAPI's own, in the :class:`ErrorResponse` shape."""

    async def service_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ServiceError)  # noqa: S101 (registered for this type only)
        return _error_response(error.status, error.code, error.errors, request)

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)  # noqa: S101
        errors = [
            FieldError(
                field=".".join(str(part) for part in issue["loc"]),
                message=str(issue["msg"]),
                type=str(issue["type"]),
            )
            for issue in error.errors()
        ]
        return _error_response(422, "invalid_input", errors, request)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)  # noqa: S101
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            error.status_code, "http_error"
        )
        errors = [FieldError(field="request", message=str(error.detail), type=code)]
        response = _error_response(error.status_code, code, errors, request)
        response.headers.update(error.headers or {})
        return response

    async def unexpected_error(request: Request, error: Exception) -> Response:
        logger.exception("Unhandled error in %s %s", request.method, request.url.path)
        errors = [FieldError(field="server", message=type(error).__name__, type="internal")]
        return _error_response(500, "internal_error", errors, request)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)


_API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The service's API_KEY setting"
)


class _ApiKeyCheck:
    """Check ``X-API-Key`` against ``API_KEY`` in constant time (used only when a key is set)."""

    def __init__(self, settings: Settings) -> None:
        self.expected = settings.api_key.get_secret_value().encode("utf-8")

    async def __call__(self, given: Annotated[str | None, Depends(_API_KEY_HEADER)]) -> None:
        if given is None or not hmac.compare_digest(given.encode("utf-8"), self.expected):
            raise StarletteHTTPException(401, "missing or wrong X-API-Key header")


def _add_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc from the assets the fastapi-offline package ships (no CDN)."""
    assets = str(files("fastapi_offline") / "static")
    app.mount("/docs/static", StaticFiles(directory=assets), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: docs",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: reference",
            redoc_js_url="/docs/static/redoc.standalone.js",
            redoc_favicon_url="/docs/static/favicon.png",
            with_google_fonts=False,
        )


def _body_placeholder() -> dict[str, Any]:
    """The request body before a model is loaded (the loaded contract replaces it)."""
    return {"required": True, "content": {JSON: {"schema": {"type": ["object", "array"]}}}}
