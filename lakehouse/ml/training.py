"""Training the delay model: which rows, whether they were trained on before, fitting, evaluating, and
registering the version in MLflow with its metrics, plots and lineage; and reproducing a version from
Delta time travel. Plain functions over the resources: the ``ml/delay_model`` asset calls ``train`` and
reports what it returns; ``lakehouse reproduce`` calls ``reproduce``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl
from mlflow.entities.model_registry import ModelVersion

from lakehouse.catalog import DELAY_MODEL, FLIGHT_FEATURES, Table
from lakehouse.lib.features import FEATURE_COLUMNS
from lakehouse.lib.model import (
    LABEL,
    TrainingWindow,
    baseline_scores,
    build_pipeline,
    calibration_plot,
    evaluate,
    importance,
    importance_plot,
    model_input,
    require_trainable,
    roc_plot,
    scores_of,
)
from lakehouse.ml import registry
from lakehouse.ml.lineage import ModelLineage, model_lineage
from lakehouse.reads import count_features, features_of_days, read_features
from lakehouse.resources import LakeStorage, MlflowTracking, Warehouse

PARAMS = ("learning_rate", "max_iter", "max_leaf_nodes", "l2_regularization")
METRICS = ("roc_auc", "average_precision", "brier", "log_loss")


def content_hash(frame: pl.DataFrame, rows_per_slice: int = 100_000) -> str:
    """A fingerprint of the training rows' values (features and label), independent of row order and of
    how the frame is laid out in memory (Arrow buffers differ between equal frames; their CSV does not).

    The CSV is hashed a slice at a time: the digest is the whole CSV's, without the whole text in memory.
    """
    rows = frame.select("flight_id", *FEATURE_COLUMNS, LABEL)
    order = rows["flight_id"].arg_sort()  # gathered a slice at a time: no sorted copy of the frame
    digest = hashlib.sha256()
    for start in range(0, max(rows.height, 1), rows_per_slice):
        chunk = rows.select(pl.all().gather(order.slice(start, rows_per_slice)))
        digest.update(chunk.write_csv(include_header=start == 0).encode())
    return digest.hexdigest()


def split(
    features: pl.DataFrame, window: TrainingWindow, every: int = 1
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Training and holdout rows, each in flight_id order (past 200,000 rows the histogram binning
    subsamples rows, so the same rows in another order would make another model), the training rows
    thinned to every ``every``-th as ``read_features`` thins them."""
    ordered = features.sort("flight_id")
    return (
        ordered.filter(pl.col("flight_date").is_between(window.train_start, window.train_end)).gather_every(
            every
        ),
        ordered.filter(pl.col("flight_date").is_between(window.holdout_start, window.holdout_end)),
    )


def training_key(data_hash: str, window: TrainingWindow, params: dict, code_version: str) -> str:
    """What makes a model: its training rows and its holdout (the same days split another way make
    another model), its parameters and the code that trains it."""
    made_of = [data_hash, window.describe(), params, code_version]
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()


def registered_with_key(mlflow: MlflowTracking, key: str) -> ModelVersion | None:
    """The registered version trained from exactly these rows, parameters and code, if any."""
    versions = mlflow.client().search_model_versions(f"name='{mlflow.model_name}'")
    matching = [v for v in versions if v.tags.get(ModelLineage.TAGS["training_key"]) == key]
    return min(matching, key=lambda v: int(v.version)) if matching else None


@dataclass(frozen=True)
class Trained:
    """What training produced (or found already registered): the version, its metrics against the
    baseline on the holdout, and, when it trained, the plots."""

    version: str
    run_id: str
    lineage: ModelLineage
    metrics: dict[str, float]
    baseline: dict[str, float]
    reused: bool
    late_rate_train: float | None = None
    plots: dict[str, bytes] | None = None
    model_uri: str | None = None


def silver_inputs(table: Table = FLIGHT_FEATURES) -> list[str]:
    """The silver tables a model's features are computed from, by path."""
    return [upstream.path for upstream in table.upstream]


def _reused(mlflow: MlflowTracking, version: ModelVersion) -> Trained:
    run_metrics = mlflow.client().get_run(version.run_id).data.metrics
    return Trained(
        version=str(version.version),
        run_id=version.run_id,
        lineage=ModelLineage.from_tags(version.tags),
        metrics={k: run_metrics[f"holdout_{k}"] for k in METRICS},
        baseline={k: run_metrics[f"baseline_{k}"] for k in METRICS},
        reused=True,
        plots=registry.run_plots(mlflow, version.run_id),
        model_uri=f"models:/{mlflow.model_name}/{version.version}",
    )


def training_rows(
    warehouse: Warehouse, window: TrainingWindow, max_train_rows: int
) -> tuple[pl.DataFrame, pl.DataFrame, int, int]:
    """The training rows (every k-th flight past ``max_train_rows``) and the whole holdout, with the rows
    available and the k."""
    available = count_features(warehouse, window.train_start, window.train_end)
    every = max(1, -(-available // max_train_rows))  # the smallest k that fits
    train_rows = read_features(warehouse, window.train_start, window.train_end, every)
    holdout = read_features(warehouse, window.holdout_start, window.holdout_end)
    if train_rows.is_empty() or holdout.is_empty():
        raise ValueError(f"no flights to train or hold out in {window.describe()}")
    require_trainable(train_rows, window)
    return train_rows, holdout, available, every


def evaluated(
    model, train_rows: pl.DataFrame, holdout: pl.DataFrame
) -> tuple[dict[str, float], dict[str, float], dict[str, bytes]]:
    """The model's and the baseline's metrics on the holdout, and the plots of both."""
    labels = holdout[LABEL].to_numpy()
    scores, baseline = scores_of(model, holdout), baseline_scores(train_rows, holdout)
    curves = {"model": scores, "baseline": baseline}
    plots = {
        "roc.png": roc_plot(labels, curves),
        "calibration.png": calibration_plot(labels, curves),
        "importance.png": importance_plot(importance(model, holdout)),
    }
    return evaluate(labels, scores), evaluate(labels, baseline), plots


def train(
    window: TrainingWindow,
    params: dict,
    max_train_rows: int,
    warehouse: Warehouse,
    lake: LakeStorage,
    mlflow: MlflowTracking,
    run: dict[str, str],
    log: Callable[[str], None] = print,
) -> Trained:
    """Train on ``window`` with ``params`` (thinning past ``max_train_rows``) and register the model, or
    find the version trained from the same rows, parameters and code. ``run`` names the Dagster run,
    asset and code version for the lineage."""
    train_rows, holdout, available, every = training_rows(warehouse, window, max_train_rows)
    log(f"training on {train_rows.height:,} flights (every {every} of {available:,}), {window.describe()}")
    data_hash = content_hash(pl.concat([train_rows, holdout]))  # rechunk=False: no copy
    key = training_key(data_hash, window, params, run["code_version"])
    existing = registered_with_key(mlflow, key)
    if existing is not None:
        # The same rows, parameters and code made this version already: training again would register a
        # twin (and move the champion to it), so the lakehouse stays as it is.
        log(f"{mlflow.model_name} version {existing.version} was trained on the same rows: reused")
        return _reused(mlflow, existing)
    model = build_pipeline(**{k: params[k] for k in PARAMS})
    inputs, labels = model_input(train_rows), train_rows[LABEL].to_numpy()
    model.fit(inputs, labels)
    example = inputs.head(200)  # for the signature and input example; the rest of the inputs can go
    del inputs
    log("fitted; scoring the holdout")

    metrics, baseline_metrics, plots = evaluated(model, train_rows, holdout)
    lineage = ModelLineage(
        input_versions={t: lake.version(t) for t in silver_inputs()},
        features_table=FLIGHT_FEATURES.warehouse_table,
        window=window,
        train_rows=train_rows.height,
        train_rows_available=available,
        train_every=every,
        holdout_rows=holdout.height,
        content_hash=data_hash,
        training_key=key,
        dagster_run_id=run["run_id"],
        dagster_asset=DELAY_MODEL.path,
        code_version=run["code_version"],
        git_commit=registry.git_commit() or "unknown",
    )
    logged = registry.register(
        mlflow, model, example, lineage, params, metrics, baseline_metrics, plots, lake
    )
    log(f"registered {mlflow.model_name} version {logged.version}: ROC AUC {metrics['roc_auc']:.4f}")
    return Trained(
        version=logged.version,
        run_id=logged.run_id,
        lineage=lineage,
        metrics=metrics,
        baseline=baseline_metrics,
        reused=False,
        late_rate_train=float(labels.mean()),
        plots=plots,
        model_uri=logged.model_uri,
    )


@dataclass(frozen=True)
class Reproduction:
    version: str
    window: TrainingWindow
    hash_recorded: str
    hash_rebuilt: str
    holdout_rows: int
    max_difference: float

    @property
    def identical(self) -> bool:
        return self.hash_recorded == self.hash_rebuilt and self.max_difference == 0.0


# The steps ``reproduce`` reports to its ``log``, one line each (the CLI's progress bar counts them).
REPRODUCE_STEPS = 3


def reproduce(
    tracking: MlflowTracking, lake: LakeStorage, version: str, log: Callable[[str], None] = lambda _: None
) -> Reproduction:
    """Rebuild a version's training set from silver at the recorded Delta versions (time travel),
    retrain with its recorded parameters and compare its holdout predictions with the registered model's."""
    lineage = model_lineage(tracking, version)
    model_version = tracking.client().get_model_version(tracking.model_name, str(version))
    params = tracking.client().get_run(model_version.run_id).data.params
    window = lineage.window
    log(f"rebuilding the features of {window.describe()} from {len(lineage.input_versions)} table versions")
    features = features_of_days(lake, window.train_start, window.holdout_end, lineage.input_versions)
    train_rows, holdout = split(features, window, lineage.train_every)
    model = build_pipeline(
        learning_rate=float(params["learning_rate"]),
        max_iter=int(params["max_iter"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        l2_regularization=float(params["l2_regularization"]),
    )
    log(f"retraining on {train_rows.height:,} flights")
    model.fit(model_input(train_rows), train_rows[LABEL].to_numpy())
    log(f"scoring {holdout.height:,} holdout flights with the rebuilt and the registered model")
    rebuilt = scores_of(model, holdout)
    registered = scores_of(registry.load_model(tracking, version), holdout)
    return Reproduction(
        version=str(version),
        window=window,
        hash_recorded=lineage.content_hash,
        hash_rebuilt=content_hash(pl.concat([train_rows, holdout])),  # rechunk=False: no copy
        holdout_rows=holdout.height,
        max_difference=float(np.max(np.abs(rebuilt - registered))) if len(rebuilt) else 0.0,
    )
