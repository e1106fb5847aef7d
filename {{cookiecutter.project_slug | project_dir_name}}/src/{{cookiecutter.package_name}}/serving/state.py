"""Which model versions the service holds, how they are (re)loaded, and who answers a request.

:class:`ServingState` starts empty. A background task loads the champion; each worker waits for
that first attempt (at most ``SERVING_STARTUP_WAIT_SECONDS``) before accepting connections, so with
several workers none answers before its model is in. When the first attempt fails (no registry, no
champion yet), the worker starts at once: ``/health`` answers, ``/ready`` says 503 with the
reason, and the task retries every ``SERVING_RETRY_SECONDS``. Once loaded, it checks every
``SERVING_POLL_SECONDS`` whether the ``champion`` (or ``challenger``) alias moved, and loads the new
version without a restart; ``POST /admin/reload`` does the same check at once. A failed reload keeps
the version being served.

Rollout: with ``SERVING_SHADOW`` the challenger also scores every request the champion answers,
in the prediction log writer's thread (so only with ``PREDICTION_LOG_ENABLED``), and its answers go
to the log only. With ``SERVING_CANARY_FRACTION`` a share of
requests (chosen by a hash of the request id, so a retried id goes to the same version) is
answered by the challenger; every response names the version that answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..registry import CHALLENGER, CHAMPION, ModelUnavailableError, alias_version
from .loader import LoadedModel, load_bundle, load_registered

if TYPE_CHECKING:
    from ..config import Settings
    from .metrics import ServingMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadOutcome:
    """What one registry check found and did, per alias."""

    champion: str | None
    challenger: str | None
    changed: list[str]
    error: str | None = None


class ServingState:
    """The champion (and optionally the challenger) being served, and their loading."""

    def __init__(self, settings: Settings, metrics: ServingMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self._champion: LoadedModel | None = None
        # Set by the first champion (whoever installs it) or by a failed first load attempt.
        self._settled = asyncio.Event()
        self.challenger: LoadedModel | None = None
        self.reason = "loading the model"
        self.last_error: str | None = None
        self._lock = asyncio.Lock()

    @property
    def champion(self) -> LoadedModel | None:
        """The version answering requests; None until the first load."""
        return self._champion

    @champion.setter
    def champion(self, model: LoadedModel | None) -> None:
        self._champion = model
        if model is not None:
            self._settled.set()

    @property
    def ready(self) -> bool:
        """True once a champion is loaded."""
        return self.champion is not None

    @property
    def uses_registry(self) -> bool:
        """False when serving a bundle folder (nothing to poll or reload)."""
        return not self.settings.serving_model_uri

    @property
    def wants_challenger(self) -> bool:
        """Shadow or canary needs the challenger loaded too."""
        return self.uses_registry and (
            self.settings.serving_shadow or self.settings.serving_canary_fraction > 0
        )

    def route(self, request_id: str) -> LoadedModel:
        """The version that answers `request_id`: the champion, or the challenger for a canary.

        Raises:
            ModelUnavailableError: before a champion is loaded.
        """
        champion, challenger = self.champion, self.challenger
        if champion is None:
            raise ModelUnavailableError(self.reason)
        fraction = self.settings.serving_canary_fraction
        if challenger is not None and fraction > 0 and _share(request_id) < fraction:
            return challenger
        return champion

    def shadow_for(self, answered_by: LoadedModel) -> LoadedModel | None:
        """The challenger to score in the shadow of `answered_by`, if shadow mode is on."""
        challenger = self.challenger
        if (
            self.settings.serving_shadow
            and challenger is not None
            and answered_by is not challenger
            and challenger.version != answered_by.version
        ):
            return challenger
        return None

    async def wait_until_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the first load attempt; True if a champion is in."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)
        if not self.ready:
            logger.warning("No model yet; answering 503 until it loads: %s", self.reason)
        return self.ready

    async def keep_loaded(self) -> None:
        """The background task: load until it works, then poll for moved aliases (forever)."""
        while self.champion is None:
            try:
                await self._load_first()
            # Whatever failed (registry down, artifact missing, a broken model), the service
            # stays up, says why on /ready, and tries again.
            except Exception as error:
                self.reason = f"model not loaded: {error}"
                self._settled.set()  # nothing to wait for: the worker starts and says why
                logger.warning(
                    "%s; retrying in %.0f s", self.reason, self.settings.serving_retry_seconds
                )
                await asyncio.sleep(self.settings.serving_retry_seconds)
        _one_native_thread_here()
        interval = self.settings.serving_poll_seconds
        if not self.uses_registry or interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            outcome = await self.reload()
            if outcome.error:
                logger.warning("Registry check failed, still serving: %s", outcome.error)

    async def reload(self) -> ReloadOutcome:
        """Check the aliases now and load any version that changed (``POST /admin/reload``)."""
        if not self.uses_registry:
            version = self.champion.version if self.champion else None
            return ReloadOutcome(version, None, [], "serving a bundle: nothing to reload")
        async with self._lock:
            changed: list[str] = []
            try:
                champion = await asyncio.to_thread(alias_version, self.settings, CHAMPION)
                # An alias removed by hand keeps the loaded champion (never serve nothing).
                if champion is not None and (
                    self.champion is None or self.champion.version != champion
                ):
                    await self._swap(CHAMPION, champion)
                    changed.append(CHAMPION)
                challenger = None
                if self.wants_challenger:
                    challenger = await asyncio.to_thread(alias_version, self.settings, CHALLENGER)
                    current = self.challenger.version if self.challenger else None
                    if challenger != current:
                        await self._swap(CHALLENGER, challenger)
                        changed.append(CHALLENGER)
            # A failed check or load keeps the current versions serving; the error is reported.
            except Exception as error:
                self.last_error = str(error)
                self._count(CHAMPION, "failed")
                return ReloadOutcome(
                    self.champion.version if self.champion else None,
                    self.challenger.version if self.challenger else None,
                    changed,
                    str(error),
                )
            self.last_error = None
            return ReloadOutcome(champion, challenger, changed)

    def describe(self) -> dict[str, Any]:
        """The serving configuration and versions, for ``GET /model``."""
        return {
            "champion": self.champion.describe() if self.champion else None,
            "challenger": self.challenger.describe() if self.challenger else None,
            "shadow": self.settings.serving_shadow,
            "canary_fraction": self.settings.serving_canary_fraction,
            "poll_seconds": self.settings.serving_poll_seconds if self.uses_registry else 0,
            "last_error": self.last_error,
        }

    async def _load_first(self) -> None:
        if not self.uses_registry:
            self._install(CHAMPION, await asyncio.to_thread(self._load_bundle))
            return
        async with self._lock:
            model = await asyncio.to_thread(load_registered, self.settings, CHAMPION)
            self._install(CHAMPION, model)
            if self.wants_challenger:
                version = await asyncio.to_thread(alias_version, self.settings, CHALLENGER)
                if version is not None:
                    await self._swap(CHALLENGER, version)

    async def _swap(self, alias: str, version: str | None) -> None:
        """Load `version` for `alias` (None: drop it) and swap it in whole."""
        if version is None:
            self._install(alias, None)
            return
        if alias == CHALLENGER and self.champion and self.champion.version == version:
            # The challenger was just promoted: it is the champion now; nothing to shadow.
            self._install(alias, None)
            return
        try:
            model = await asyncio.to_thread(load_registered, self.settings, alias, version)
        except ModelUnavailableError:
            self._count(alias, "failed")
            raise
        self._install(alias, model)
        self._count(alias, "loaded")

    def _install(self, alias: str, model: LoadedModel | None) -> None:
        if alias == CHAMPION:
            if model is not None:
                self.champion = model
                self.reason = "ready"
        else:
            self.challenger = model
        self.publish_metrics()
        if model is not None:
            logger.info("Serving %s v%s as %s", model.name, model.version, alias)

    def publish_metrics(self) -> None:
        """Show the loaded versions in ``model_info`` and ``model_ready``."""
        if self.metrics is not None:
            self.metrics.ready.set(1 if self.champion else 0)
            self.metrics.set_models([m for m in (self.champion, self.challenger) if m])

    def _load_bundle(self) -> LoadedModel:
        return load_bundle(Path(self.settings.serving_model_uri))

    def _count(self, alias: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.reloads.labels(alias, outcome).inc()


def _share(request_id: str) -> float:
    """A stable number in [0, 1) for `request_id` (the canary's coin, repeatable per id)."""
    digest = hashlib.blake2b(request_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _one_native_thread_here() -> None:
    """Limit OpenMP/BLAS to one thread in the event loop's thread, where requests are scored.

    ``OMP_NUM_THREADS=1`` (set by the server before any import) covers a normal start; this
    covers an app embedded elsewhere (tests, another server), now that the libraries are loaded.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
