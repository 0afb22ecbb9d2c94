"""Logging, loading and describing models in MLflow, shared by the assets and the command line."""

from __future__ import annotations

import base64
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn.pipeline import Pipeline

from lakehouse.resources import LakeStorage, MlflowTracking

if TYPE_CHECKING:
    from lakehouse.ml.lineage import ModelLineage

# skops refuses to load these unless told: they are scikit-learn's own types of a histogram
# gradient-boosting model and its input validation, written by this project, never by a stranger.
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]

# Given explicitly: inferring them costs seconds per model.
PIP_REQUIREMENTS = [
    f"{name}=={version(name)}" for name in ("scikit-learn", "numpy", "pandas", "skops", "scipy")
]


def git_commit() -> str | None:
    """The checkout's commit, when the code runs from a git checkout."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def log_model(model: Pipeline, inputs: pd.DataFrame, registered_name: str) -> mlflow.models.model.ModelInfo:
    """Log and register the pipeline in the active run: skops format, signature, example, requirements."""
    sample = inputs.head(200)
    return mlflow.sklearn.log_model(
        model,
        name="model",
        signature=infer_signature(sample, model.predict_proba(sample)),
        input_example=inputs.head(5),
        pip_requirements=PIP_REQUIREMENTS,
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
        registered_model_name=registered_name,
    )


def load_model(tracking: MlflowTracking, model_version: str | int) -> Pipeline:
    """A registered version's scikit-learn pipeline (``model_version`` is a number or ``@alias``)."""
    version = str(model_version)
    reference = f"models:/{tracking.model_name}{version if version.startswith('@') else '/' + version}"
    with tracking.activated():
        return mlflow.sklearn.load_model(reference)


def log_png(name: str, png: bytes) -> None:
    """Log a PNG to the active run as ``plots/<name>``, byte for byte."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(png)
        mlflow.log_artifact(str(path), "plots")


def png_markdown(title: str, png: bytes) -> str:
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


@dataclass(frozen=True)
class Registered:
    version: str
    run_id: str
    model_uri: str


def register(
    tracking: MlflowTracking,
    model: Pipeline,
    example: pd.DataFrame,
    lineage: ModelLineage,
    params: dict,
    metrics: dict[str, float],
    baseline: dict[str, float],
    plots: dict[str, bytes],
    lake: LakeStorage,
) -> Registered:
    """Log a trained model in a new MLflow run (parameters, metrics, plots, its Delta inputs as datasets)
    and register it as a new version of the model, tagged with its lineage and holdout metrics."""
    tags = lineage.to_tags()
    with (
        tracking.activated() as experiment_id,
        mlflow.start_run(
            experiment_id=experiment_id, run_name=f"dagster-{lineage.dagster_run_id[:8]}", tags=tags
        ) as run,
    ):
        mlflow.log_params(params)
        mlflow.log_metrics(
            {f"holdout_{k}": v for k, v in metrics.items()}
            | {f"baseline_{k}": v for k, v in baseline.items()}
        )
        lineage.log_inputs(lake)
        for name, png in plots.items():
            log_png(name, png)
        info = log_model(model, example, tracking.model_name)
    version = str(info.registered_model_version)
    client = tracking.client()
    for name, value in tags.items():
        client.set_model_version_tag(tracking.model_name, version, name, value)
    for name, value in metrics.items():
        client.set_model_version_tag(tracking.model_name, version, f"holdout_{name}", f"{value:.6f}")
    return Registered(version, run.info.run_id, info.model_uri)


def run_url(tracking: MlflowTracking, run_id: str) -> str:
    """The address of a run in the tracking's MLflow UI (``make dev`` starts one)."""
    experiment = tracking.client().get_run(run_id).info.experiment_id
    return f"{tracking.ui_url.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def run_plots(tracking: MlflowTracking, run_id: str) -> dict[str, bytes]:
    """The PNG plots a training run logged, by file name (``roc.png``...)."""
    with tempfile.TemporaryDirectory() as folder:
        local = Path(tracking.client().download_artifacts(run_id, "plots", folder))
        return {path.name: path.read_bytes() for path in sorted(local.glob("*.png"))}
