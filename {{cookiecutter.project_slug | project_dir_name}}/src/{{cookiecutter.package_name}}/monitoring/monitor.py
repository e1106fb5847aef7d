"""The monitor step: the newest logged predictions against the champion's reference.

1. The reference: the profile recorded with the champion version at training time
   (:mod:`.reference`), or a profile file given with ``--reference``.
2. The window: the given batch; else the newest scoring batch, when the newest logged prediction
   came from one; else the newest ``monitor.window_rows`` predictions (API traffic).
3. The window's assessment (:func:`assess_window`), label-free: data quality (:mod:`.quality`),
   importance-weighted drift (:mod:`.drift`) and performance estimated from the calibrated scores
   (:mod:`.estimate`). Then realised performance (:mod:`.performance`) on every labelled period.
4. The report: ``reports/monitoring/<time>-v<version>.{html,json}``, copied to ``latest.html`` and
   ``latest.json``; with ``PROMETHEUS_PUSHGATEWAY_URL`` set, its figures go to Prometheus too
   (:mod:`.metrics`).

The JSON summary is the alarm interface. ``alarms`` lists what fired, out of ``data_quality``,
``drift``, ``estimated_performance`` and ``performance``, and ``status`` joins them with ``+``
(``ok`` when none did, ``insufficient_data`` when too few rows and no labels). The retrain trigger
is ``retrain_recommended``: drift, or a breach, realised or estimated, on healthy inputs. A
data-quality alarm holds retraining back (a model retrained on broken inputs learns the
breakage): it calls for a fix upstream first. With ``--fail-on-alarm`` the step exits with
:data:`EXIT_ALARM` when retraining is recommended and :data:`EXIT_DATA_QUALITY` on a data-quality
alarm, so a scheduler can tell "retrain" from "repair the data".
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from ..errors import StepError
from ..prediction_log import read_prediction_log
from .drift import DriftResult, detect_drift
from .estimate import PerformanceEstimate, estimate_performance
from .performance import PerformanceResult, judge_performance, performance_by_period, read_labels
from .quality import QualityResult, check_quality
from .report import render_html

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Settings
    from ..params import MonitorParams, Params
    from .reference import ReferenceProfile

logger = logging.getLogger(__name__)

EXIT_ALARM = 3
"""Exit code of ``monitor --fail-on-alarm`` when retraining is recommended (1 and 2 mean the step
itself failed)."""
EXIT_DATA_QUALITY = 4
"""Exit code of ``monitor --fail-on-alarm`` on a data-quality alarm, whatever else fired: repair
the inputs before anything is retrained on them."""

Alarm = Literal["data_quality", "drift", "estimated_performance", "performance"]
"""What the monitor alarms on, in the order the status names them."""
ALARMS: tuple[Alarm, ...] = ("data_quality", "drift", "estimated_performance", "performance")


class MonitorError(StepError):
    """The monitor cannot run (no champion, no raw tables to fold into); the message says why."""


class Window(BaseModel):
    """The rows judged."""

    model_config = ConfigDict(frozen=True)

    description: str
    rows: int
    batch_id: str | None
    first: str | None
    last: str | None


class Assessment(BaseModel):
    """What the window's rows say without labels: data quality, drift, estimated performance.

    All three are None when the window is smaller than ``monitor.min_rows`` (not judged).
    """

    model_config = ConfigDict(frozen=True)

    quality: QualityResult | None
    drift: DriftResult | None
    estimate: PerformanceEstimate | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alarms(self) -> list[Alarm]:
        """The label-free alarms that fired."""
        fired = {
            "data_quality": self.quality is not None and self.quality.alarm,
            "drift": self.drift is not None and self.drift.drift_detected,
            "estimated_performance": self.estimate is not None and self.estimate.breach,
        }
        return [alarm for alarm in ALARMS if fired.get(alarm)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> list[str]:
        """Moderate shifts: worth a look, no alarm on their own."""
        return [] if self.drift is None else self.drift.warnings


def assess_window(
    reference: ReferenceProfile, window: pd.DataFrame, options: MonitorParams
) -> Assessment:
    """Judge a window of scored rows against `reference`, without labels.

    Args:
        reference: The model version's reference profile.
        window: One column per model input, plus ``score`` (the positive-class probability) and
            ``prediction`` (the predicted label).
        options: The ``monitor`` section of params.yaml.
    """
    if len(window) < options.min_rows:
        return Assessment(quality=None, drift=None, estimate=None)
    drift = detect_drift(reference, window, options)
    return Assessment(
        quality=check_quality(reference, window, options),
        drift=drift,
        # Moved inputs put the estimate's assumption in doubt: its interval widens.
        estimate=estimate_performance(reference, window, options, inputs_moved=drift.moved),
    )


class MonitoringSummary(BaseModel):
    """One monitoring run's verdict and the figures behind it: the JSON report, typed.

    ``alarms``, ``status`` and ``retrain_recommended`` are the alarm interface (see the module
    docstring and the README); ``quality``, ``drift`` and ``estimate`` are absent when the window
    was too small.
    """

    model_config = ConfigDict(frozen=True)

    generated_at: str
    model_name: str
    model_version: str | None
    window: Window
    thresholds: dict[str, Any]
    quality: QualityResult | None = None
    drift: DriftResult | None
    estimate: PerformanceEstimate | None = None
    performance: PerformanceResult
    message: str | None = None
    reports: dict[str, str] = Field(default_factory=dict)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alarms(self) -> list[Alarm]:
        """Every alarm that fired, label-free ones first."""
        label_free = Assessment(quality=self.quality, drift=self.drift, estimate=self.estimate)
        realised: list[Alarm] = ["performance"] if self.performance.breach else []
        return [*label_free.alarms, *realised]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> str:
        """The alarms joined with ``+``; ``ok``; or ``insufficient_data`` (nothing was judged)."""
        if self.alarms:
            return "+".join(self.alarms)
        return "insufficient_data" if self.drift is None else "ok"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> list[str]:
        """Moderate shifts: worth a look, no alarm on their own."""
        return [] if self.drift is None else self.drift.warnings

    @computed_field  # type: ignore[prop-decorator]
    @property
    def data_quality_alarm(self) -> bool:
        """Inputs the model never saw, a missing-value surge, or values outside the contract."""
        return self.quality is not None and self.quality.alarm

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drift_detected(self) -> bool:
        """The data set or the predictions drifted."""
        return self.drift is not None and self.drift.drift_detected

    @computed_field  # type: ignore[prop-decorator]
    @property
    def estimated_breach(self) -> bool:
        """The label-free estimate of precision or recall fell below its floor."""
        return self.estimate is not None and self.estimate.breach

    @computed_field  # type: ignore[prop-decorator]
    @property
    def performance_breach(self) -> bool:
        """The latest labelled period fell below the held-out baseline."""
        return self.performance.breach

    @computed_field  # type: ignore[prop-decorator]
    @property
    def retrain_recommended(self) -> bool:
        """Drift, or a breach realised or estimated, on healthy inputs: the retrain trigger."""
        breach = self.drift_detected or self.performance_breach or self.estimated_breach
        return breach and not self.data_quality_alarm


@dataclass(frozen=True)
class MonitorResult:
    """The summary of one monitoring run and where its report files are."""

    summary: MonitoringSummary
    html_path: Path
    json_path: Path

    @property
    def exit_code(self) -> int:
        """The exit code of ``monitor --fail-on-alarm``: 0 when no alarm fired."""
        if self.summary.data_quality_alarm:
            return EXIT_DATA_QUALITY
        return EXIT_ALARM if self.summary.alarms else 0


def monitoring_dir(settings: Settings) -> Path:
    """Where monitoring reports are written."""
    return settings.reports_dir / "monitoring"


def labels_dir(settings: Settings) -> Path:
    """Where late labels land (CSV files of ``entity_id,label``)."""
    return settings.data_dir / "labels"


def champion_version(settings: Settings) -> str:
    """The registered version the ``champion`` alias points to.

    Raises:
        MonitorError: when there is no champion yet.
    """
    from ..registry import CHAMPION, alias_version

    version = alias_version(settings, CHAMPION)
    if version is None:
        raise MonitorError(f"{settings.model_name} has no {CHAMPION}: run `make promote` first")
    return version


def select_window(
    log: pd.DataFrame, window_rows: int, batch_id: str | None = None
) -> tuple[pd.DataFrame, str]:
    """The rows to judge, and a description of them (see the module docstring)."""
    if batch_id is not None:
        return log[log["batch_id"] == batch_id], f"batch {batch_id}"
    if log.empty:
        return log, "no predictions logged"
    newest = log["batch_id"].iloc[-1]
    if isinstance(newest, str) and newest:
        return log[log["batch_id"] == newest], f"newest batch {newest}"
    api = log[log["batch_id"].isna()]
    return api.tail(window_rows), f"newest {min(window_rows, len(api))} API predictions"


def run_monitor(
    settings: Settings,
    params: Params,
    *,
    batch_id: str | None = None,
    reference: ReferenceProfile | None = None,
) -> MonitorResult:
    """Assess the window, judge the labelled periods for performance; write the report.

    Args:
        settings: Where the log, the labels, the registry and the reports are.
        params: ``monitor`` holds the window size and every threshold.
        batch_id: Judge this scoring batch (default: see :func:`select_window`).
        reference: Compare with this profile instead of the champion's.

    Returns:
        The summary and the report's paths.

    Raises:
        MonitorError: when there is no champion (and no `reference` was given), or when the
            figures cannot be pushed to ``PROMETHEUS_PUSHGATEWAY_URL`` (the report is written).
        ReferenceMissingError: when the champion carries no recorded reference profile.
    """
    from .reference import recorded_reference

    options = params.monitor
    if reference is None:
        reference = recorded_reference(settings, champion_version(settings))
    log = read_prediction_log(settings.prediction_log_dir, model_version=reference.model_version)
    window, description = select_window(log, options.window_rows, batch_id)
    assessment = assess_window(reference, window, options)
    periods = performance_by_period(
        log, read_labels(labels_dir(settings)), reference.positive_class
    )
    performance = judge_performance(periods, reference.baseline, options, reference.model_version)
    message = None
    if assessment.drift is None:
        message = (
            f"{len(window)} rows in the window ({description}); at least {options.min_rows} "
            "are needed to judge it (`monitor.min_rows`)"
        )
    summary = MonitoringSummary(
        generated_at=datetime.now(tz=UTC).isoformat(timespec="seconds"),
        model_name=reference.model_name,
        model_version=reference.model_version,
        window=Window(
            description=description,
            rows=len(window),
            batch_id=batch_id,
            first=_iso(window["timestamp"].min()) if len(window) else None,
            last=_iso(window["timestamp"].max()) if len(window) else None,
        ),
        thresholds=options.model_dump(mode="json", exclude={"demo"}),
        quality=assessment.quality,
        drift=assessment.drift,
        estimate=assessment.estimate,
        performance=performance,
        message=message,
    )
    result = write_report(settings, summary, reference, window)
    if settings.prometheus_pushgateway_url:
        publish(settings.prometheus_pushgateway_url, result)
    return result


def publish(url: str, result: MonitorResult) -> None:
    """Push the run's figures to the Pushgateway at `url`: an alarm no one sees is no alarm.

    Raises:
        MonitorError: naming the setting when the push failed (the report is written).
    """
    from .metrics import push_monitoring_metrics

    try:
        push_monitoring_metrics(url, result.summary)
    except OSError as error:
        raise MonitorError(
            f"PROMETHEUS_PUSHGATEWAY_URL={url}: the figures were not pushed ({error}); the "
            f"report is written ({result.html_path}). Start the Pushgateway, or unset the "
            "setting to keep the report files only"
        ) from error


def write_report(
    settings: Settings,
    summary: MonitoringSummary,
    reference: ReferenceProfile,
    window: pd.DataFrame,
) -> MonitorResult:
    """Write the HTML report and the JSON summary, and copy both to ``latest.*``."""
    folder = monitoring_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")
    stem = f"{stamp}-v{reference.model_version or 'reference'}"
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    summary = summary.model_copy(
        update={"reports": {"html": str(html_path), "json": str(json_path)}}
    )
    html_path.write_text(render_html(summary, reference, window), encoding="utf-8")
    json_path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    for source, latest in ((html_path, "latest.html"), (json_path, "latest.json")):
        # Copied through a temporary file: a reader of latest.* never sees half a report.
        partial = folder / f".{latest}.partial"
        shutil.copyfile(source, partial)
        partial.replace(folder / latest)
    logger.info("Monitoring report: %s (%s)", html_path, summary.status)
    return MonitorResult(summary=summary, html_path=html_path, json_path=json_path)


def _iso(value: Any) -> str:  # noqa: ANN401 (a pandas timestamp or a datetime)
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)
