"""ML: the delay model, trained on ``gold/flight_features`` with a time-based split and registered in
MLflow with its lineage (``lakehouse.ml.training``)."""

from datetime import date

import dagster as dg
import polars as pl
from pydantic import Field

from lakehouse.catalog import DELAY_MODEL
from lakehouse.defs.ml import checks
from lakehouse.lib.model import TrainingWindow, choose_window
from lakehouse.metadata import markdown_table
from lakehouse.ml import registry, training
from lakehouse.reads import feature_days
from lakehouse.resources import LakeStorage, MlflowTracking, Warehouse


class TrainingConfig(dg.Config):
    """Which days train and which are held out, and the model's hyper-parameters.

    By default the last ``holdout_days`` labelled days are the holdout and every earlier day trains.
    """

    holdout_days: int = Field(default=28, gt=0)
    train_start: str | None = Field(default=None, description="First training day, YYYY-MM-DD.")
    train_end: str | None = Field(default=None, description="Last training day, YYYY-MM-DD.")
    holdout_start: str | None = Field(default=None, description="First holdout day, YYYY-MM-DD.")
    holdout_end: str | None = Field(default=None, description="Last holdout day, YYYY-MM-DD.")
    # Chosen on a validation window inside every reported training period (lakehouse/ml/quality.py).
    learning_rate: float = Field(default=0.05, gt=0)
    max_iter: int = Field(default=400, gt=0)
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
                f"{DELAY_MODEL.path} config {name}={value!r} is not a date of the form YYYY-MM-DD"
            ) from None

    def window(self, labelled_days: list[date]) -> TrainingWindow:
        days = (self.day(name) for name in ("train_start", "train_end", "holdout_start", "holdout_end"))
        return choose_window(labelled_days, self.holdout_days, *days)

    def params(self) -> dict:
        """What the model is trained with (and, with its rows and code, what makes it)."""
        return {name: getattr(self, name) for name in (*training.PARAMS, "holdout_days")}


def _metadata(trained: training.Trained, mlflow: MlflowTracking) -> dict:
    lineage = trained.lineage
    comparison = pl.DataFrame(
        {
            "metric": list(trained.metrics),
            "model": list(trained.metrics.values()),
            "baseline": list(trained.baseline.values()),
        }
    )
    metadata = {
        "model_version": trained.version,
        "mlflow_run_id": trained.run_id,
        "mlflow_run": dg.MetadataValue.url(registry.run_url(mlflow, trained.run_id)),
        "reused": trained.reused,
        "window": lineage.window.describe(),
        "train_rows": lineage.train_rows,
        "train_rows_available": lineage.train_rows_available,
        "train_every": lineage.train_every,
        "holdout_rows": lineage.holdout_rows,
        **{f"holdout_{k}": v for k, v in trained.metrics.items()},
        **{f"baseline_{k}": v for k, v in trained.baseline.items()},
        "metrics": dg.MetadataValue.md(markdown_table(comparison)),
        "lineage": dg.MetadataValue.json(lineage.to_tags()),
    }
    if trained.model_uri:
        metadata["model_uri"] = trained.model_uri
    if trained.late_rate_train is not None:
        metadata["late_rate_train"] = trained.late_rate_train
    for name, png in (trained.plots or {}).items():
        title = name.removesuffix(".png")
        metadata[title] = dg.MetadataValue.md(registry.png_markdown(title, png))
    return metadata


@DELAY_MODEL.asset(code_version="2")
def delay_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    warehouse: Warehouse,
    lake: LakeStorage,
    mlflow: MlflowTracking,
) -> dg.MaterializeResult:
    trained = training.train(
        config.window(feature_days(warehouse)),
        config.params(),
        config.max_train_rows,
        warehouse,
        lake,
        mlflow,
        run={
            "run_id": context.run.run_id,
            "code_version": context.assets_def.code_versions_by_key[context.asset_key] or "",
        },
        log=context.log.info,
    )
    return dg.MaterializeResult(
        metadata=_metadata(trained, mlflow),
        data_version=dg.DataVersion(trained.version),
        check_results=[checks.beats_baseline(DELAY_MODEL, trained.metrics, trained.baseline)],
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[delay_model])
