"""MLflow plumbing shared by the model steps: connect, check the store, log a model.

The tracking store and the registry are the same URI (``MLFLOW_TRACKING_URI``; a SQLite file in the
project by default). Artifacts of the experiments this project creates go under
``MLFLOW_ARTIFACT_ROOT`` (by default ``mlartifacts/`` in the project, or the tracking server's own
artifact store when the URI is a server).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import urllib.error
import urllib.request
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ConfigError
from .errors import StepError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models.model import ModelInfo
    from sklearn.pipeline import Pipeline

    from .config import Settings

logger = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
CONTRACT_ARTIFACT = "contract/feature_contract.json"

# The model's runtime requirements, pinned to what trained it. Listing them explicitly skips
# MLflow's requirement inference, which imports the model in a subprocess (about 6 s per model).
MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy", "mlflow")

# skops loads only the types it is told to trust. We trust exactly the types of the fitted
# pipeline, and only when they come from scikit-learn or numpy: a type from anywhere else means
# an unexpected object in the model, and logging it is refused rather than silently trusted.
# (skops, not pickle/cloudpickle: loading a model must not run arbitrary code.)
TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.")


class TrackingUnavailableError(StepError):
    """The tracking store or registry cannot be reached; nothing was written."""


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with a clear message, when the tracking store cannot be used.

    MLflow itself retries an unreachable server for minutes and reports a stack of HTTP errors;
    this check answers in seconds, before any run or model version is created.

    Raises:
        TrackingUnavailableError: when the server does not answer or the database is unusable.
    """
    hint = "start it, or set MLFLOW_TRACKING_URI to a reachable store"
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(  # noqa: S310 (the scheme is checked just above)
                uri.rstrip("/") + "/health", timeout=timeout
            ) as response:
                if response.status != 200:  # noqa: PLR2004 (HTTP OK)
                    raise TrackingUnavailableError(
                        f"{uri}: health check answered {response.status}"
                    )
        except (urllib.error.URLError, OSError) as error:
            raise TrackingUnavailableError(
                f"{uri}: tracking server unreachable ({error}); {hint}"
            ) from error
    elif uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.parent.is_dir():
            raise TrackingUnavailableError(f"{uri}: folder {path.parent} does not exist; {hint}")
        try:
            with sqlite3.connect(path) as connection:
                connection.execute("pragma schema_version").fetchone()
        except sqlite3.Error as error:
            raise TrackingUnavailableError(
                f"{uri}: not a usable SQLite database ({error}); {hint}"
            ) from error


def require_a_shared_store(settings: Settings, otherwise: str = "") -> None:
    """Outside ``ENVIRONMENT=local``, refuse the embedded store (``MLFLOW_TRACKING_URI`` unset).

    Args:
        settings: The environment and the tracking URI.
        otherwise: Another way out, added to the message (serving: a bundle).

    Raises:
        ConfigError: naming the variable and the fix.
    """
    if settings.environment != "local" and settings.tracking_store_is_embedded:
        raise ConfigError(
            f"MLFLOW_TRACKING_URI is not set: ENVIRONMENT={settings.environment} needs the team's "
            f"tracking server (e.g. MLFLOW_TRACKING_URI=http://mlflow:5000){otherwise}; the "
            f"project's own {settings.mlflow_tracking_uri} is for ENVIRONMENT=local"
        )


def connect(settings: Settings, *, create: bool = True) -> MlflowClient:
    """The process's client of the tracking store and registry, after checking it answers.

    One client per store and process (cached); the store is checked on every call, because a
    server can go away while a service runs. MLflow's artifact helpers read the process-wide
    URIs, so those are set too, but only when they change.

    Args:
        settings: ``MLFLOW_TRACKING_URI`` names the store.
        create: False for the steps that only read (serving, scoring, monitoring): a SQLite store
            that does not exist yet is then an error, not a new empty file.

    Raises:
        ConfigError: outside ``ENVIRONMENT=local`` with no ``MLFLOW_TRACKING_URI``: runs and
            models in a file on one machine are no team's registry.
        TrackingUnavailableError: when the store cannot be reached (or, with `create` False,
            does not exist).
    """
    import mlflow

    require_a_shared_store(settings)
    uri = settings.mlflow_tracking_uri
    if not create and uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        raise TrackingUnavailableError(
            f"registry {uri} not found: train and promote a model first (make all)"
        )
    check_reachable(uri)
    # Progress bars for local artifact copies only clutter the logs of a pipeline step.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    if mlflow.get_registry_uri() != uri:
        mlflow.set_registry_uri(uri)
    return _client(uri)


@lru_cache(maxsize=8)
def _client(uri: str) -> MlflowClient:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def run_artifact_text(client: MlflowClient, run_id: str, path: str) -> str:
    """The text of artifact `path` of run `run_id`, read through `client`'s store.

    Raises:
        MlflowException: when the run has no such artifact (or OSError reading it).
    """
    with tempfile.TemporaryDirectory(prefix="artifact-") as folder:
        return Path(client.download_artifacts(run_id, path, folder)).read_text(encoding="utf-8")


def ensure_experiment(client: MlflowClient, settings: Settings) -> str:
    """The id of the project's experiment, created where its artifacts belong.

    That is ``MLFLOW_ARTIFACT_ROOT``; with a tracking server and no root set, the server's own.
    """
    experiment = client.get_experiment_by_name(settings.experiment_name)
    if experiment is not None:
        return str(experiment.experiment_id)
    root = settings.mlflow_artifact_root
    logger.info(
        "Creating experiment %r (artifacts in %s)",
        settings.experiment_name,
        root or "the tracking server's artifact store",
    )
    return str(client.create_experiment(settings.experiment_name, artifact_location=root or None))


def pip_requirements() -> list[str]:
    """The model's requirements, pinned to the installed versions."""
    pinned = []
    for name in MODEL_REQUIREMENTS:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def trusted_types(model: Pipeline) -> list[str]:
    """The non-default types skops must trust to load `model` (see TRUSTED_TYPE_PREFIXES).

    Raises:
        TypeError: when the model holds a type from outside scikit-learn and numpy.
    """
    import skops.io

    types = sorted(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    foreign = [name for name in types if not name.startswith(TRUSTED_TYPE_PREFIXES)]
    if foreign:
        raise TypeError(f"the model holds types skops should not trust: {foreign}")
    return types


def log_sklearn_model(model: Pipeline, example: pd.DataFrame) -> ModelInfo:
    """Log `model` to the active run with a signature, an input example and pinned requirements.

    Args:
        model: The fitted pipeline.
        example: A few rows of model input (the signature is inferred from them).

    Returns:
        MLflow's record of the logged model (``model_uri`` is ``models:/<model id>``).
    """
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(example, model.predict(example))
    info: ModelInfo = mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        signature=signature,
        input_example=example,
        pip_requirements=pip_requirements(),
        serialization_format="skops",
        skops_trusted_types=trusted_types(model),
    )
    return info


def load_sklearn_model(model_uri: str) -> Pipeline:
    """Load a logged pipeline back (by ``models:/...`` or ``runs:/...`` URI)."""
    import mlflow.sklearn

    model: Pipeline = mlflow.sklearn.load_model(model_uri)
    return model
