"""ML: the delay model, tracked and registered in MLflow; the champion gate; batch predictions.

``ml/delay_model`` trains on ``gold/flight_features`` with a time-based split and registers a new version
of ``flight_delay`` with its lineage. ``ml/promotions`` scores that version and the current champion on
the same, most recent holdout and moves the ``champion`` alias only if the new one is at least as good;
every decision is a row of the Delta table. ``ml/predictions`` scores each day's flights with the
champion, loaded by alias.
"""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from lakehouse.gold import assets as gold
from lakehouse.lib.features import FEATURE_COLUMNS, with_outcomes
from lakehouse.lib.model import (
    LABEL,
    SEED,
    TrainingWindow,
    baseline_scores,
    build_pipeline,
    calibration_plot,
    choose_window,
    evaluate,
    importance,
    importance_plot,
    model_input,
    require_trainable,
    roc_plot,
    scores_of,
)
from lakehouse.lib.monitoring import drift_plot, drift_table
from lakehouse.metadata import delta_metadata, markdown_table
from lakehouse.ml import checks, registry
from lakehouse.partitions import daily_partitions, partition_dates
from lakehouse.resources import CHAMPION, LakeStorage, MlflowTracking, Warehouse

# The lineage tag that says which training rows a version read: every k-th of the window's (1: all).
TRAIN_EVERY_TAG = "features.train_every"
SILVER_INPUTS = ["silver/flights", "silver/weather", "silver/planes", "silver/airports", "silver/airlines"]


class TrainingConfig(dg.Config):
    """Which days train and which are held out, and the model's hyper-parameters.

    By default the last ``holdout_days`` labelled days are the holdout and every earlier day trains.
    """

    holdout_days: int = Field(default=28, gt=0)
    train_start: str | None = Field(default=None, description="First training day, YYYY-MM-DD.")
    train_end: str | None = Field(default=None, description="Last training day, YYYY-MM-DD.")
    holdout_start: str | None = Field(default=None, description="First holdout day, YYYY-MM-DD.")
    holdout_end: str | None = Field(default=None, description="Last holdout day, YYYY-MM-DD.")
    learning_rate: float = Field(default=0.1, gt=0)
    max_iter: int = Field(default=200, gt=0)
    max_leaf_nodes: int = Field(default=31, gt=1)
    l2_regularization: float = Field(default=1.0, ge=0)
    max_train_rows: int = Field(
        default=1_000_000,
        gt=0,
        description="The most training rows. Past it, training takes every k-th flight in flight_id order, "
        "k the smallest that fits, so memory stays bounded however long the history; the holdout is whole.",
    )

    def day(self, name: str) -> date | None:
        """A configured day, parsed; a malformed one is an error naming the field."""
        value = getattr(self, name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"ml/delay_model config {name}={value!r} is not a date of the form YYYY-MM-DD"
            ) from None


def read_features(
    warehouse: Warehouse, first: date | None = None, last: date | None = None, every: int = 1
) -> pl.DataFrame:
    """Rows of ``gold.flight_features`` (all, or of the days ``first`` through ``last``), by flight.

    With ``every`` = k, only the 1st, (k+1)th, (2k+1)th... in flight_id order: what Polars'
    ``gather_every(k)`` takes from the same rows sorted by flight_id. DuckDB numbers the flight ids
    alone and the rest never reach Python.
    """
    where, days = ("flight_date BETWEEN ? AND ?", [first, last]) if first else ("TRUE", [])
    with warehouse.get_connection() as connection:
        if every == 1:
            rows = connection.sql(
                f"SELECT * FROM gold.flight_features WHERE {where} ORDER BY flight_id", params=days
            )
        else:
            rows = connection.sql(
                f"""SELECT * FROM gold.flight_features WHERE {where} AND flight_id IN (
                    SELECT flight_id FROM (
                        SELECT flight_id, row_number() OVER (ORDER BY flight_id) - 1 AS _row
                        FROM gold.flight_features WHERE {where}
                    ) WHERE _row % ? = 0
                ) ORDER BY flight_id""",
                params=[*days, *days, every],
            )
        return rows.pl()


def count_features(warehouse: Warehouse, first: date, last: date) -> int:
    """How many rows ``gold.flight_features`` holds for the days ``first`` through ``last``."""
    with warehouse.get_connection() as connection:
        return connection.execute(
            "SELECT count(*) FROM gold.flight_features WHERE flight_date BETWEEN ? AND ?", [first, last]
        ).fetchall()[0][0]


def feature_days(warehouse: Warehouse) -> list[date]:
    """The days ``gold.flight_features`` holds."""
    with warehouse.get_connection() as connection:
        return [
            day
            for (day,) in connection.execute(
                "SELECT DISTINCT flight_date FROM gold.flight_features"
            ).fetchall()
        ]


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


def training_key(data_hash: str, params: dict, code_version: str) -> str:
    """What makes a model: its training rows, its parameters and the code that trains it."""
    return hashlib.sha256(json.dumps([data_hash, params, code_version], sort_keys=True).encode()).hexdigest()


def registered_with_key(mlflow: MlflowTracking, key: str):
    """The registered version trained from exactly these rows, parameters and code, if any."""
    versions = mlflow.client().search_model_versions(f"name='{mlflow.model_name}'")
    matching = [v for v in versions if v.tags.get("training.key") == key]
    return min(matching, key=lambda v: int(v.version)) if matching else None


def reused_result(
    context: dg.AssetExecutionContext, mlflow: MlflowTracking, version, window
) -> dg.MaterializeResult:
    run_metrics = mlflow.client().get_run(version.run_id).data.metrics
    metrics = {k: run_metrics[f"holdout_{k}"] for k in ("roc_auc", "average_precision", "brier", "log_loss")}
    baseline = {k: run_metrics[f"baseline_{k}"] for k in metrics}
    context.log.info(f"{mlflow.model_name} version {version.version} was trained on the same rows: reused")
    return dg.MaterializeResult(
        metadata={
            "model_version": str(version.version),
            "mlflow_run_id": version.run_id,
            "reused": True,
            "window": window.describe(),
            **{f"holdout_{k}": v for k, v in metrics.items()},
            **{f"baseline_{k}": v for k, v in baseline.items()},
        },
        data_version=dg.DataVersion(str(version.version)),
        check_results=[checks.beats_baseline(context.asset_key, metrics, baseline)],
    )


@dg.asset(
    key=["ml", "delay_model"],
    group_name="ml",
    kinds={"mlflow", "scikitlearn"},
    deps=[gold.flight_features_table],
    check_specs=checks.model_check_specs(dg.AssetKey(["ml", "delay_model"])),
    code_version="2",
)
def delay_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    warehouse: Warehouse,
    lake: LakeStorage,
    mlflow: MlflowTracking,
) -> dg.MaterializeResult:
    """A histogram gradient-boosting classifier of `late` on `gold/flight_features`, trained on the days
    before a holdout of the last 28 labelled days (configurable), registered in MLflow as `flight_delay`
    with metrics, plots and lineage: the Delta version of every silver input, the feature days with
    their row count and content hash, the Dagster run and the code version."""
    window = choose_window(
        feature_days(warehouse),
        config.holdout_days,
        *(config.day(name) for name in ("train_start", "train_end", "holdout_start", "holdout_end")),
    )
    available = count_features(warehouse, window.train_start, window.train_end)
    every = max(1, -(-available // config.max_train_rows))  # the smallest k that fits
    train = read_features(warehouse, window.train_start, window.train_end, every)
    holdout = read_features(warehouse, window.holdout_start, window.holdout_end)
    if train.is_empty() or holdout.is_empty():
        raise ValueError(f"no flights to train or hold out in {window.describe()}")
    require_trainable(train, window)
    params = {
        k: getattr(config, k) for k in ("learning_rate", "max_iter", "max_leaf_nodes", "l2_regularization")
    }
    code_version = context.assets_def.code_versions_by_key[context.asset_key] or ""
    data_hash = content_hash(pl.concat([train, holdout]))  # rechunk=False: no copy
    key = training_key(data_hash, params | {"holdout_days": config.holdout_days}, code_version)
    existing = registered_with_key(mlflow, key)
    if existing is not None:
        # The same rows, parameters and code made this version already: training again would register a
        # twin (and move the champion to it), so the lakehouse stays as it is.
        return reused_result(context, mlflow, existing, window)
    model = build_pipeline(**params)
    inputs, labels = model_input(train), train[LABEL].to_numpy()
    model.fit(inputs, labels)
    example = inputs.head(200)  # for the signature and input example; the rest of the inputs can go
    del inputs

    holdout_labels = holdout[LABEL].to_numpy()
    scores = scores_of(model, holdout)
    baseline = baseline_scores(train, holdout)
    metrics, baseline_metrics = evaluate(holdout_labels, scores), evaluate(holdout_labels, baseline)
    importances = importance(model, holdout)
    plots = {
        "roc.png": roc_plot(holdout_labels, {"model": scores, "baseline": baseline}),
        "calibration.png": calibration_plot(holdout_labels, {"model": scores, "baseline": baseline}),
        "importance.png": importance_plot(importances),
    }

    lineage = {
        **{f"delta_version.{t}": str(lake.version(t)) for t in SILVER_INPUTS},
        "features.table": "gold.flight_features",
        "features.train_days": f"{window.train_start}..{window.train_end}",
        "features.holdout_days": f"{window.holdout_start}..{window.holdout_end}",
        "features.train_rows": str(train.height),
        "features.train_rows_available": str(available),
        TRAIN_EVERY_TAG: str(every),
        "features.holdout_rows": str(holdout.height),
        "features.content_hash": data_hash,
        "training.key": key,
        "dagster.run_id": context.run.run_id,
        "dagster.asset": "ml/delay_model",
        "dagster.code_version": code_version,
        "git.commit": registry.git_commit() or "unknown",
    }
    with (
        mlflow.activated() as experiment_id,
        registry.mlflow.start_run(
            experiment_id=experiment_id, run_name=f"dagster-{context.run.run_id[:8]}", tags=lineage
        ) as run,
    ):
        registry.mlflow.log_params(params | {"holdout_days": config.holdout_days})
        registry.mlflow.log_metrics(
            {f"holdout_{k}": v for k, v in metrics.items()}
            | {f"baseline_{k}": v for k, v in baseline_metrics.items()}
        )
        for name, png in plots.items():
            registry.log_png(name, png)
        info = registry.log_model(model, example, mlflow.model_name)
    version = str(info.registered_model_version)
    client = mlflow.client()
    for name, value in lineage.items():
        client.set_model_version_tag(mlflow.model_name, version, name, value)
    for name, value in metrics.items():
        client.set_model_version_tag(mlflow.model_name, version, f"holdout_{name}", f"{value:.6f}")

    context.log.info(f"registered {mlflow.model_name} version {version}: ROC AUC {metrics['roc_auc']:.4f}")
    comparison = pl.DataFrame(
        {
            "metric": list(metrics),
            "model": list(metrics.values()),
            "baseline": list(baseline_metrics.values()),
        }
    )
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "mlflow_run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "window": window.describe(),
            "train_rows": train.height,
            "train_rows_available": available,
            "train_every": every,
            "holdout_rows": holdout.height,
            "late_rate_train": float(labels.mean()),
            **{f"holdout_{k}": v for k, v in metrics.items()},
            **{f"baseline_{k}": v for k, v in baseline_metrics.items()},
            "metrics": dg.MetadataValue.md(markdown_table(comparison)),
            "roc": dg.MetadataValue.md(registry.png_markdown("ROC", plots["roc.png"])),
            "calibration": dg.MetadataValue.md(
                registry.png_markdown("calibration", plots["calibration.png"])
            ),
            "importance": dg.MetadataValue.md(registry.png_markdown("importance", plots["importance.png"])),
            "lineage": dg.MetadataValue.json(lineage),
        },
        data_version=dg.DataVersion(version),
        check_results=[checks.beats_baseline(context.asset_key, metrics, baseline_metrics)],
    )


class GateConfig(dg.Config):
    """How much worse than the champion a new model may score and still replace it."""

    tolerance: float = Field(default=0.0, ge=0, description="Allowed drop in holdout ROC AUC.")


PROMOTIONS_TABLE = "ml/promotions"


def decide(
    candidate_auc: float, baseline_auc: float, champion_auc: float | None, tolerance: float
) -> tuple[bool, str]:
    """The gate: the first model must beat the baseline; later ones must match the champion less tolerance."""
    if champion_auc is None:
        if candidate_auc > baseline_auc:
            return True, f"first model: ROC AUC {candidate_auc:.4f} beats the baseline's {baseline_auc:.4f}"
        return (
            False,
            f"first model: ROC AUC {candidate_auc:.4f} does not beat the baseline's {baseline_auc:.4f}",
        )
    if candidate_auc >= champion_auc - tolerance:
        return True, (
            f"ROC AUC {candidate_auc:.4f} >= champion's {champion_auc:.4f} - tolerance {tolerance:g} "
            "on the same holdout"
        )
    return False, (
        f"ROC AUC {candidate_auc:.4f} < champion's {champion_auc:.4f} - tolerance {tolerance:g} "
        "on the same holdout"
    )


@dg.asset(
    key=["ml", "promotions"],
    group_name="ml",
    kinds={"mlflow", "deltalake"},
    deps=[delay_model],
    code_version="1",
)
def promotions(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    warehouse: Warehouse,
    lake: LakeStorage,
    mlflow: MlflowTracking,
) -> dg.MaterializeResult:
    """The champion gate. The newest `ml/delay_model` version and the current `champion` are scored on the
    same, most recent holdout; the alias moves only if the new version's ROC AUC is at least the champion's
    less a tolerance (the first model must beat the baseline). Every decision, promoted or not, is a row
    of this Delta table (time, versions, metrics, reason) and a tag on the MLflow version."""
    event = context.instance.get_latest_materialization_event(delay_model.key)
    if event is None or event.asset_materialization is None:
        raise LookupError("ml/delay_model has never been materialized: train a model first")
    candidate = str(event.asset_materialization.metadata["model_version"].value)
    champion = mlflow.champion()
    champion_version = str(champion.version) if champion else None
    judged = lake.table(PROMOTIONS_TABLE) is not None and (
        lake.scan(PROMOTIONS_TABLE)
        .filter(pl.col("model_version") == int(candidate))
        .select(pl.len())
        .collect()
        .item()
    )
    if champion_version == candidate and judged:
        context.log.info(f"version {candidate} is the champion and was judged before: nothing to decide")
        return dg.MaterializeResult(
            metadata={
                "candidate_version": candidate,
                "promoted": True,
                "reason": "already the champion",
                "champion_version": candidate,
                "delta_version": lake.version(PROMOTIONS_TABLE),
            }
        )
    client = mlflow.client()
    tags = client.get_model_version(mlflow.model_name, candidate).tags
    first, last = (date.fromisoformat(d) for d in tags["features.holdout_days"].split(".."))
    holdout = read_features(warehouse, first, last)
    train_first, train_last = (date.fromisoformat(d) for d in tags["features.train_days"].split(".."))
    train = read_features(warehouse, train_first, train_last, int(tags.get(TRAIN_EVERY_TAG, "1")))
    labels = holdout[LABEL].to_numpy()

    candidate_auc = evaluate(labels, scores_of(registry.load_model(mlflow, candidate), holdout))["roc_auc"]
    baseline_auc = evaluate(labels, baseline_scores(train, holdout))["roc_auc"]
    if champion_version == candidate:
        promoted, reason, champion_auc = True, "already the champion", candidate_auc
    else:
        champion_auc = (
            evaluate(labels, scores_of(registry.load_model(mlflow, champion_version), holdout))["roc_auc"]
            if champion_version
            else None
        )
        promoted, reason = decide(candidate_auc, baseline_auc, champion_auc, config.tolerance)
        if promoted:
            client.set_registered_model_alias(mlflow.model_name, CHAMPION, candidate)
    decided_at = datetime.now(UTC)
    client.set_model_version_tag(
        mlflow.model_name, candidate, "gate.decision", "promoted" if promoted else "rejected"
    )
    client.set_model_version_tag(mlflow.model_name, candidate, "gate.reason", reason)
    client.set_model_version_tag(mlflow.model_name, candidate, "gate.decided_at", decided_at.isoformat())

    decision = pl.DataFrame(
        {
            "model_version": [int(candidate)],
            "decided_at": [decided_at],
            "previous_champion": [int(champion_version) if champion_version else None],
            "promoted": [promoted],
            "reason": [reason],
            "candidate_roc_auc": [candidate_auc],
            "champion_roc_auc": [champion_auc],
            "baseline_roc_auc": [baseline_auc],
            "tolerance": [config.tolerance],
            "holdout_start": [first],
            "holdout_end": [last],
            "dagster_run_id": [context.run.run_id],
        },
        schema_overrides={
            "decided_at": pl.Datetime("us", "UTC"),
            "previous_champion": pl.Int64,
            "champion_roc_auc": pl.Float64,
        },
    )
    write, _ = lake.merge(
        PROMOTIONS_TABLE, decision, ["model_version"], context.run.run_id, delete_missing=False
    )
    context.log.info(f"version {candidate}: {'promoted' if promoted else 'rejected'} ({reason})")
    current = mlflow.champion()
    return dg.MaterializeResult(
        metadata=delta_metadata(write, decision)
        | {
            "candidate_version": candidate,
            "promoted": promoted,
            "reason": reason,
            "champion_version": str(current.version) if current else "none",
        },
    )


@dg.asset(
    key=["ml", "predictions"],
    group_name="ml",
    kinds={"mlflow", "deltalake"},
    deps=[gold.flight_features_table, promotions],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version="1",
)
def predictions(
    context: dg.AssetExecutionContext, warehouse: Warehouse, lake: LakeStorage, mlflow: MlflowTracking
) -> dg.MaterializeResult:
    """The champion's probability that each flight of the day is late, scored from the same features as
    training and kept with the model version, so outcomes can later be joined to what was predicted."""
    champion = mlflow.champion()
    if champion is None:
        raise LookupError(f"{mlflow.model_name} has no '{CHAMPION}' yet: materialize ml/promotions first")
    dates = partition_dates(context)
    features = read_features(warehouse, dates[0], dates[-1])
    scores = scores_of(registry.load_model(mlflow, f"@{CHAMPION}"), features)
    scored = features.select(
        "flight_id",
        "flight_date",
        "sched_dep_at",
        "predict_at",
        probability_late=pl.Series(scores, dtype=pl.Float64),
        model_name=pl.lit(mlflow.model_name),
        model_version=pl.lit(int(champion.version), pl.Int64),
    ).with_columns(pl.col("sched_dep_at", "predict_at").dt.convert_time_zone("UTC"))
    write = lake.replace_dates("ml/predictions", scored, "flight_date", dates, context.run.run_id)
    return dg.MaterializeResult(
        metadata=delta_metadata(write, scored)
        | {
            "model_version": champion.version,
            "mean_probability_late": float(scores.mean()) if len(scores) else 0.0,
        },
        data_version=dg.DataVersion(str(write.version)),
    )


# A recent window of a week always holds one month: the month drifts by construction, not by change.
CALENDAR_FEATURES = {"month"}


class MonitoringConfig(dg.Config):
    """Thresholds of the drift and decay checks and the window they look at."""

    window_days: int = Field(default=7, gt=0, description="How many of the newest days are 'recent'.")
    psi_warn: float = Field(default=0.1, gt=0)
    psi_fail: float = Field(default=0.25, gt=0)
    auc_floor: float = Field(default=0.65, gt=0, lt=1)
    reference_rows: int = Field(
        default=100_000, gt=0, description="Sample of the training days to compare to."
    )


@dg.asset(
    key=["ml", "monitoring"],
    group_name="ml",
    kinds={"mlflow", "polars"},
    deps=[gold.flight_features_table, predictions, promotions],
    check_specs=checks.monitoring_check_specs(dg.AssetKey(["ml", "monitoring"])),
    code_version="1",
)
def monitoring(
    context: dg.AssetExecutionContext,
    config: MonitoringConfig,
    warehouse: Warehouse,
    lake: LakeStorage,
    mlflow: MlflowTracking,
) -> dg.MaterializeResult:
    """Is the champion still fit for today's data? Drift: each feature's population stability index between
    the champion's training days and the newest days of `gold/flight_features` (the month aside), with a
    plot. Decay: the
    champion's realized ROC AUC and Brier score over the newest days, from `ml/predictions` joined to the
    outcomes in silver. The retrain sensor acts on these checks."""
    champion = mlflow.champion()
    if champion is None:
        raise LookupError(f"{mlflow.model_name} has no '{CHAMPION}' yet: materialize ml/promotions first")
    train_first, train_last = (
        date.fromisoformat(d) for d in champion.tags["features.train_days"].split("..")
    )
    with warehouse.get_connection() as connection:
        newest = connection.sql("SELECT max(flight_date) FROM gold.flight_features").fetchall()[0][0]
    recent_first = newest - timedelta(days=config.window_days - 1)
    reference = read_features(warehouse, train_first, train_last)
    reference = reference.sample(min(config.reference_rows, reference.height), seed=SEED)
    recent = read_features(warehouse, recent_first, newest)
    drift = drift_table(reference, recent, [c for c in FEATURE_COLUMNS if c not in CALENDAR_FEATURES])

    outcomes = with_outcomes(
        lake.scan("silver/flights").filter(pl.col("flight_date").is_between(recent_first, newest))
    ).select("flight_id", "late")
    scored = (
        (
            lake.scan("ml/predictions")
            .filter(
                pl.col("flight_date").is_between(recent_first, newest)
                & (pl.col("model_version") == int(champion.version))
            )
            .select("flight_id", "probability_late")
            .join(outcomes, on="flight_id")
            .collect()
        )
        if lake.table("ml/predictions") is not None
        else pl.DataFrame()
    )
    labels_known = scored.height and scored["late"].n_unique() == 2
    realized = (
        evaluate(scored["late"].to_numpy(), scored["probability_late"].to_numpy()) if labels_known else None
    )
    plot = drift_plot(drift, config.psi_warn, config.psi_fail)
    return dg.MaterializeResult(
        metadata={
            "champion_version": str(champion.version),
            "reference_days": f"{train_first}..{train_last}",
            "recent_days": f"{recent_first}..{newest}",
            "max_psi": float(drift["psi"].max() or 0.0),
            "realized_roc_auc": realized["roc_auc"] if realized else float("nan"),
            "realized_brier": realized["brier"] if realized else float("nan"),
            "drift": dg.MetadataValue.md(markdown_table(drift, 50)),
            "drift_plot": dg.MetadataValue.md(registry.png_markdown("drift", plot)),
        },
        check_results=[
            checks.feature_drift(context.asset_key, drift, config.psi_warn, config.psi_fail),
            checks.prediction_decay(context.asset_key, realized, config.auc_floor, scored.height),
        ],
    )
