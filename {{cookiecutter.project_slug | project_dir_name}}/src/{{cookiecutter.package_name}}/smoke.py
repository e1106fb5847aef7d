"""The smoke test of a deployed prediction service: what CI checks after every deploy.

``make smoke-test SERVICE_URL=...`` runs it against staging, the production canary and the full
rollout (``.github/workflows/deploy.yml``). It asks what a client would: is the service ready,
does it serve the contract this commit was built for, does it answer a valid record, does it
refuse an invalid one with a 4xx, and (for a canary) is the canary share the one deployed. Every
check runs and reports; a failed one fails the command, which starts the rollback.

Only the standard library talks HTTP here: the test runs on a CI runner against any URL.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from .contract import FeatureContract
from .errors import StepError

API_KEY_HEADER = "X-API-Key"
# A 5xx or a refused connection while the deployment starts: asked again until the wait is over.
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class SmokeCheck:
    """One check of the deployed service, and what was seen."""

    name: str
    passed: bool
    detail: str


class SmokeTestFailedError(StepError):
    """The deployed service failed a smoke check; the message lists each failure."""


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: the status and the body parsed as JSON (None when it is not JSON)."""

    status: int
    body: Any


class Service:
    """A deployed service at `url` (http or https), asked with the API key when one is given."""

    def __init__(self, url: str, api_key: str = "", timeout: float = 10.0) -> None:
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            raise SmokeTestFailedError(f"{url}: SERVICE_URL must start with http:// or https://")
        self.url = url.rstrip("/")
        self.headers = {API_KEY_HEADER: api_key} if api_key else {}
        self.timeout = timeout

    def get(self, path: str) -> Reply:
        """``GET path``."""
        return self._send(path, "GET")

    def post(self, path: str, body: object) -> Reply:
        """``POST path`` with `body` as JSON."""
        return self._send(path, "POST", json.dumps(body).encode("utf-8"))

    def _send(self, path: str, method: str, data: bytes | None = None) -> Reply:
        headers = {**self.headers, "Content-Type": "application/json"} if data else self.headers
        # The scheme was checked above: only http(s), never file: or a custom one.
        request = urllib.request.Request(self.url + path, data, headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                status, raw = int(answer.status), answer.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return Reply(status, json.loads(raw))
        except ValueError:
            return Reply(status, None)


def wait_until_ready(service: Service, wait_seconds: float) -> SmokeCheck:
    """``/ready`` answers 200: asked every few seconds until `wait_seconds` have passed."""
    deadline = time.monotonic() + wait_seconds
    seen = "no answer"
    while True:
        try:
            reply = service.get("/ready")
        except (urllib.error.URLError, OSError) as error:
            seen = f"no answer ({error})"
        else:
            if reply.status == 200:  # noqa: PLR2004 (HTTP OK)
                body = reply.body or {}
                return SmokeCheck("ready", True, f"{body.get('model')} v{body.get('version')}")
            reason = (reply.body or {}).get("reason", "") if isinstance(reply.body, dict) else ""
            seen = f"HTTP {reply.status} {reason}".strip()
        if time.monotonic() >= deadline:
            return SmokeCheck("ready", False, f"not ready after {wait_seconds:.0f} s: {seen}")
        time.sleep(POLL_SECONDS)


def check_contract(served: dict[str, Any], expected: FeatureContract) -> SmokeCheck:
    """The champion reads the features, with the types, that this commit's contract declares."""
    champion = served.get("champion") or {}
    if "contract" not in champion:
        return SmokeCheck("contract", False, "GET /model shows no champion contract")
    contract = FeatureContract.model_validate(champion["contract"])
    theirs = {name: contract.column(name).base_type for name in contract.feature_columns}
    ours = {name: expected.column(name).base_type for name in expected.feature_columns}
    if theirs != ours:
        differ = sorted(set(theirs.items()) ^ set(ours.items()))
        return SmokeCheck(
            "contract",
            False,
            f"v{champion.get('version')} serves other features than this commit's contract "
            f"({expected.model}): {differ}; train, register and promote a model on this commit's "
            "data, or deploy the image of the commit the champion was trained on",
        )
    return SmokeCheck("contract", True, f"{len(ours)} features of {expected.model}")


def check_prediction(service: Service, record: dict[str, object]) -> SmokeCheck:
    """A valid record gets 200 and one prediction with a probability for every class."""
    reply = service.post("/predict", record)
    body = reply.body if isinstance(reply.body, dict) else {}
    predictions = body.get("predictions") or []
    if reply.status != 200 or len(predictions) != 1:  # noqa: PLR2004 (HTTP OK)
        return SmokeCheck("prediction", False, f"HTTP {reply.status}: {reply.body}")
    answer, model = predictions[0], body.get("model", {})
    if answer.get("prediction") not in answer.get("probabilities", {}):
        return SmokeCheck("prediction", False, f"the label is not among the classes: {answer}")
    detail = f"{answer['prediction']} (score {answer['score']:.3f}) from v{model.get('version')}"
    return SmokeCheck("prediction", True, detail)


def check_refusal(service: Service, record: dict[str, object], missing: str) -> SmokeCheck:
    """A record without a feature gets a 4xx that names the field, never a 5xx."""
    reply = service.post("/predict", {k: v for k, v in record.items() if k != missing})
    fields = [error.get("field", "") for error in (reply.body or {}).get("errors", [])]
    if 400 <= reply.status < 500 and any(missing in field for field in fields):  # noqa: PLR2004
        return SmokeCheck("refusal", True, f"HTTP {reply.status} naming {missing}")
    return SmokeCheck(
        "refusal", False, f"a record without {missing}: HTTP {reply.status}: {reply.body}"
    )


def check_canary(served: dict[str, Any], fraction: float) -> SmokeCheck:
    """The service routes the deployed share of requests to the challenger."""
    seen = served.get("canary_fraction")
    if seen is None or abs(float(seen) - fraction) > 1e-9:  # noqa: PLR2004 (float equality)
        return SmokeCheck("canary", False, f"canary_fraction is {seen}, {fraction} was deployed")
    challenger = (served.get("challenger") or {}).get("version")
    detail = f"{fraction:.0%} to challenger v{challenger}" if challenger else "no challenger"
    return SmokeCheck("canary", True, detail)


def smoke_test(
    url: str,
    contract: FeatureContract,
    *,
    api_key: str = "",
    canary_fraction: float | None = None,
    wait_seconds: float = 120.0,
) -> list[SmokeCheck]:
    """Check the service at `url`; every check runs, and each is returned.

    Raises:
        SmokeTestFailedError: when any check fails, listing each one with what was seen.
    """
    service = Service(url, api_key)
    checks = [wait_until_ready(service, wait_seconds)]
    if checks[0].passed:
        served = service.get("/model")
        if served.status == 200 and isinstance(served.body, dict):  # noqa: PLR2004 (HTTP OK)
            checks.append(check_contract(served.body, contract))
            if canary_fraction is not None:
                checks.append(check_canary(served.body, canary_fraction))
        else:
            checks.append(SmokeCheck("contract", False, f"GET /model: HTTP {served.status}"))
        record = contract.example_record()
        checks.append(check_prediction(service, record))
        checks.append(check_refusal(service, record, contract.feature_columns[0]))
    failed = [check for check in checks if not check.passed]
    if failed:
        lines = "\n".join(f"  {check.name}: {check.detail}" for check in failed)
        raise SmokeTestFailedError(f"{url} failed {len(failed)} smoke check(s):\n{lines}")
    return checks
