"""The monitoring report: one self-contained HTML file (plots inlined as PNG), read offline.

No script, no stylesheet and no font is fetched: the file opens the same from a laptop, a CI
artifact or an e-mail attachment. Sections: the verdict, data quality, the drift table (with each
feature's weight and the moderate shifts), performance estimated before labels beside the
realised figures, the performance trend against the held-out baseline, then reference-vs-current
distributions per feature and of the scores.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .drift import DriftResult
    from .estimate import PerformanceEstimate
    from .monitor import MonitoringSummary
    from .performance import PerformanceResult, PeriodPerformance
    from .quality import QualityResult
    from .reference import ReferenceProfile

logger = logging.getLogger(__name__)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { margin-bottom: .2rem; } .muted { color: #666; }
.verdict { padding: .8rem 1rem; border-radius: .4rem; font-size: 1.2rem; margin: 1rem 0; }
.ok { background: #e6f4ea; } .alarm { background: #fde8e8; } .unknown { background: #f1f1f1; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
tr.drifted td { background: #fde8e8; } tr.moderate td { background: #fff4d6; }
.grid { display: flex; flex-wrap: wrap; gap: .5rem; } .grid figure { margin: 0; }
figcaption { font-size: .85rem; color: #555; text-align: center; }
"""
_REFERENCE_COLOUR, _CURRENT_COLOUR = "#4c72b0", "#dd8452"


def _png(figure: Any) -> str:  # noqa: ANN401 (matplotlib Figure)
    """A figure as an inline ``<img>`` (base64 PNG), closed afterwards."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{encoded}">'


def _numeric_plot(name: str, reference: list[float], current: pd.Series) -> str:
    import matplotlib.pyplot as plt

    values = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype="float64")
    together = np.concatenate([np.asarray(reference, dtype="float64"), values])
    figure, axis = plt.subplots(figsize=(4.2, 2.6))
    if len(together):
        low, high = np.quantile(together, [0.0, 0.995])  # a long tail would squash the rest
        bins = np.linspace(low, high if high > low else low + 1, 30).tolist()
        axis.hist(
            reference,
            bins=bins,
            density=True,
            alpha=0.55,
            label="reference",
            color=_REFERENCE_COLOUR,
        )
        axis.hist(
            values, bins=bins, density=True, alpha=0.55, label="current", color=_CURRENT_COLOUR
        )
        # A fixed corner: matplotlib's "best" searches every bar, and warns when that is slow.
        axis.legend(fontsize=7, loc="upper right")
    axis.set_title(name, fontsize=9)
    axis.tick_params(labelsize=7)
    return _png(figure)


def _categorical_plot(name: str, reference: dict[str, int], current: pd.Series) -> str:
    import matplotlib.pyplot as plt

    counts = current.dropna().astype(str).value_counts()
    categories = sorted(set(reference) | set(counts.index))
    ref_total = sum(reference.values()) or 1
    cur_total = int(counts.sum()) or 1
    positions = np.arange(len(categories))
    figure, axis = plt.subplots(figsize=(4.2, 2.6))
    axis.bar(
        positions - 0.2,
        [reference.get(c, 0) / ref_total for c in categories],
        0.4,
        label="reference",
        color=_REFERENCE_COLOUR,
    )
    axis.bar(
        positions + 0.2,
        [counts.get(c, 0) / cur_total for c in categories],
        0.4,
        label="current",
        color=_CURRENT_COLOUR,
    )
    axis.set_xticks(positions, categories, fontsize=7, rotation=30)
    axis.set_title(f"{name} (share)", fontsize=9)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7, loc="upper right")
    return _png(figure)


def _trend_plot(periods: list[PeriodPerformance], baseline: dict[str, float]) -> str:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 2.8))
    labelled = [period for period in periods if period.n_labelled]
    positions = np.arange(len(labelled))
    for metric, colour in (("precision", _REFERENCE_COLOUR), ("recall", _CURRENT_COLOUR)):
        values = [getattr(period, metric) for period in labelled]
        axis.plot(
            positions,
            [np.nan if v is None else v for v in values],
            marker="o",
            color=colour,
            label=metric,
        )
        if metric in baseline:
            axis.axhline(
                baseline[metric],
                color=colour,
                linestyle="--",
                linewidth=1,
                label=f"held-out {metric}",
            )
    axis.set_xticks(positions, [p.period for p in labelled], fontsize=7, rotation=15, ha="right")
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=7, ncols=2, loc="lower left")
    axis.set_title("Performance on labelled predictions, by period", fontsize=9)
    return _png(figure)


def _verdict_text(summary: MonitoringSummary) -> tuple[str, str]:
    if summary.status == "insufficient_data":
        return "unknown", f"Not judged: {summary.message}"
    if not summary.alarms:
        warned = (
            f" {len(summary.warnings)} moderate shift(s): see Drift." if summary.warnings else ""
        )
        return "ok", "No alarm: the inputs are sound, nothing drifted, performance holds." + warned
    parts = []
    quality = summary.quality
    if quality is not None and quality.alarm:
        parts.append("Data quality: " + "; ".join(issue.message for issue in quality.issues) + ".")
    drift = summary.drift
    if drift is not None and drift.drift_detected:
        what = []
        if drift.dataset_drift:
            what.append(
                f"{len(drift.drifted_features)} of {len(drift.features)} features drifted "
                f"({', '.join(drift.drifted_features) or 'moderate shifts only'}), weighing "
                f"{drift.importance_share:.0%} of the model's importance and "
                f"{drift.feature_share:.0%} of the features"
            )
        if drift.prediction_drift:
            what.append("the score distribution drifted")
        parts.append("Drift: " + "; ".join(what) + ".")
    if summary.estimated_breach and summary.estimate is not None:
        parts.append("Estimated performance: " + "; ".join(summary.estimate.reasons) + ".")
    if summary.performance_breach:
        parts.append("Performance: " + "; ".join(summary.performance.reasons) + ".")
    if summary.retrain_recommended:
        parts.append("Retraining is recommended.")
    elif summary.data_quality_alarm:
        parts.append(
            "Repair the inputs before retraining: a model retrained on them learns the breakage."
        )
    return "alarm", " ".join(parts)


def _quality_table(quality: QualityResult) -> str:
    rows = "".join(
        f"<tr class='drifted'><td>{html.escape(issue.feature)}</td>"
        f"<td class='text'>{issue.kind.replace('_', ' ')}</td><td>{issue.share:.1%}</td>"
        f"<td>{issue.threshold:.1%}</td>"
        f"<td class='text'>{html.escape('(missing)' if issue.example is None else issue.example)}"
        f"</td></tr>"
        for issue in quality.issues
    )
    head = (
        "<tr><th>feature</th><th>issue</th><th>share of rows</th><th>allowed</th>"
        "<th>example</th></tr>"
    )
    return f"<table>{head}{rows}</table>"


def _drift_table(drift: DriftResult) -> str:
    verdicts = {"drifted": "DRIFT", "moderate": "warning", "stable": "ok"}
    rows = []
    for item in [*drift.features, drift.prediction]:
        weight = "-" if item.kind == "score" else f"{item.weight:.0%}"
        rows.append(
            f'<tr class="{"" if item.severity == "stable" else item.severity}">'
            f"<td>{html.escape(item.feature)}</td><td class='text'>{item.kind}</td>"
            f"<td>{weight}</td>"
            f"<td>{item.psi:.3f}</td><td class='text'>{item.test}</td>"
            f"<td>{item.statistic:.3f}</td><td>{item.p_value:.2g}</td>"
            f"<td>{item.missing_reference:.1%}</td><td>{item.missing_current:.1%}</td>"
            f"<td class='text'>{verdicts[item.severity]}</td>"
            f"<td class='text'>{html.escape(item.reason)}</td></tr>"
        )
    head = (
        "<tr><th>column</th><th>kind</th><th>weight</th><th>PSI</th><th>test</th>"
        "<th>statistic</th><th>p-value</th><th>missing (ref)</th><th>missing (now)</th>"
        "<th>verdict</th><th>why</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _estimate_text(estimate: PerformanceEstimate, performance: PerformanceResult, z: float) -> str:
    def figure(value: float | None, low: float | None, high: float | None) -> str:
        if value is None or low is None or high is None:
            return "undefined"
        return f"{value:.3f} ({low:.3f} to {high:.3f})"

    realised = performance.judged

    def seen(metric: str) -> str:
        value = None if realised is None else getattr(realised, metric)
        return "-" if value is None else f"{value:.3f}"

    rows = [
        f"<tr><td>{metric}</td><td>{figure(*values)}</td>"
        f"<td>{performance.baseline.get(metric, float('nan')):.3f}</td><td>{seen(metric)}</td></tr>"
        for metric, values in (
            ("precision", (estimate.precision, estimate.precision_low, estimate.precision_high)),
            ("recall", (estimate.recall, estimate.recall_low, estimate.recall_high)),
        )
    ]
    head = (
        f"<tr><th>metric</th><th>estimated for this window (± {z:g} sd interval)</th>"
        "<th>held-out</th><th>realised, latest labelled period</th></tr>"
    )
    verdict = "; ".join(estimate.reasons) if estimate.breach else "within the allowed drop"
    doubt = (
        f" The inputs moved, so that link is in doubt: the intervals also span any labels of the "
        f"{estimate.unexplained_share:.0%} of rows the reference does not account for."
        if estimate.unexplained_share
        else ""
    )
    return (
        f"<p>From the calibrated scores of {estimate.n_rows} rows "
        f"({estimate.n_predicted_positive} predicted positive), before any label: "
        f"{html.escape(verdict)}. The estimate holds while the link between inputs and labels "
        f"does; the realised figures, once labels arrive, are the final word.{doubt}</p>"
        f"<table>{head}{''.join(rows)}</table>"
    )


def _period_table(periods: list[PeriodPerformance]) -> str:
    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = "".join(
        f"<tr><td>{html.escape(p.period)}</td><td>{html.escape(p.model_version)}"
        f"</td><td>{p.n_predictions}</td><td>{p.n_labelled}</td>"
        f"<td>{number(p.precision)}</td><td>{number(p.recall)}</td>"
        f"<td>{number(p.positive_rate)}</td></tr>"
        for p in periods
    )
    head = (
        "<tr><th>period</th><th>version</th><th>predictions</th><th>labelled</th>"
        "<th>precision</th><th>recall</th><th>positive rate</th></tr>"
    )
    return f"<table>{head}{rows}</table>"


def render_html(
    summary: MonitoringSummary, reference: ReferenceProfile, window: pd.DataFrame
) -> str:
    """The report for one monitoring run, as a self-contained HTML page.

    Args:
        summary: The run's summary (see ``monitor.run_monitor``).
        reference: The reference profile the window was compared with.
        window: The window's rows (features, ``score``), for the distribution plots.
    """
    import matplotlib as mpl

    mpl.use("Agg")  # no display, no GUI toolkit: files only
    css_class, verdict = _verdict_text(summary)
    title = f"Monitoring: {summary.model_name} v{summary.model_version}"
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='muted'>{html.escape(summary.generated_at)} · window: "
        f"{html.escape(summary.window.description)} ({summary.window.rows} rows) · reference: "
        f"{reference.n_rows} held-out rows</p>",
        f"<div class='verdict {css_class}'>{html.escape(verdict)}</div>",
    ]
    quality = summary.quality
    if quality is not None:
        parts.append("<h2>Data quality</h2>")
        parts.append(
            _quality_table(quality)
            if quality.alarm
            else "<p>No unseen category, no missing-value surge, nothing outside the contract's "
            "bounds.</p>"
        )
    drift = summary.drift
    if drift is not None:
        importance = (
            f"{drift.importance_share:.0%} of the model's permutation importance"
            if drift.weighted_by_importance
            else "no importance recorded"
        )
        parts += [
            "<h2>Drift</h2>",
            f"<p>{len(drift.drifted_features)} of {len(drift.features)} features drifted, "
            f"{len(drift.warnings)} shifted moderately: together {importance} and "
            f"{drift.feature_share:.0%} of the features (data-set threshold "
            f"{summary.thresholds['drift_share']:.0%} of either); positive rate "
            f"{drift.positive_rate_reference:.1%} → {drift.positive_rate_current:.1%}.</p>",
            *(f"<p>Warning: {html.escape(warning)}</p>" for warning in drift.warnings),
            _drift_table(drift),
        ]
    performance = summary.performance
    if summary.estimate is not None:
        parts += [
            "<h2>Estimated performance</h2>",
            _estimate_text(summary.estimate, performance, summary.thresholds["estimate_z"]),
        ]
    parts.append("<h2>Performance</h2>")
    if performance.periods:
        parts.append(
            f"<p>Status: {html.escape(performance.status)}; held-out baseline precision "
            f"{performance.baseline.get('precision', float('nan')):.3f}, recall "
            f"{performance.baseline.get('recall', float('nan')):.3f}.</p>"
        )
        if any(period.n_labelled for period in performance.periods):
            parts.append(_trend_plot(performance.periods, performance.baseline))
        parts.append(_period_table(performance.periods))
    else:
        parts.append("<p>No predictions logged for this model version yet.</p>")
    if len(window):
        plots = [
            _numeric_plot(name, profile.sample, window.get(name, pd.Series(dtype="float64")))
            for name, profile in reference.numeric.items()
        ] + [
            _categorical_plot(name, profile.counts, window.get(name, pd.Series(dtype="object")))
            for name, profile in reference.categorical.items()
        ]
        plots.append(_numeric_plot("score", reference.score.sample, window["score"]))
        parts += [
            "<h2>Distributions: reference vs current</h2><div class='grid'>",
            *[f"<figure>{plot}</figure>" for plot in plots],
            "</div>",
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)
