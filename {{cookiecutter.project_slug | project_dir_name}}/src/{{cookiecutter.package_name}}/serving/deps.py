"""What routes get injected: the serving state, the prediction log writer and the metrics.

Each is built once by ``create_app`` and kept on ``app.state``; the aliases below hand them to a
route as typed parameters. The functions are ``async`` so that FastAPI resolves them in the
event loop, without a thread hop per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .log_writer import PredictionLogWriter
from .metrics import ServingMetrics
from .state import ServingState


async def _serving_state(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    return state


async def _log_writer(request: Request) -> PredictionLogWriter:
    writer: PredictionLogWriter = request.app.state.prediction_log
    return writer


async def _metrics(request: Request) -> ServingMetrics:
    metrics: ServingMetrics = request.app.state.metrics
    return metrics


ServingStateDep = Annotated[ServingState, Depends(_serving_state)]
LogWriterDep = Annotated[PredictionLogWriter, Depends(_log_writer)]
MetricsDep = Annotated[ServingMetrics, Depends(_metrics)]
