"""The operations routes: liveness, readiness, the served versions, metrics and reload."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import __version__
from .deps import MetricsDep, ServingStateDep
from .errors import ERROR_RESPONSES, JSON, not_ready
from .schema import Health, Readiness, ReloadResponse, ServedModels
from .security import protection

if TYPE_CHECKING:
    from ..config import Settings


def operations_router(settings: Settings) -> APIRouter:
    """``/health``, ``/ready`` and ``/metrics`` are open; ``/model`` and reload need the key."""
    dependencies, unauthorized = protection(settings)
    router = APIRouter()

    @router.get("/health", response_model=Health, tags=["operations"])
    async def health() -> Health:
        """Liveness: 200 whenever the process answers (a model need not be loaded)."""
        return Health(status="ok", version=__version__)

    @router.get(
        "/ready",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready; `reason` says why"}},
        tags=["operations"],
    )
    async def ready(state: ServingStateDep) -> Response:
        """Readiness: 200 once a champion is loaded; 503 with the reason until then."""
        champion = state.champion
        if champion is None:
            body = Readiness(ready=False, reason=state.reason)
            return Response(body.model_dump_json(), status_code=503, media_type=JSON)
        body = Readiness(ready=True, reason="ready", model=champion.name, version=champion.version)
        return Response(body.model_dump_json(), media_type=JSON)

    @router.get(
        "/model",
        response_model=ServedModels,
        responses={**unauthorized, 503: ERROR_RESPONSES[503]},
        dependencies=dependencies,
        tags=["model"],
    )
    async def model(state: ServingStateDep) -> ServedModels:
        """The versions being served: name, version, run, data version, lineage, contract."""
        if state.champion is None:
            raise not_ready(state.reason)
        return ServedModels(**state.describe())

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}},
        tags=["operations"],
    )
    async def metrics_endpoint(metrics: MetricsDep) -> Response:
        """Prometheus metrics: requests, latency, errors, in-flight, predictions, model info."""
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @router.post(
        "/admin/reload",
        response_model=ReloadResponse,
        responses={**unauthorized, 503: {"model": ReloadResponse, "description": "Failed"}},
        dependencies=dependencies,
        tags=["operations"],
    )
    async def reload(request: Request, state: ServingStateDep) -> Response:
        """Check the registry now; load the version `champion` (and `challenger`) points to."""
        outcome = await state.reload()
        request.app.openapi_schema = None  # the request schema follows the (maybe new) contract
        body = ReloadResponse(**outcome.__dict__)
        status = 503 if outcome.error and state.uses_registry else 200
        return Response(body.model_dump_json(), status_code=status, media_type=JSON)

    return router
