"""ML: is the champion still fit for today's data? Drift of the features since its training days, and
decay of its realized quality (``lakehouse.lib.monitoring``)."""

from datetime import timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from lakehouse import quality
from lakehouse.catalog import FLIGHT_FEATURES, MONITORING, PREDICTIONS, PROMOTIONS, SILVER_FLIGHTS
from lakehouse.defs.ml import checks
from lakehouse.lib.features import FEATURE_COLUMNS, with_outcomes
from lakehouse.lib.model import SEED, evaluate
from lakehouse.lib.monitoring import drift_plot, drift_table
from lakehouse.metadata import markdown_table
from lakehouse.ml import registry
from lakehouse.ml.lineage import ModelLineage
from lakehouse.reads import feature_days, read_features
from lakehouse.resources import CHAMPION, LakeStorage, MlflowTracking, Warehouse

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


def scored_outcomes(lake: LakeStorage, version: int, first, last) -> pl.DataFrame:
    """The version's predictions of ``first`` through ``last`` joined to the outcomes in silver."""
    if lake.table(PREDICTIONS.path) is None:
        return pl.DataFrame()
    outcomes = with_outcomes(
        lake.scan(SILVER_FLIGHTS.path).filter(pl.col("flight_date").is_between(first, last))
    ).select("flight_id", "late")
    return (
        lake.scan(PREDICTIONS.path)
        .filter(pl.col("flight_date").is_between(first, last) & (pl.col("model_version") == version))
        .select("flight_id", "probability_late")
        .join(outcomes, on="flight_id")
        .collect()
    )


@MONITORING.asset(code_version="1")
def monitoring(
    context: dg.AssetExecutionContext,
    config: MonitoringConfig,
    warehouse: Warehouse,
    lake: LakeStorage,
    mlflow: MlflowTracking,
) -> dg.MaterializeResult:
    champion = mlflow.champion()
    if champion is None:
        raise LookupError(f"{mlflow.model_name} has no '{CHAMPION}' yet: materialize {PROMOTIONS.path} first")
    trained = ModelLineage.from_tags(champion.tags).window
    newest = feature_days(warehouse)[-1]
    recent_first = newest - timedelta(days=config.window_days - 1)
    reference = read_features(warehouse, trained.train_start, trained.train_end)
    reference = reference.sample(min(config.reference_rows, reference.height), seed=SEED)
    recent = read_features(warehouse, recent_first, newest)
    drift = drift_table(reference, recent, [c for c in FEATURE_COLUMNS if c not in CALENDAR_FEATURES])
    scored = scored_outcomes(lake, int(champion.version), recent_first, newest)
    labels_known = scored.height and scored["late"].n_unique() == 2
    realized = (
        evaluate(scored["late"].to_numpy(), scored["probability_late"].to_numpy()) if labels_known else None
    )
    results = [
        checks.feature_drift(MONITORING, drift, config.psi_warn, config.psi_fail),
        checks.prediction_decay(MONITORING, realized, config.auc_floor, scored.height),
    ]
    plot = drift_plot(drift, config.psi_warn, config.psi_fail)
    return dg.MaterializeResult(
        metadata={
            "champion_version": str(champion.version),
            "reference_days": f"{trained.train_start}..{trained.train_end}",
            "recent_days": f"{recent_first}..{newest}",
            "features_compared_with": FLIGHT_FEATURES.path,
            "max_psi": float(drift["psi"].max() or 0.0),
            "realized_roc_auc": realized["roc_auc"] if realized else float("nan"),
            "realized_brier": realized["brier"] if realized else float("nan"),
            "drift": dg.MetadataValue.md(markdown_table(drift, 50)),
            "drift_plot": dg.MetadataValue.md(registry.png_markdown("drift", plot)),
            **quality.failed_checks(results),
        },
        check_results=results,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[monitoring])
