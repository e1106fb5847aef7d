"""The model card: one version's facts from the registry and its run, the team's answers beside.

``make model-card`` (default the ``champion``, ``REF=3`` for another version) writes
``docs/model-cards/<model>-v<version>.md`` for the docs site and stores the same file with the
version's run, the version's ``model_card`` tag naming it. Every figure comes from what was
recorded when the version was trained and evaluated (its run's parameters, metrics, contract and
evaluation report), its aliases and champion history from the registry, its drift status from the
newest monitoring report of that version. What only people can say comes from ``governance.yaml``
(:mod:`.governance`); an answer missing there is listed as an open item, never made up.

The sections follow the documentation checklist a model ends with: summary, pre-processing,
feature selection, modelling dataset, contract, model selection, validation, optimisation,
stage, drift and retraining, deployment, foreseen improvements, peer review and acceptance,
then risk and responsible AI.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from ..evaluation.report import REPORT_ARTIFACT, EvaluationReport
from ..evaluation.summary import VERDICT_MARKS, format_number, markdown_cell
from ..gate import TAG_ROLLED_BACK
from ..monitoring.monitor import MonitoringSummary, monitoring_dir
from ..params import Params
from ..provenance import LINEAGE_TAGS
from .governance import GOVERNANCE_FILE, Governance, Review, load_governance, open_items

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ..config import Settings
    from ..contract import FeatureContract
    from ..registry import VersionRecord

logger = logging.getLogger(__name__)

CARD_TAG = "model_card"
CARD_FOLDER = "model_card"
CARDS_DIR = Path("docs/model-cards")
NOT_RECORDED = "not recorded"
Recorded = TypeVar("Recorded", EvaluationReport, Params, MonitoringSummary)


@dataclass(frozen=True)
class CardFacts:
    """What the registry, the run and the monitor hold about one version."""

    record: VersionRecord
    contract: FeatureContract
    preprocessing: list[str]
    estimator: str
    evaluation: EvaluationReport | None
    params: Params | None
    history: list[str]
    monitoring: MonitoringSummary | None
    generated_at: datetime


@dataclass(frozen=True)
class ModelCard:
    """A written card: where it is, which version it describes, what is still open."""

    path: Path
    version: str
    artifact_uri: str
    open_items: list[str]


def gather_facts(settings: Settings, reference: str) -> CardFacts:
    """Everything recorded about the version `reference` (a number or an alias).

    Raises:
        RegistryError: when there is no such version or alias.
        ModelUnavailableError: when the registry or the version's model cannot be read.
    """
    from ..registry import (
        CHAMPION,
        champion_versions,
        describe_version,
        fetch_registered,
        version_artifact_text,
    )

    record = describe_version(settings, reference)
    registered = fetch_registered(settings, CHAMPION, version=record.version)
    report_text = version_artifact_text(settings, record, REPORT_ARTIFACT)
    params_text = version_artifact_text(settings, record, "params.json")
    return CardFacts(
        record=record,
        contract=registered.contract,
        preprocessing=describe_preprocessing(registered.pipeline),
        estimator=type(registered.pipeline[-1]).__name__,
        evaluation=_parsed(EvaluationReport, report_text),
        params=_parsed(Params, params_text),
        history=champion_versions(settings),
        monitoring=latest_monitoring(settings, record.version),
        generated_at=datetime.now(tz=UTC),
    )


def describe_preprocessing(pipeline: Any) -> list[str]:  # noqa: ANN401 (a fitted sklearn Pipeline)
    """One line per column group of the fitted pipeline: its steps, in order, and its columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    lines = []
    for step in pipeline[:-1]:
        groups = step.transformers_ if isinstance(step, ColumnTransformer) else [("", step, [])]
        for name, transformer, columns in groups:
            if transformer == "drop" or (isinstance(columns, list) and not columns):
                continue
            steps = transformer.steps if isinstance(transformer, Pipeline) else [("", transformer)]
            chain = " → ".join(_step_text(item) for _, item in steps)
            listed = ", ".join(f"`{column}`" for column in columns)
            lines.append(f"**{name}**: {chain} on {listed}" if name else chain)
    return lines


def latest_monitoring(settings: Settings, version: str) -> MonitoringSummary | None:
    """The newest monitoring summary of `version`, or None when it was never monitored."""
    for path in sorted(monitoring_dir(settings).glob(f"*-v{version}.json"), reverse=True):
        summary = _parsed(MonitoringSummary, path.read_text(encoding="utf-8"))
        if summary is not None:
            return summary
    return None


def write_model_card(settings: Settings, reference: str = "champion") -> ModelCard:
    """Write the card of `reference` into the docs site, and store it with the version.

    Raises:
        ConfigError: when ``governance.yaml`` is not valid (naming the key).
        RegistryError: when there is no such version or alias.
    """
    from ..registry import attach_to_version

    governance = load_governance(settings.project_dir / GOVERNANCE_FILE)
    facts = gather_facts(settings, reference)
    cards = settings.project_dir / CARDS_DIR
    cards.mkdir(parents=True, exist_ok=True)
    path = cards / f"{facts.record.name}-v{facts.record.version}.md"
    path.write_text(render_card(facts, governance), encoding="utf-8")
    write_cards_index(cards)
    uri = attach_to_version(settings, facts.record, path, folder=CARD_FOLDER, tag=CARD_TAG)
    missing = open_items(governance)
    return ModelCard(path=path, version=facts.record.version, artifact_uri=uri, open_items=missing)


def write_cards_index(cards: Path) -> None:
    """List every card in ``index.md``, newest version first."""
    found = sorted(cards.glob("*-v*.md"), key=_version_number, reverse=True)
    lines = [
        "# Model cards",
        "",
        "One card per model version, written by `make model-card` (`REF=<version>` for another",
        "than the champion) from the registry, the version's run and `governance.yaml`. The",
        "same file is stored with the version in MLflow (its `model_card` tag names it).",
        "",
    ]
    if found:
        lines += [f"- [{path.stem}]({path.name})" for path in found]
    else:
        lines.append("No card yet: run the loop (`make all`), then `make model-card`.")
    (cards / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def render_card(facts: CardFacts, governance: Governance) -> str:
    """The card as Markdown: the checklist first, then one section per item."""
    record = facts.record
    sections = [
        _header(facts, governance),
        _checklist(facts, governance),
        _open_items(governance),
        _summary(facts, governance),
        _dataset(facts),
        _contract(facts.contract),
        _preprocessing(facts),
        _features(facts),
        _model_selection(facts),
        _validation(facts),
        _fairness(facts),
        _stage(facts, governance),
        _monitoring(facts),
        _risk(governance),
        _review(governance),
    ]
    title = f"# Model card: {record.name} v{record.version}\n"
    return "\n".join([title, *sections])


# --- the sections -------------------------------------------------------------------------------


def _header(facts: CardFacts, governance: Governance) -> str:
    record = facts.record
    evaluation = facts.evaluation
    headline = (
        f"{evaluation.headline} of `{evaluation.positive_class}` on "
        f"{format_number(evaluation.metrics.get('n_rows', 0))} held-out rows: "
        f"**{format_number(evaluation.metrics[evaluation.headline])}**"
        if evaluation
        else NOT_RECORDED
    )
    owner = governance.owner
    risk = governance.risk
    rows = {
        "model": f"`{record.name}` v{record.version} (`models:/{record.name}/{record.version}`)",
        "aliases": ", ".join(f"`{alias}`" for alias in record.aliases) or "none",
        "registered": _when(record.created_at),
        "estimator": f"`{facts.estimator}`",
        "headline": headline,
        "owner": " ".join(filter(None, [owner.team, f"<{owner.email}>" if owner.email else None]))
        or _OPEN,
        "risk": f"{risk.level} ({risk.likelihood} x {risk.impact} = {risk.score})"
        if risk.level
        else _OPEN,
        "accepted": _review_text(governance.sign_off),
        "run": f"`{record.run_id}`",
    }
    return "\n".join(
        [
            f"Written by `make model-card` on {_when(facts.generated_at)} from the registry, the",
            f"version's run and `{GOVERNANCE_FILE}`. Edit that file (or the code), not this page:",
            "the next `make model-card` rewrites it.",
            "",
            *_table(["about the version", ""], rows.items()),
            "",
        ]
    )


_OPEN = "*open item*"


def _checklist(facts: CardFacts, governance: Governance) -> str:
    evaluation = facts.evaluation
    business = governance.business
    items = [
        ("Summary", "summary", business.problem is not None),
        ("Pre-processing", "pre-processing", bool(facts.preprocessing)),
        ("Feature selection", "feature-selection", evaluation is not None),
        ("Modelling dataset", "modelling-dataset", True),
        ("Contract", "contract", True),
        ("Model selection and optimisation", "model-selection-and-optimisation", True),
        ("Validation", "validation", evaluation is not None),
        ("Slices and fairness", "slices-and-fairness", evaluation is not None),
        ("Stage and deployment", "stage-and-deployment", governance.deployment is not None),
        ("Drift and retraining", "drift-and-retraining", facts.monitoring is not None),
        ("Risk and responsible AI", "risk-and-responsible-ai", governance.risk.level is not None),
        ("Foreseen improvements", "peer-review-and-acceptance", bool(governance.improvements)),
        ("Peer review", "peer-review-and-acceptance", governance.peer_review.decision is not None),
        ("Acceptance", "peer-review-and-acceptance", governance.sign_off.decision is not None),
    ]
    lines = ["## Checklist", ""]
    lines += _table(
        ["item", "state"],
        ([f"[{title}](#{anchor})", "done" if done else _OPEN] for title, anchor, done in items),
    )
    return "\n".join([*lines, ""])


def _open_items(governance: Governance) -> str:
    missing = open_items(governance)
    if not missing:
        return "## Open items\n\nNone: every answer of `governance.yaml` is given.\n"
    return "\n".join(
        [
            "## Open items",
            "",
            f"Answers `{GOVERNANCE_FILE}` does not give yet. The card states no answer for them:",
            "",
            *(f"- {item}" for item in missing),
            "",
        ]
    )


def _summary(facts: CardFacts, governance: Governance) -> str:
    business = governance.business
    contract = facts.contract
    values = ", ".join(f"`{value}`" for value in contract.label_values) or "its values"
    lines = [
        "## Summary",
        "",
        f"- **Why** (the problem): {business.problem or _OPEN}",
        f"- **How** (the decision it feeds): {business.decision or _OPEN}",
        f"- **What** (success, for the business): {business.success or _OPEN}",
        f"- **The model**: predicts `{contract.label_column}` ({values}) for each "
        f"`{contract.id_column}` of the dbt model `{contract.model}`, from "
        f"{len(contract.feature_columns)} features.",
        f"- **Intended use**: {governance.intended_use or _OPEN}",
        "- **Out of scope**: "
        + ("; ".join(governance.out_of_scope) if governance.out_of_scope else _OPEN),
    ]
    if governance.contacts:
        lines += [
            "",
            *_table(
                ["contact", "role", "email"],
                (
                    [contact.name, contact.role, contact.email or ""]
                    for contact in governance.contacts
                ),
            ),
        ]
    else:
        lines += ["", f"Contacts: {_OPEN}."]
    return "\n".join([*lines, ""])


def _dataset(facts: CardFacts) -> str:
    tags = facts.record.tags
    params = facts.record.run_params
    rows = [(key.removeprefix("lineage."), tags.get(key, NOT_RECORDED)) for key in LINEAGE_TAGS]
    lines = [
        "## Modelling dataset",
        "",
        f"The labelled rows of `{facts.contract.model}`: {params.get('n_train', '?')} trained on, "
        f"{params.get('n_test', '?')} held out (`test_size` {params.get('test_size', '?')}, "
        f"stratified, seed {params.get('seed', '?')}). Lineage recorded with the version "
        "(`make lineage`):",
        "",
        *_table(["lineage", "value"], ([key, f"`{value}`"] for key, value in rows)),
        "",
    ]
    return "\n".join(lines)


def _contract(contract: FeatureContract) -> str:
    lines = [
        "## Contract",
        "",
        f"The feature table's contract as recorded with the model (dbt model `{contract.model}`);",
        "the service refuses requests outside it, and monitoring compares against it.",
        "",
    ]
    cells = []
    for column in contract.columns:
        if column.accepted_values:
            allowed = ", ".join(f"`{value}`" for value in column.accepted_values)
        elif column.minimum is not None or column.maximum is not None:
            low = "" if column.minimum is None else _bound(column.minimum)
            high = "" if column.maximum is None else _bound(column.maximum)
            allowed = f"[{low}, {high}]".replace("[, ", "≤ ").replace(", ]", " or more")
        else:
            allowed = "any"
        null = "yes" if column.nullable else "no"
        cells.append([f"`{column.name}`", column.role, column.data_type, null, allowed])
    lines += _table(["column", "role", "type", "null", "allowed"], cells)
    return "\n".join([*lines, ""])


def _preprocessing(facts: CardFacts) -> str:
    lines = [
        "## Pre-processing",
        "",
        "Fitted on the training rows, inside the model's pipeline:",
        "",
    ]
    lines += [f"- {line}" for line in facts.preprocessing] or ["- none"]
    return "\n".join([*lines, ""])


def _features(facts: CardFacts) -> str:
    contract = facts.contract
    lines = [
        "## Feature selection",
        "",
        "The model reads the contract's `feature` columns; the id and the label never, and the",
        "`sensitive` ones ("
        + (", ".join(f"`{name}`" for name in contract.sensitive_columns) or "none declared")
        + ") only for the fairness slices.",
        "",
    ]
    evaluation = facts.evaluation
    if evaluation is None or not evaluation.permutation_importance:
        return "\n".join([*lines, f"Permutation importance: {NOT_RECORDED}.", ""])
    ranked = sorted(evaluation.permutation_importance.items(), key=lambda item: -item[1])
    lines += [
        f"Permutation importance on the held-out rows (drop in {evaluation.headline} when the",
        "feature's values are shuffled):",
        "",
        *_table(
            ["feature", "importance"],
            ([f"`{name}`", f"{value:.4f}"] for name, value in ranked),
            numbers=1,
        ),
        "",
    ]
    return "\n".join(lines)


def _model_selection(facts: CardFacts) -> str:
    run = facts.record.run_params
    hyper = {
        key.removeprefix("model."): value for key, value in run.items() if key.startswith("model.")
    }
    lines = [
        "## Model selection and optimisation",
        "",
        f"Estimator `{run.get('estimator', facts.estimator)}` (`{facts.estimator}`), "
        f"positive class `{run.get('positive_class', '?')}`.",
        "",
        *_table(
            ["hyper-parameter", "value"],
            ([f"`{key}`", f"`{markdown_cell(value)}`"] for key, value in sorted(hyper.items())),
        ),
        "",
    ]
    searched = run.get("search") == "True"
    cv = facts.record.run_metrics.get("cv_precision")
    if searched and facts.params is not None:
        grids = {str(name): grid for name, grid in facts.params.train.search.grid.items()}
        grid = grids.get(run.get("estimator", ""), {})
        lines.append(
            f"Chosen by a cross-validated grid search over {json.dumps(grid)} "
            f"(best cross-validated precision {format_number(cv) if cv is not None else '?'}; "
            "each candidate is a child run in MLflow)."
        )
    else:
        lines.append(
            "No search: `train.search.enabled` was false, so the hyper-parameters are those of "
            "`params.yaml`."
        )
    return "\n".join([*lines, ""])


def _validation(facts: CardFacts) -> str:
    evaluation = facts.evaluation
    lines = ["## Validation", ""]
    if evaluation is None:
        return "\n".join([*lines, f"The evaluation report of the run: {NOT_RECORDED}.", ""])
    champion = evaluation.champion
    against = f"champion v{champion.version}" if champion.version else "champion then"
    lines += [
        f"On the held-out rows; `{evaluation.positive_class}` is the positive class.",
        "",
    ]
    metrics = []
    for name, value in evaluation.metrics.items():
        theirs = champion.metrics.get(name)
        metrics.append(
            [name, format_number(value), "none" if theirs is None else format_number(theirs)]
        )
    lines += _table(["metric", "this version", against], metrics, numbers=2)
    train = {
        key: value for key, value in facts.record.run_metrics.items() if key.startswith("train_")
    }
    if train:
        listed = ", ".join(f"{key} {format_number(value)}" for key, value in sorted(train.items()))
        lines += ["", f"On the training rows: {listed}."]
    lines += ["", "Post-train tests, as the gate read them:", ""]
    lines += _table(
        ["test", "verdict", "detail"],
        (
            [check.name, VERDICT_MARKS[check.status], markdown_cell(check.detail)]
            for check in evaluation.checks
        ),
    )
    if facts.params is not None:
        gate = facts.params.gate
        lines += [
            "",
            f"Gate: {_settings_text(gate.model_dump(mode='json'))}.",
        ]
    verdict = "passed" if evaluation.passed else "failed: " + ", ".join(evaluation.failed)
    lines += ["", f"Verdict of the tests: **{verdict}**."]
    if evaluation.not_assessed:
        lines += ["", "Not assessed, and why:", ""]
        lines += [
            f"- `{check.name}`: {check.detail}"
            for check in evaluation.checks
            if check.status == "not_assessed"
        ]
    return "\n".join([*lines, ""])


def _fairness(facts: CardFacts) -> str:
    evaluation = facts.evaluation
    lines = ["## Slices and fairness", ""]
    if evaluation is None:
        return "\n".join([*lines, f"{NOT_RECORDED}.", ""])
    if not evaluation.slices:
        reasons = [c.detail for c in evaluation.checks if c.name.startswith(("slices", "fairness"))]
        why = reasons[0] if reasons else "no column of the contract has `meta.role: sensitive`"
        return "\n".join([*lines, f"Not assessed: {why}.", ""])
    for attribute, result in evaluation.slices.items():
        lines += [
            f"**`{attribute}`**: demographic-parity difference "
            f"{result.demographic_parity_difference:.3f}, equalized-odds difference "
            f"{result.equalized_odds_difference:.3f}.",
            "",
        ]
        groups = [
            [group]
            + [
                format_number(figures[key]) if key in figures else "n/a"
                for key in ("count", "precision", "recall", "selection_rate")
            ]
            for group, figures in result.slices.items()
        ]
        lines += _table(
            ["group", "rows", "precision", "recall", "selection rate"], groups, numbers=4
        )
        lines.append("")
    return "\n".join(lines)


def _stage(facts: CardFacts, governance: Governance) -> str:
    record = facts.record
    tags = record.tags
    was_champion = record.version in facts.history
    history = " → ".join(f"v{version}" for version in facts.history) or "none yet"
    lines = [
        "## Stage and deployment",
        "",
        f"- Aliases now: {', '.join(f'`{alias}`' for alias in record.aliases) or 'none'}.",
        f"- Promoted: {tags.get('promoted_at', 'never') if was_champion else 'never'}"
        + (f"; rolled back {tags[TAG_ROLLED_BACK]}" if TAG_ROLLED_BACK in tags else "")
        + ".",
        f"- Champion history: {history}.",
        f"- Deployment: {governance.deployment or _OPEN}. The service loads "
        f"`models:/{record.name}@champion`; `make score` scores the unlabelled rows with it.",
    ]
    return "\n".join([*lines, ""])


def _monitoring(facts: CardFacts) -> str:
    lines = ["## Drift and retraining", ""]
    if facts.params is not None:
        thresholds = _settings_text(facts.params.monitor.model_dump(mode="json"))
        lines += [
            f"Thresholds recorded with the run ({thresholds}). Drift, or a performance breach",
            "realised or estimated before labels, makes `make monitor` recommend retraining (exit",
            "code 3 with `FAIL_ON_ALARM=1`); broken inputs raise a data-quality alarm instead",
            "(exit code 4), which holds retraining back until they are repaired.",
            "",
        ]
    summary = facts.monitoring
    if summary is None:
        return "\n".join(
            [*lines, f"No monitoring run of v{facts.record.version} yet (`make monitor`).", ""]
        )
    drifted = (
        [item.feature for item in summary.drift.features if item.drifted] if summary.drift else []
    )
    lines += [
        f"Latest monitoring of v{facts.record.version}, {summary.generated_at}: status "
        f"**{summary.status}** on {summary.window.description} ({summary.window.rows} rows).",
        "",
        f"- Drifted features: {', '.join(f'`{name}`' for name in drifted) or 'none'}"
        + (f" (share {summary.drift.drift_share:.2f})" if summary.drift else "")
        + ".",
        f"- Alarms: {', '.join(f'`{alarm}`' for alarm in summary.alarms) or 'none'}.",
        f"- Performance: {summary.performance.status}"
        + (f" ({'; '.join(summary.performance.reasons)})" if summary.performance.reasons else "")
        + ".",
        f"- Retraining recommended: {'yes' if summary.retrain_recommended else 'no'}.",
    ]
    return "\n".join([*lines, ""])


def _risk(governance: Governance) -> str:
    risk = governance.risk
    level = (
        f"**{risk.level}**: likelihood {risk.likelihood} x impact {risk.impact} = {risk.score}"
        if risk.level
        else f"{_OPEN} (`risk.likelihood` and `risk.impact`, 1 to 5 each)"
    )
    lines = [
        "## Risk and responsible AI",
        "",
        f"Risk level: {level}. Bands: low 1-4, medium 5-9, high 10-16, critical 20-25.",
    ]
    if risk.rationale:
        lines.append(f"Rationale: {risk.rationale}")
    lines += ["", "Mitigations:", ""]
    lines += [f"- {item}" for item in risk.mitigations] or [f"- {_OPEN}"]
    checks = (
        [name.replace("_", " "), markdown_cell(value) if value else _OPEN]
        for name, value in governance.responsible_ai
    )
    lines += ["", *_table(["responsible-AI check", "outcome"], checks)]
    return "\n".join([*lines, ""])


def _review(governance: Governance) -> str:
    lines = ["## Peer review and acceptance", "", "Foreseen improvements:", ""]
    lines += [f"- {item}" for item in governance.improvements] or [f"- {_OPEN}"]
    lines += [
        "",
        *_table(
            ["review", "outcome"],
            [
                ["peer review", _review_text(governance.peer_review)],
                ["acceptance", _review_text(governance.sign_off)],
            ],
        ),
    ]
    return "\n".join([*lines, ""])


# --- helpers ------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numbers: int = 0) -> list[str]:
    """A Markdown table's lines; the last `numbers` columns are right-aligned."""
    marks = ["---"] * (len(headers) - numbers) + ["---:"] * numbers
    return [
        f"| {' | '.join(headers)} |",
        f"| {' | '.join(marks)} |",
        *(f"| {' | '.join(str(cell) for cell in row)} |" for row in rows),
    ]


def _review_text(review: Review) -> str:
    if review.decision is None:
        return _OPEN
    who = ", ".join(filter(None, [review.name, review.role]))
    when = review.date.isoformat() if review.date else "no date"
    notes = f": {review.notes}" if review.notes else ""
    return f"{review.decision} by {who or 'unnamed'} on {when}{notes}"


def _step_text(step: Any) -> str:  # noqa: ANN401 (any fitted sklearn transformer)
    settings = {
        key: getattr(step, key) for key in ("strategy", "handle_unknown") if hasattr(step, key)
    }
    shown = ", ".join(f"{key}={value}" for key, value in settings.items())
    return f"`{type(step).__name__}({shown})`"


def _bound(value: float) -> str:
    return f"{value:,.0f}" if value.is_integer() else f"{value:g}"


def _settings_text(section: dict[str, Any]) -> str:
    """A parameter section's scalar values as `key` value pairs (nested sections left out)."""
    return ", ".join(
        f"`{key}` {json.dumps(value)}"
        for key, value in section.items()
        if not isinstance(value, dict | list)
    )


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _version_number(path: Path) -> int:
    return int(path.stem.rsplit("-v", 1)[1])


def _parsed(kind: type[Recorded], text: str | None) -> Recorded | None:
    """`text` read as `kind`, or None when absent or written by another version of the code."""
    if text is None:
        return None
    try:
        return kind.model_validate_json(text)
    except ValidationError as error:
        logger.warning("Cannot read a recorded %s (%s): left out of the card", kind.__name__, error)
        return None
