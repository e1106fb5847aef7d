"""The docs site's pages that come from the project's state, written before every build.

``make docs`` runs :func:`write_generated_pages` first, so the site always shows this checkout as
it is: the dbt docs of the feature table, the latest validation result, and the API answering a
real request with the champion it serves. They go to ``docs/generated/`` (git-ignored); a page
whose source does not exist yet says which step makes it, so the strict build never breaks on a
fresh clone and never shows a figure that was not produced.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StepError
from ..evaluation.summary import markdown_cell

if TYPE_CHECKING:
    from ..config import Settings
    from ..contract import FeatureContract

GENERATED_DIR = Path("docs/generated")
API_EXAMPLE = "api-example.md"


class DocsBuildError(StepError):
    """A generated page could not be written; the message says which and why."""


@dataclass(frozen=True)
class ApiExchange:
    """One request to the service and its answer, as they went over HTTP."""

    method: str
    path: str
    body: Any
    status: int
    answer: Any
    version: str | None


def write_generated_pages(settings: Settings) -> list[Path]:
    """Write every generated page into ``docs/generated/``, replacing what was there.

    Raises:
        DocsBuildError: when dbt cannot write its docs.
    """
    folder = settings.project_dir / GENERATED_DIR
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return [
        write_validation_page(settings, folder / "validation.md"),
        write_dbt_docs(settings, folder / "dbt" / "index.html"),
        *write_api_pages(settings, folder),
    ]


def write_validation_page(settings: Settings, path: Path) -> Path:
    """The latest validation result as a page: the verdict, then every expectation."""
    from ..validation import read_validation_report

    report = read_validation_report(settings)
    lines = ["# Latest validation result", ""]
    if report is None:
        lines.append("No validation has run in this checkout yet: `make validate` runs it.")
    else:
        verdict = "passed" if report.success else f"FAILED ({len(report.failed)} expectation(s))"
        lines += [
            f"Suite `{report.suite}` on {report.rows:,} rows, {report.validated_at}: "
            f"**{verdict}**, {report.evaluated} expectations evaluated "
            "(`reports/validation/latest.json`).",
            "",
            "| expectation | column | result | observed |",
            "| --- | --- | --- | --- |",
        ]
        for outcome in report.outcomes:
            seen = outcome.examples or outcome.observed
            observed = markdown_cell(json.dumps(seen, default=str)) if seen is not None else ""
            lines.append(
                f"| {outcome.expectation} | {outcome.column or ''} | "
                f"{'pass' if outcome.success else '**FAIL**'} | {observed[:120]} |"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_dbt_docs(settings: Settings, path: Path) -> Path:
    """The dbt docs site as one self-contained HTML file (``dbt docs generate --static``).

    With no warehouse built yet, the catalog (column types as built) is left empty and the
    models, sources, tests and lineage graph are still documented.

    Raises:
        DocsBuildError: when dbt fails, with the end of its output.
    """
    from ..data.build import run_dbt

    with tempfile.TemporaryDirectory(prefix="dbt-docs-") as target:
        args = ["docs", "generate", "--static", "--target-path", target]
        if settings.dbt_target == "duckdb" and not settings.warehouse_path.is_file():
            args.append("--empty-catalog")
        completed = run_dbt(settings, args)
        built = Path(target) / "static_index.html"
        if completed.returncode != 0 or not built.is_file():
            tail = "\n".join(completed.stdout.splitlines()[-15:])
            raise DocsBuildError(f"`dbt docs generate` failed:\n{tail}")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, path)
    return path


def write_api_pages(settings: Settings, folder: Path) -> list[Path]:
    """The OpenAPI document and a real exchange with the service, as the API page includes them.

    The service runs in-process on the champion, with its prediction log off: the example's
    prediction is a real answer of the served model, and monitoring never sees it.
    """
    document, exchanges = _exchange_with_service(settings)
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    example = folder / API_EXAMPLE
    example.write_text(_api_markdown(settings, document, exchanges), encoding="utf-8")
    return [spec, example]


def _exchange_with_service(settings: Settings) -> tuple[dict[str, Any], list[ApiExchange]]:
    """The service's OpenAPI document, and two requests to it: a valid record and a bad one."""
    from fastapi.testclient import TestClient

    from ..serving.app import create_app
    from ..serving.scoring import VERSION_HEADER

    quiet = settings.model_copy(
        update={
            "prediction_log_enabled": False,
            "serving_poll_seconds": 0.0,
            "serving_startup_wait_seconds": 30.0,
            "serving_canary_fraction": 0.0,
            "serving_shadow": False,
        }
    )
    headers = {"X-API-Key": quiet.api_key.get_secret_value()} if quiet.api_key else {}
    with TestClient(create_app(quiet)) as client:
        document = client.get("/openapi.json").json()
        state = client.app.state.serving  # type: ignore[attr-defined]
        if state.champion is None:
            return document, []
        contract = state.champion.contract
        record = example_row(settings, contract)
        exchanges = []
        missing = contract.feature_columns[0]
        for body in ([record], [{key: value for key, value in record.items() if key != missing}]):
            answer = client.post("/predict", json=body, headers=headers)
            exchanges.append(
                ApiExchange(
                    method="POST",
                    path="/predict",
                    body=body,
                    status=answer.status_code,
                    answer=answer.json(),
                    version=answer.headers.get(VERSION_HEADER),
                )
            )
    return document, exchanges


def example_row(settings: Settings, contract: FeatureContract) -> dict[str, Any]:
    """A row nightly scoring would score (label not known yet), as a request record.

    The served contract decides the fields (the warehouse may already hold a feature the
    champion does not read); without such a row, the contract's own example record.
    """
    from ..data.warehouse import load_feature_table

    wanted = [name for name in contract.column_names if name != contract.label_column]
    try:
        table = load_feature_table(settings, rows="unlabelled")
    except StepError:
        return contract.example_record()
    if table.empty or not set(wanted) <= set(table.columns):
        return contract.example_record()
    row = json.loads(table[wanted].head(1).to_json(orient="records"))[0]
    # JSON numbers from float64 columns: whole-number columns read better as whole numbers.
    return {
        name: int(value) if contract.column(name).is_integer and value is not None else value
        for name, value in row.items()
    }


def _api_markdown(
    settings: Settings, document: dict[str, Any], exchanges: list[ApiExchange]
) -> str:
    when = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = []
    if exchanges:
        served = exchanges[0].version or "?"
        lines += [
            f"Generated by `make docs` on {when}: the service, in-process, served "
            f"`{settings.model_name}` v{served} (the champion) and answered these requests.",
            "",
        ]
        key = " -H 'X-API-Key: $API_KEY'" if settings.api_key else ""
        for exchange in exchanges:
            body = json.dumps(exchange.body)
            lines += [
                f"**{exchange.method} {exchange.path}**, answered **{exchange.status}**:",
                "",
                "```bash",
                f"curl -s -X {exchange.method} http://127.0.0.1:{settings.port}{exchange.path} "
                f"-H 'Content-Type: application/json'{key} -d '{body}'",
                "```",
                "",
                "```json",
                json.dumps(exchange.answer, indent=2),
                "```",
                "",
            ]
    else:
        lines += [
            f"No champion is registered in this checkout yet (`make all` makes one), so there is "
            f"no example answer here; the request schema below is the placeholder the service "
            f"shows until it loads a model. Generated by `make docs` on {when}.",
            "",
        ]
    lines += [
        "| method | path | what it does | answers |",
        "| --- | --- | --- | --- |",
    ]
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            codes = ", ".join(sorted(operation.get("responses", {})))
            summary = markdown_cell(operation.get("summary") or operation.get("description", ""))
            lines.append(f"| {method.upper()} | `{path}` | {summary} | {codes} |")
    lines += ["", "The whole document: [openapi.json](generated/openapi.json).", ""]
    return "\n".join(lines)
