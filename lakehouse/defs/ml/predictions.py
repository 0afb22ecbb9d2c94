"""ML: batch predictions, each day's flights scored by the champion, loaded by alias."""

import dagster as dg
import polars as pl

from lakehouse.catalog import DELAY_MODEL, FLIGHT_FEATURES, PREDICTIONS, PROMOTIONS
from lakehouse.lib.model import SCORING_SLICE_ROWS, scores_of
from lakehouse.metadata import Progress, delta_metadata
from lakehouse.ml import registry
from lakehouse.ml.gate import missing_inputs
from lakehouse.partitions import daily_partitions, partition_dates
from lakehouse.reads import read_features
from lakehouse.resources import CHAMPION, LakeStorage, MlflowTracking, Warehouse


def predictions_asset() -> dg.AssetsDefinition:
    table = PREDICTIONS

    @table.asset(partitions_def=daily_partitions(), code_version="1")
    def predictions(
        context: dg.AssetExecutionContext, warehouse: Warehouse, lake: LakeStorage, mlflow: MlflowTracking
    ) -> dg.MaterializeResult:
        champion = mlflow.champion()
        if champion is None:
            raise LookupError(
                f"{mlflow.model_name} has no '{CHAMPION}' yet: materialize {PROMOTIONS.path} first"
            )
        dates = partition_dates(context)
        features = read_features(warehouse, dates[0], dates[-1])
        progress = Progress(
            context.log.info, f"{table.path}: scoring", -(-features.height // SCORING_SLICE_ROWS)
        )
        model = registry.load_model(mlflow, f"@{CHAMPION}")
        missing = missing_inputs(model, features)
        if missing:
            raise ValueError(
                f"{mlflow.model_name} version {champion.version} reads feature(s) {', '.join(missing)} that "
                f"{FLIGHT_FEATURES.warehouse_table} no longer has: materialize {DELAY_MODEL.path} and "
                f"{PROMOTIONS.path} (the gate retires such a champion)"
            )
        scores = scores_of(model, features, SCORING_SLICE_ROWS, progress.chunk)
        scored = features.select(
            "flight_id",
            "flight_date",
            "sched_dep_at",
            "predict_at",
            probability_late=pl.Series(scores, dtype=pl.Float64),
            model_name=pl.lit(mlflow.model_name),
            model_version=pl.lit(int(champion.version), pl.Int64),
        ).with_columns(pl.col("sched_dep_at", "predict_at").dt.convert_time_zone("UTC"))
        write = lake.replace_dates(table.path, scored, table.partition_column, dates, context.run.run_id)
        context.log.info(
            f"scored {scored.height:,} flights of {len(dates)} day(s) with version {champion.version}"
        )
        return dg.MaterializeResult(
            metadata=delta_metadata(write, scored, lake.scan(table.path).select(pl.len()).collect().item())
            | {
                "model_version": champion.version,
                "mean_probability_late": float(scores.mean()) if len(scores) else 0.0,
            },
            data_version=dg.DataVersion(str(write.version)),
        )

    return predictions


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[predictions_asset()])
