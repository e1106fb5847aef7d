"""The team's governance answers (``governance.yaml``): owner, intended use, risk, sign-off.

The model card takes every fact it can from the registry and the run; what only people can say
(what the model is for, who answers for it, how risky it is, who accepted it) comes from this
file. An answer left empty is an *open item* of the card, never a guess: :func:`open_items` lists
them. Unknown keys are refused, naming the key, so a typo does not silently drop an answer.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..params import load_yaml_model

if TYPE_CHECKING:
    from pathlib import Path

GOVERNANCE_FILE = "governance.yaml"
Score = Annotated[int, Field(ge=1, le=5)]
# Likelihood x impact on a 5 x 5 matrix, and the level each product band means.
RISK_LEVELS = ((4, "low"), (9, "medium"), (16, "high"), (25, "critical"))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Section):
    """Someone to reach about the model, and why."""

    name: str
    role: str
    email: str | None = None


class Owner(_Section):
    """The team that answers for the model."""

    team: str | None = None
    email: str | None = None


class Business(_Section):
    """The problem, told as why (the problem) → how (the decision it feeds) → what (success)."""

    problem: str | None = None
    decision: str | None = None
    success: str | None = None


class Risk(_Section):
    """Likelihood x impact of the model erring in a way that harms, and what limits it."""

    likelihood: Score | None = None
    impact: Score | None = None
    rationale: str | None = None
    mitigations: list[str] = Field(default_factory=list)

    @property
    def score(self) -> int | None:
        """Likelihood x impact (1-25), or None until both are given."""
        if self.likelihood is None or self.impact is None:
            return None
        return self.likelihood * self.impact

    @property
    def level(self) -> str | None:
        """``low`` (1-4), ``medium`` (5-9), ``high`` (10-16) or ``critical`` (20-25)."""
        score = self.score
        if score is None:
            return None
        return next(level for bound, level in RISK_LEVELS if score <= bound)


class ResponsibleAI(_Section):
    """The responsible-AI checks a reviewer answers; None while a check has not been done."""

    human_oversight: str | None = None
    explainability: str | None = None
    privacy: str | None = None
    contestability: str | None = None
    fairness_review: str | None = None


class Review(_Section):
    """A peer review or the acceptance of the model: who, when, and what they decided."""

    name: str | None = None
    role: str | None = None
    date: dt.date | None = None
    decision: Literal["accepted", "accepted with conditions", "rejected"] | None = None
    notes: str | None = None


class Governance(_Section):
    """Everything ``governance.yaml`` holds; every field may stay empty (an open item)."""

    owner: Owner = Owner()
    contacts: list[Contact] = Field(default_factory=list)
    business: Business = Business()
    intended_use: str | None = None
    out_of_scope: list[str] = Field(default_factory=list)
    deployment: Literal["batch", "online", "batch and online"] | None = None
    risk: Risk = Risk()
    responsible_ai: ResponsibleAI = ResponsibleAI()
    improvements: list[str] = Field(default_factory=list)
    peer_review: Review = Review()
    sign_off: Review = Review()


def load_governance(path: Path) -> Governance:
    """Read ``governance.yaml``; a missing file is all answers open, a bad one is refused.

    Raises:
        ConfigError: naming the key and the problem, when the file is not valid.
    """
    if not path.is_file():
        return Governance()
    return load_yaml_model(path, Governance)


def open_items(governance: Governance) -> list[str]:
    """The answers still missing, each as ``key: what to write``, in the file's order."""
    wanted = {
        "owner.team": (governance.owner.team, "the team that answers for the model"),
        "owner.email": (governance.owner.email, "the team's address"),
        "contacts": (governance.contacts, "who to call (on-call, business owner)"),
        "business.problem": (governance.business.problem, "the problem the model solves"),
        "business.decision": (governance.business.decision, "the decision its output feeds"),
        "business.success": (governance.business.success, "how the business judges it"),
        "intended_use": (governance.intended_use, "who uses the predictions, and for what"),
        "out_of_scope": (governance.out_of_scope, "uses the model must not be put to"),
        "deployment": (governance.deployment, "batch, online, or batch and online"),
        "risk.likelihood": (governance.risk.likelihood, "1 (rare) to 5 (almost certain)"),
        "risk.impact": (governance.risk.impact, "1 (negligible) to 5 (severe)"),
        "risk.mitigations": (governance.risk.mitigations, "what limits the harm"),
        **{
            f"responsible_ai.{name}": (value, "the check's outcome")
            for name, value in governance.responsible_ai
        },
        "improvements": (governance.improvements, "improvements foreseen"),
        "peer_review": (governance.peer_review.decision, "reviewer, date and decision"),
        "sign_off": (governance.sign_off.decision, "who accepted the model, when"),
    }
    return [f"`{key}`: {hint}" for key, (value, hint) in wanted.items() if value in (None, [])]
