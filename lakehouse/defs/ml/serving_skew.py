"""ML: training-serving skew. What the scoring service logged (``online/requests``) against
``gold/flight_features`` for the same flights (``lakehouse.lib.skew``), and the online scores' realized
quality next to the batch ones once outcomes are known."""

import dagster as dg
import polars as pl
from pydantic import Field

from lakehouse import quality
from lakehouse.catalog import (
    FLIGHT_FEATURES,
    ONLINE_REQUESTS,
    PREDICTIONS,
    SERVING_SKEW,
    SERVING_SKEW_CHECK,
)
from lakehouse.lib.features import FEATURE_COLUMNS, with_outcomes
from lakehouse.lib.model import evaluate
from lakehouse.lib.skew import skew_plot, skew_table
from lakehouse.metadata import markdown_table
from lakehouse.ml import registry
from lakehouse.reads import read_features, silver_flights
from lakehouse.resources import LakeStorage, Warehouse


class SkewConfig(dg.Config):
    mismatch_threshold: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="The check fails when any feature's share of differing online values exceeds this.",
    )


def prediction_time_requests(lake: LakeStorage) -> pl.DataFrame:
    """The logged requests whose vector was the final one (as of the prediction time), the latest per
    flight."""
    if lake.table(ONLINE_REQUESTS.path) is None:
        raise LookupError(
            f"{ONLINE_REQUESTS.path} does not exist yet: run `lakehouse serve` and ask it for flights"
        )
    return (
        lake.scan(ONLINE_REQUESTS.path)
        .filter(pl.col("as_of") == pl.col("predict_at"))
        .sort("requested_at")
        .unique("flight_id", keep="last")
        .collect()
    )


def realized_quality(scored: pl.DataFrame, score: str) -> dict[str, float] | None:
    known = scored.drop_nulls(["late", score])
    if known.height == 0 or known["late"].n_unique() < 2:
        return None
    return evaluate(known["late"].to_numpy(), known[score].to_numpy())


@SERVING_SKEW.asset(code_version="1")
def serving_skew(
    context: dg.AssetExecutionContext, config: SkewConfig, lake: LakeStorage, warehouse: Warehouse
) -> dg.MaterializeResult:
    requests = prediction_time_requests(lake)
    if requests.is_empty():
        raise LookupError(
            f"{ONLINE_REQUESTS.path} has no request made at a flight's prediction time (1 h before departure)"
        )
    first, last = requests["flight_date"].min(), requests["flight_date"].max()
    offline = read_features(warehouse, first, last).filter(
        pl.col("flight_id").is_in(requests["flight_id"].implode())
    )
    shape = pl.Struct({c: offline.schema[c] for c in FEATURE_COLUMNS})
    online = requests.select(
        "flight_id",
        "flight_date",
        "model_version",
        "probability_late",
        pl.col("features").str.json_decode(shape),
    ).unnest("features")
    table = skew_table(online, offline, FEATURE_COLUMNS)
    worst = table.row(0, named=True)
    over = table.filter(pl.col("mismatch_share") > config.mismatch_threshold)
    threshold = f"{config.mismatch_threshold:.2%}"
    worst_over = ", ".join(
        f"{row['feature']} ({row['mismatch_share']:.2%})" for row in over.head(5).iter_rows(named=True)
    )
    check = dg.AssetCheckResult(
        check_name=SERVING_SKEW_CHECK.name,
        asset_key=SERVING_SKEW.key,
        passed=over.is_empty(),
        description=(
            f"{over.height} feature(s) differ online more often than {threshold}: {worst_over}"
            if over.height
            else f"every feature of {offline.height:,} flights matches gold within {threshold}"
        ),
        metadata={"features_over_threshold": over.height, "worst_mismatch_share": worst["mismatch_share"]},
    )
    outcomes = with_outcomes(silver_flights(lake, first, last)).select("flight_id", "late")
    scored = online.select("flight_id", "model_version", "probability_late").join(
        outcomes.collect(), on="flight_id", how="left"
    )
    if lake.table(PREDICTIONS.path) is not None:
        batch = (
            lake.scan(PREDICTIONS.path)
            .filter(pl.col("flight_date").is_between(first, last))
            .select("flight_id", "model_version", batch_probability="probability_late")
            .collect()
        )
        scored = scored.join(batch, on=["flight_id", "model_version"], how="left")
    else:
        scored = scored.with_columns(batch_probability=pl.lit(None, pl.Float64))
    online_quality = realized_quality(scored, "probability_late")
    both = scored.drop_nulls("batch_probability")
    batch_quality = realized_quality(both, "batch_probability")
    online_where_batch = realized_quality(both, "probability_late")
    score_gap = (both["probability_late"] - both["batch_probability"]).abs().max() if both.height else None
    nan = float("nan")
    return dg.MaterializeResult(
        metadata={
            "requests_compared": online.height,
            "flights_in_gold": offline.height,
            "days": f"{first}..{last}",
            "features_compared_with": FLIGHT_FEATURES.path,
            "worst_feature": worst["feature"],
            "worst_mismatch_share": worst["mismatch_share"],
            "max_psi": float(table["psi"].max() or 0.0),
            "online_roc_auc": online_quality["roc_auc"] if online_quality else nan,
            "batch_roc_auc_same_flights": batch_quality["roc_auc"] if batch_quality else nan,
            "online_roc_auc_where_batch_scored": online_where_batch["roc_auc"] if online_where_batch else nan,
            "max_score_difference_vs_batch": float(score_gap) if score_gap is not None else nan,
            "flights_with_batch_score": both.height,
            "skew": dg.MetadataValue.md(markdown_table(table, len(FEATURE_COLUMNS))),
            "skew_plot": dg.MetadataValue.md(
                registry.png_markdown("skew", skew_plot(table, config.mismatch_threshold))
            ),
            **quality.failed_checks([check]),
        },
        check_results=[check],
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[serving_skew])
