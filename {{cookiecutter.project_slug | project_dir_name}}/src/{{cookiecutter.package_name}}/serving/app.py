"""The prediction service: a FastAPI app serving ``models:/<name>@champion``.

Routes (:mod:`.scoring`, :mod:`.operations`): ``POST /predict`` (one record or a list),
``POST /invocations`` (MLflow's scoring protocol), ``GET /health`` (liveness), ``GET /ready`` (503
with the reason until a model is loaded), ``GET /model`` (version, lineage, contract),
``GET /metrics`` (Prometheus), ``POST /admin/reload`` (check the registry now), ``GET /docs`` and
``GET /redoc`` (offline assets), ``GET /openapi.json`` (the served contract, :mod:`.openapi`).
:func:`create_app` only assembles them with the serving state, the prediction log writer, the
metrics and the handlers that answer every refusal (:mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..config import ConfigError, Settings, get_settings
from ..tracking import require_a_shared_store
from .errors import add_error_handlers
from .log_writer import PredictionLogWriter
from .metrics import MetricsMiddleware, ServingMetrics
from .openapi import serve_contract_openapi
from .operations import operations_router
from .scoring import scoring_router
from .state import ServingState


def create_app(
    settings: Settings | None = None,
    state: ServingState | None = None,
    prediction_log: PredictionLogWriter | None = None,
) -> FastAPI:
    """Build the service.

    Args:
        settings: Where the registry is and how to serve; read from the environment if not given.
        state: A pre-built serving state (tests load a model before building the app).
        prediction_log: Where predictions go; built from the settings if not given.

    Returns:
        The FastAPI app; its lifespan starts the model loader and the prediction log writer.

    Raises:
        ConfigError: outside ``local`` without an ``API_KEY``, or with neither a tracking server
            nor a bundle to serve.
    """
    settings = settings or get_settings()
    if settings.environment != "local" and not settings.api_key.get_secret_value():
        raise ConfigError(
            f"API_KEY is required when ENVIRONMENT={settings.environment}: set it to a secret"
        )
    if not settings.serving_model_uri:
        require_a_shared_store(settings, otherwise=", or serve a bundle (SERVING_MODEL_URI)")
    metrics = ServingMetrics()
    state = state or ServingState(settings)
    state.metrics = metrics
    state.publish_metrics()
    log = prediction_log or PredictionLogWriter(
        settings.prediction_log_dir,
        on_drop=metrics.log_dropped.inc,
        on_job_error=metrics.shadow_errors.inc,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.prediction_log_enabled:
            log.start()
        loader = asyncio.create_task(state.keep_loaded(), name="model-loader")
        # Workers share one listening socket, so a load balancer's /ready reaches one of them
        # only: each worker waits for its first load attempt before it accepts a connection.
        await state.wait_until_ready(settings.serving_startup_wait_seconds)
        try:
            yield
        finally:
            loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
            log.stop()

    # Swagger UI and ReDoc from the assets the fastapi-offline package ships: no CDN.
    app = FastAPIOffline(
        title="Prediction service",
        version=__version__,
        summary="Scores records with the champion model; the request schema follows its contract.",
        lifespan=lifespan,
        static_url="/docs/static",
    )
    app.state.serving = state
    app.state.prediction_log = log
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_error_handlers(app)
    app.include_router(operations_router(settings))
    app.include_router(scoring_router(settings))
    serve_contract_openapi(app, state, settings.serving_max_batch)
    return app
