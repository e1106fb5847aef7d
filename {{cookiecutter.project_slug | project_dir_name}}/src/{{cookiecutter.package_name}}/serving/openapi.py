"""The OpenAPI document (``/openapi.json``, ``/docs``): request bodies of the served contract.

The request bodies are the record schema of the version being served now (see :mod:`.records`),
rebuilt when a new version is loaded; before that, a placeholder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.openapi.utils import get_openapi

from .errors import JSON

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .state import ServingState

CSV = "text/csv"
CSV_DESCRIPTION = "A header row of feature names, then one record per line (MLflow's CSV input)."


def body_placeholder() -> dict[str, Any]:
    """The request body before a model is loaded (the loaded contract replaces it)."""
    return {"required": True, "content": {JSON: {"schema": {"type": ["object", "array"]}}}}


def serve_contract_openapi(app: FastAPI, state: ServingState, max_batch: int) -> None:
    """Make ``app.openapi()`` describe the request bodies of the version being served."""

    def contract_openapi() -> dict[str, Any]:
        champion = state.champion
        version = champion.version if champion else None
        cached = app.openapi_schema
        if cached is not None and cached.get("x-model-version") == version:
            return cached
        document = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        if champion is not None:
            validator = champion.validator
            document["paths"]["/predict"]["post"]["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": validator.body_schema(max_batch)}},
            }
            document["paths"]["/invocations"]["post"]["requestBody"] = {
                "required": True,
                "content": {
                    JSON: {"schema": validator.invocations_schema(max_batch)},
                    CSV: {"schema": {"type": "string", "description": CSV_DESCRIPTION}},
                },
            }
        document["x-model-version"] = version
        app.openapi_schema = document
        return document

    app.openapi = contract_openapi  # type: ignore[method-assign]
