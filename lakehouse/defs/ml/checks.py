"""The checks in front of the champion gate: a model that cannot beat the baseline goes no further."""

from __future__ import annotations

import dagster as dg
import polars as pl

from lakehouse.catalog import BEATS_BASELINE, FEATURE_DRIFT, PREDICTION_DECAY, Table
from lakehouse.metadata import markdown_table


def beats_baseline(table: Table, model: dict[str, float], baseline: dict[str, float]) -> dg.AssetCheckResult:
    passed = model["roc_auc"] > baseline["roc_auc"] and model["brier"] <= baseline["brier"]
    return dg.AssetCheckResult(
        check_name=BEATS_BASELINE.name,
        asset_key=table.key,
        passed=passed,
        description=(
            f"ROC AUC {model['roc_auc']:.4f} vs baseline {baseline['roc_auc']:.4f}; "
            f"Brier {model['brier']:.4f} vs {baseline['brier']:.4f}"
        ),
        metadata={
            "model_roc_auc": model["roc_auc"],
            "baseline_roc_auc": baseline["roc_auc"],
            "model_brier": model["brier"],
            "baseline_brier": baseline["brier"],
        },
    )


def feature_drift(
    table: Table, drift: pl.DataFrame, warn_above: float, fail_above: float
) -> dg.AssetCheckResult:
    worst = drift.drop_nulls("psi")
    top = float(worst["psi"].max()) if worst.height else 0.0
    failing = worst.filter(pl.col("psi") > fail_above)["feature"].to_list()
    warning = worst.filter(pl.col("psi") > warn_above)["feature"].to_list()
    return dg.AssetCheckResult(
        check_name=FEATURE_DRIFT.name,
        asset_key=table.key,
        passed=not warning,
        severity=dg.AssetCheckSeverity.ERROR if failing else dg.AssetCheckSeverity.WARN,
        description=(
            f"drifted beyond {fail_above}: {', '.join(failing)}"
            if failing
            else f"above {warn_above}: {', '.join(warning)}"
            if warning
            else f"every feature's PSI within {warn_above} (largest {top:.3f})"
        ),
        metadata={
            "max_psi": top,
            "features_over_warning": len(warning),
            "features_over_failure": len(failing),
            "psi": dg.MetadataValue.md(markdown_table(worst, 50)),
        },
    )


def prediction_decay(
    table: Table, realized: dict[str, float] | None, floor: float, scored: int
) -> dg.AssetCheckResult:
    if realized is None:
        return dg.AssetCheckResult(
            check_name=PREDICTION_DECAY.name,
            asset_key=table.key,
            passed=True,
            description="no predicted flight with a known outcome in the window yet",
            metadata={"scored": scored},
        )
    return dg.AssetCheckResult(
        check_name=PREDICTION_DECAY.name,
        asset_key=table.key,
        passed=realized["roc_auc"] >= floor,
        description=f"realized ROC AUC {realized['roc_auc']:.4f} against a floor of {floor}",
        metadata={
            "realized_roc_auc": realized["roc_auc"],
            "realized_brier": realized["brier"],
            "floor": floor,
            "scored": scored,
        },
    )
