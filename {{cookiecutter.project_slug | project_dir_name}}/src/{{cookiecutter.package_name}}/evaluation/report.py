"""The evaluation's result, typed: the checks, the metrics and the verdict, as one object.

Its JSON form is the report file (``reports/evaluation/latest.json``) and the ``evaluation/
report.json`` artifact of the training run; the register step reads it back to tag the new
model version. A renamed field is a type error here, not a ``KeyError`` in production.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from ..errors import StepError

if TYPE_CHECKING:
    from pathlib import Path

    from ..config import Settings

CheckStatus = Literal["pass", "fail", "not_assessed"]
REPORT_ARTIFACT = "evaluation/report.json"
"""Where the evaluate step records its report on the training run."""
HEADLINE = "precision"
"""The metric that ranks models: held-out precision of ``train.positive_class``."""


class _Frozen(BaseModel):
    # Reading a report back ignores the verdict fields it was written with: they are computed.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Check(_Frozen):
    """One post-train test: its name, its verdict, and why, in a sentence.

    ``not_assessed`` means there was nothing to judge; `detail` says why.
    """

    name: str
    status: CheckStatus
    detail: str

    @property
    def passed(self) -> bool:
        """True only for a check that was assessed and held."""
        return self.status == "pass"

    @classmethod
    def judged(cls, name: str, *, passed: bool, detail: str) -> Check:
        """A check that was assessed: it passed or it failed."""
        return cls(name=name, status="pass" if passed else "fail", detail=detail)

    @classmethod
    def not_assessed(cls, name: str, reason: str) -> Check:
        """A check with nothing to judge, and the reason."""
        return cls(name=name, status="not_assessed", detail=reason)


class ChampionComparison(_Frozen):
    """The champion scored on the candidate's held-out rows.

    `error` says why a champion of the same task could not score them (the candidate loses);
    `other_task` why there was nothing to compare: the champion predicts another label, or
    reads another feature table (the project adopted new data).
    """

    version: str | None
    metrics: dict[str, float]
    error: str | None = None
    other_task: str | None = None


class AttributeSlices(_Frozen):
    """One sensitive attribute: metrics per group, and the fairness differences across them."""

    slices: dict[str, dict[str, float]]  # group -> precision, recall, selection_rate, count
    demographic_parity_difference: float
    equalized_odds_difference: float


class EvaluationReport(_Frozen):
    """Everything the evaluate step found about one training run's model."""

    run_id: str
    model_uri: str
    positive_class: str
    headline: str = HEADLINE
    metrics: dict[str, float]
    slices: dict[str, AttributeSlices]
    champion: ChampionComparison
    checks: list[Check]
    permutation_importance: dict[str, float]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> list[str]:
        """The checks that were assessed and did not hold."""
        return [check.name for check in self.checks if check.status == "fail"]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def not_assessed(self) -> list[str]:
        """The checks that had nothing to judge."""
        return [check.name for check in self.checks if check.status == "not_assessed"]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """No assessed check failed; what the not-assessed ones mean is the gate's decision."""
        return not self.failed

    def flat_metrics(self) -> dict[str, float]:
        """The metrics DVC compares across experiments (``reports/evaluation/metrics.json``)."""
        flat = {f"test_{name}": value for name, value in self.metrics.items()}
        flat["checks_failed"] = float(len(self.failed))
        return flat

    def to_json(self) -> str:
        """The report as indented JSON."""
        return self.model_dump_json(indent=2) + "\n"


def evaluation_dir(settings: Settings) -> Path:
    """Where the evaluate step writes (``reports/evaluation/``)."""
    return settings.reports_dir / "evaluation"


def version_evaluation_dir(settings: Settings, version: str) -> Path:
    """Where the evaluation of a registered version is written (``.../versions/v<version>/``)."""
    return evaluation_dir(settings) / "versions" / f"v{version}"


class EvaluationMissingError(StepError):
    """No evaluation report yet; the message says what to run."""


def read_evaluation_report(settings: Settings) -> EvaluationReport:
    """The latest evaluation report.

    Raises:
        EvaluationMissingError: when there is none yet (run ``make evaluate``).
    """
    path = evaluation_dir(settings) / "latest.json"
    if not path.is_file():
        raise EvaluationMissingError(f"{path}: no evaluation yet; run `make evaluate` first")
    return EvaluationReport.model_validate_json(path.read_text(encoding="utf-8"))
