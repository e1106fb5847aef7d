"""The evaluation and the gate's verdict as Markdown: a CI job summary, a review's evidence.

``make gate-report`` writes it (CI appends it to ``$GITHUB_STEP_SUMMARY``), so the person who
approves a promotion reads the metrics, every post-train test and the verdict in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import StepError
from ..gate import evaluation_reasons
from .report import read_evaluation_report

if TYPE_CHECKING:
    from ..config import Settings
    from ..params import Params
    from .report import EvaluationReport

VERDICT_MARKS = {"pass": "pass", "fail": "**FAIL**", "not_assessed": "not assessed"}


class GateRefusedError(StepError):
    """The evaluated model would not pass the gate; the message lists every reason."""


@dataclass(frozen=True)
class GateReport:
    """The Markdown summary of the latest evaluation, and why the gate would refuse it."""

    markdown: str
    reasons: list[str]

    @property
    def passed(self) -> bool:
        """True when the gate would promote the evaluated model."""
        return not self.reasons


def gate_report(settings: Settings, params: Params) -> GateReport:
    """Summarize ``reports/evaluation/latest.json`` and judge it against the champion now.

    Raises:
        EvaluationMissingError: when there is no evaluation yet.
        ModelUnavailableError: when the registry cannot be reached.
    """
    from ..registry import CHAMPION, alias_version, describe_version, version_of_run

    report = read_evaluation_report(settings)
    champion = alias_version(settings, CHAMPION)
    version = version_of_run(settings, report.run_id)
    if champion is not None and version == champion:
        verdict = f"**Gate: passed.** This model is champion v{champion} already."
        return GateReport(markdown_summary(settings.model_name, report, verdict), [])
    registered = describe_version(settings, version).tags if version else None
    reasons = evaluation_reasons(report, champion, params.gate, registered)
    if reasons:
        verdict = "\n".join(
            ["**Gate: refused.** This model may not become champion:"]
            + [f"- {reason}" for reason in reasons]
        )
    else:
        verdict = "**Gate: passed.** Registered, this model may become champion."
    return GateReport(markdown_summary(settings.model_name, report, verdict), reasons)


def markdown_summary(model_name: str, report: EvaluationReport, verdict: str) -> str:
    """Metrics next to the champion's, every post-train test, then the gate's `verdict`."""
    theirs = report.champion.metrics
    versus = f"champion v{report.champion.version}" if report.champion.version else "champion"
    lines = [
        f"## {model_name}: evaluation of run `{report.run_id}`",
        "",
        f"| metric | this model | {versus} |",
        "| --- | ---: | ---: |",
    ]
    for name, value in report.metrics.items():
        other = format_number(theirs[name]) if name in theirs else "n/a"
        headline = " (headline)" if name == report.headline else ""
        lines.append(f"| {name}{headline} | {format_number(value)} | {other} |")
    lines += ["", "| post-train test | verdict | detail |", "| --- | --- | --- |"]
    lines += [
        f"| {check.name} | {VERDICT_MARKS[check.status]} | {markdown_cell(check.detail)} |"
        for check in report.checks
    ]
    return "\n".join([*lines, "", verdict]) + "\n"


def format_number(value: float) -> str:
    """A count as a whole number, anything else with three decimals."""
    return f"{value:,.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.3f}"  # noqa: PLR2004


def markdown_cell(text: str) -> str:
    """`text` safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
