"""The service's response shapes, and the error every refusal is answered with.

The request side (the record schema derived from the served model's contract, and the parsing
of request bodies) is in :mod:`.records`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class InputError(ValueError):
    """A request the service refuses; `status` is the HTTP status, `errors` name each field."""

    def __init__(self, status: int, errors: list[FieldError]) -> None:
        self.status = status
        self.errors = errors
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))


class FieldError(BaseModel):
    """One problem with a request, and where it is (``records[2].country``, ``body``, ...)."""

    field: str
    message: str
    type: str


class ErrorResponse(BaseModel):
    """Every refusal has this shape: a summary, one entry per problem, and the request id."""

    error: str = Field(description="A stable code: invalid_input, payload_too_large, ...")
    message: str = Field(description="Every problem in one line, each naming its field.")
    errors: list[FieldError] = Field(default_factory=list)
    request_id: str = ""


class ModelRef(BaseModel):
    """Which model version answered."""

    name: str
    version: str
    alias: str


class Prediction(BaseModel):
    """The model's answer for one record."""

    prediction: str = Field(description="The predicted label.")
    score: float = Field(description="Probability of the positive class.")
    probabilities: dict[str, float] = Field(description="Probability of every class.")
    id: int | str | None = Field(default=None, description="The record's id, when it gave one.")


class PredictResponse(BaseModel):
    """The answer to ``POST /predict``: one prediction per record, in request order."""

    request_id: str
    model: ModelRef
    predictions: list[Prediction]


class InvocationsResponse(BaseModel):
    """MLflow's scoring-server answer: the predicted labels, in request order."""

    predictions: list[str]


class Health(BaseModel):
    """Liveness: the process answers."""

    status: str
    version: str


class Readiness(BaseModel):
    """Readiness: a model is loaded (and which), or why not."""

    ready: bool
    reason: str
    model: str | None = None
    version: str | None = None


class ReloadResponse(BaseModel):
    """What ``POST /admin/reload`` found."""

    champion: str | None
    challenger: str | None
    changed: list[str]
    error: str | None = None


class ServedModels(BaseModel):
    """``GET /model``: the versions being served, their lineage and contract, the rollout."""

    champion: dict[str, Any] | None
    challenger: dict[str, Any] | None
    shadow: bool
    canary_fraction: float
    poll_seconds: float
    last_error: str | None
