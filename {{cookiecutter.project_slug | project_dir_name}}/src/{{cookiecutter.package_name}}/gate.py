"""The promotion gate's rules: what a version records about its tests, and what that allows.

Pure functions on a model version's tags (no MLflow here): :func:`version_tags` writes the
evaluation's verdict onto a new version, :func:`promotion_reasons` reads it back when
:func:`.registry.promote` decides whether the challenger may become ``champion``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .provenance import LINEAGE_TAGS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .evaluation.report import EvaluationReport
    from .params import GateParams

TAG_PASSED = "evaluation.passed"
TAG_FAILED = "evaluation.failed"
TAG_NOT_ASSESSED = "evaluation.not_assessed"
TAG_CHECKS = "evaluation.checks"
TAG_PRECISION = "evaluation.precision"
TAG_COMPARED_WITH = "champion.compared_version"
TAG_CHAMPION_PRECISION = "champion.precision"
NONE = "none"
COMPARISON = "champion.comparison"
# Set on a version when `champion` is rolled back from it: the gate never promotes it again.
TAG_ROLLED_BACK = "rolled_back_at"
# How each verdict is written in the `evaluation.checks` tag.
CHECK_MARKS = {"pass": "pass", "fail": "FAIL", "not_assessed": "n/a"}


def version_tags(run_tags: Mapping[str, str], report: EvaluationReport) -> dict[str, str]:
    """The tags a new model version carries: the run's lineage and its test results."""
    tags = {key: run_tags[key] for key in LINEAGE_TAGS if key in run_tags}
    champion = report.champion
    tags.update(
        {
            TAG_PASSED: str(report.passed).lower(),
            TAG_FAILED: ",".join(report.failed) or NONE,
            TAG_NOT_ASSESSED: ",".join(report.not_assessed) or NONE,
            TAG_CHECKS: ";".join(
                f"{check.name}={CHECK_MARKS[check.status]}" for check in report.checks
            ),
            TAG_PRECISION: f"{report.metrics['precision']:.6f}",
            TAG_COMPARED_WITH: champion.version or NONE,
            TAG_CHAMPION_PRECISION: (
                f"{champion.metrics['precision']:.6f}" if champion.metrics else NONE
            ),
        }
    )
    return tags


def promotion_reasons(
    challenger_tags: Mapping[str, str],
    champion: str | None,
    tolerance: float,
    *,
    block_not_assessed: bool = False,
) -> list[str]:
    """Why the challenger may not become champion (an empty list means it may).

    Args:
        challenger_tags: The challenger version's tags (test results, the comparison).
        champion: The current champion version, or None for the first model.
        tolerance: How far the challenger's precision may trail the champion's.
        block_not_assessed: Refuse a challenger with checks that had nothing to judge
            (``gate.block_not_assessed``).
    """
    reasons = []
    rolled_back = challenger_tags.get(TAG_ROLLED_BACK)
    if rolled_back:
        reasons.append(
            f"it was rolled back from champion at {rolled_back}, and a rolled-back version is "
            "not promoted again: train a new model (to bring this one back on purpose, delete "
            f"its `{TAG_ROLLED_BACK}` tag first)"
        )
    if challenger_tags.get(TAG_PASSED) != "true":
        failed = challenger_tags.get(TAG_FAILED, "unknown")
        checks = challenger_tags.get(TAG_CHECKS, "")
        reasons.append(f"post-train tests failed: {failed}")
        reasons.extend(
            f"failed check {entry.split('=')[0]}"
            for entry in checks.split(";")
            if entry.endswith("=FAIL")
        )
    not_assessed = not_assessed_checks(challenger_tags)
    if block_not_assessed and not_assessed:
        reasons.append(
            f"checks not assessed: {', '.join(not_assessed)} (gate.block_not_assessed is true)"
        )
    if champion is not None:
        compared = challenger_tags.get(TAG_COMPARED_WITH, NONE)
        if compared != champion:
            reasons.append(
                f"evaluated against champion {compared}, but the champion is now v{champion}: "
                "run `make evaluate` and `make register` again"
            )
        elif challenger_tags.get(TAG_CHAMPION_PRECISION, NONE) == NONE:
            # Either the comparison failed (a failed check, above) or the champion is for
            # another task (not assessed): no precision to beat.
            if COMPARISON not in not_assessed and not reasons:
                reasons.append(f"no precision of champion v{champion} was recorded to compare")
        else:
            ours = float(challenger_tags.get(TAG_PRECISION, "nan"))
            theirs = float(challenger_tags[TAG_CHAMPION_PRECISION])
            if not ours >= theirs - tolerance:
                reasons.append(
                    f"precision {ours:.3f} is worse than champion v{champion}'s {theirs:.3f} "
                    f"beyond the tolerance {tolerance:.3f}"
                )
    return reasons


def evaluation_reasons(
    report: EvaluationReport,
    champion: str | None,
    gate: GateParams,
    registered: Mapping[str, str] | None = None,
) -> list[str]:
    """Why the gate would refuse the model `report` judged, against `champion` (empty: it passes).

    The same rules :func:`promotion_reasons` applies to a registered challenger, applied before
    registration: what CI shows as the gate's verdict for a training run. `registered` holds
    the tags of the version that already holds the run, if any (a rollback marks it).
    """
    marks = {key: value for key, value in (registered or {}).items() if key == TAG_ROLLED_BACK}
    return promotion_reasons(
        {**version_tags({}, report), **marks},
        champion,
        gate.tolerance,
        block_not_assessed=gate.block_not_assessed,
    )


def not_assessed_checks(tags: Mapping[str, str]) -> list[str]:
    """The checks of a version that had nothing to judge (from its tags)."""
    value = tags.get(TAG_NOT_ASSESSED, NONE)
    return [] if value == NONE else value.split(",")
