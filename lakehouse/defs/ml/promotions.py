"""ML: the champion gate, every decision a row of a Delta table (``lakehouse.ml.gate``)."""

import dagster as dg
import polars as pl
from pydantic import Field

from lakehouse.catalog import DELAY_MODEL, PROMOTIONS
from lakehouse.metadata import delta_metadata
from lakehouse.ml import gate
from lakehouse.resources import LakeStorage, MlflowTracking, Warehouse


class GateConfig(dg.Config):
    """How much worse than the champion a new model may score and still replace it."""

    tolerance: float = Field(default=0.0, ge=0, description="Allowed drop in holdout ROC AUC.")


def _judged(lake: LakeStorage, version: str) -> bool:
    if lake.table(PROMOTIONS.path) is None:
        return False
    decisions = lake.scan(PROMOTIONS.path).filter(pl.col("model_version") == int(version))
    return bool(decisions.select(pl.len()).collect().item())


@PROMOTIONS.asset(code_version="1")
def promotions(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    warehouse: Warehouse,
    lake: LakeStorage,
    mlflow: MlflowTracking,
) -> dg.MaterializeResult:
    event = context.instance.get_latest_materialization_event(DELAY_MODEL.key)
    if event is None or event.asset_materialization is None:
        raise LookupError(f"{DELAY_MODEL.path} has never been materialized: train a model first")
    candidate = str(event.asset_materialization.metadata["model_version"].value)
    champion = mlflow.champion()
    if champion is not None and str(champion.version) == candidate and _judged(lake, candidate):
        context.log.info(f"version {candidate} is the champion and was judged before: nothing to decide")
        return dg.MaterializeResult(
            metadata={
                "candidate_version": candidate,
                "promoted": True,
                "reason": "already the champion",
                "champion_version": candidate,
                "delta_version": lake.version(PROMOTIONS.path),
            }
        )
    decision = gate.judge(mlflow, warehouse, candidate, config.tolerance)
    row = decision.row(context.run.run_id)
    write, _ = lake.merge(
        PROMOTIONS.path, row, list(PROMOTIONS.key_columns), context.run.run_id, delete_missing=False
    )
    verdict = "promoted" if decision.promoted else "rejected"
    context.log.info(f"version {candidate}: {verdict} ({decision.reason})")
    current = mlflow.champion()
    return dg.MaterializeResult(
        metadata=delta_metadata(write, row)
        | {
            "candidate_version": candidate,
            "promoted": decision.promoted,
            "reason": decision.reason,
            "champion_version": str(current.version) if current else "none",
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[promotions])
