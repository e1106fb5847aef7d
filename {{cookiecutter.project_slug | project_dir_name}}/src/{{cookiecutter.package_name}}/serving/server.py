"""Run the service with uvicorn (`make serve`, ``python -m <package> serve``).

Two traps are handled here rather than left to the deployment:

* **Native threads.** ``OMP_NUM_THREADS=1`` is set before numpy or scikit-learn load: tree models
  start OpenMP threads on every predict, and under concurrent requests they fight the event loop.
* **TCP_NODELAY with several workers.** ``uvicorn --workers N`` binds the socket in the parent;
  the accepted connections then lack ``TCP_NODELAY`` (asyncio only sets it on sockets it created
  with ``IPPROTO_TCP``), and every keep-alive response waits about 40 ms for a delayed ACK.
  :class:`NoDelayHttpToolsProtocol` sets it on every connection, whatever the worker count.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    import asyncio

    from fastapi import FastAPI

    from ..config import Settings

logger = logging.getLogger(__name__)

NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with ``TCP_NODELAY`` set on each accepted connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Set ``TCP_NODELAY``, then let uvicorn handle the connection."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in {socket.AF_INET, socket.AF_INET6}:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def single_native_thread() -> None:
    """One OpenMP/BLAS thread per process, unless the caller chose otherwise (before imports)."""
    for name in NATIVE_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def app_factory() -> FastAPI:
    """What each uvicorn worker calls: configure logging, then build the app from the settings."""
    from ..config import disable_telemetry, get_settings
    from ..logs import configure_logging
    from .app import create_app

    single_native_thread()
    disable_telemetry()
    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def serve(settings: Settings, *, access_log: bool = False) -> None:
    """Serve on ``SERVING_HOST:PORT`` with ``SERVING_WORKERS`` processes until interrupted."""
    single_native_thread()
    import uvicorn

    logger.info(
        "Serving on http://%s:%d with %d worker(s)",
        settings.serving_host,
        settings.port,
        settings.serving_workers,
    )
    uvicorn.run(
        f"{__name__}:app_factory",
        factory=True,
        host=settings.serving_host,
        port=settings.port,
        workers=settings.serving_workers,
        http=f"{__name__}:NoDelayHttpToolsProtocol",
        access_log=access_log,
        log_config=None,  # the project's logging (configured by the CLI and app_factory)
        timeout_graceful_shutdown=10,
    )
