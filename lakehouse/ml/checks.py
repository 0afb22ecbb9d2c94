"""The checks in front of the champion gate: a model that cannot beat the baseline goes no further."""

from __future__ import annotations

import dagster as dg
import polars as pl

from lakehouse.metadata import markdown_table

BEATS_BASELINE = "beats_baseline"


def model_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            BEATS_BASELINE,
            asset=asset_key,
            blocking=True,
            description="On the holdout, the model's ROC AUC beats the route's historical late rate "
            "(the baseline) and its Brier score is no worse; blocks the champion gate otherwise.",
        )
    ]


def beats_baseline(
    asset_key: dg.AssetKey, model: dict[str, float], baseline: dict[str, float]
) -> dg.AssetCheckResult:
    passed = model["roc_auc"] > baseline["roc_auc"] and model["brier"] <= baseline["brier"]
    return dg.AssetCheckResult(
        check_name=BEATS_BASELINE,
        asset_key=asset_key,
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


FEATURE_DRIFT = "feature_drift"
PREDICTION_DECAY = "prediction_decay"


def monitoring_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            FEATURE_DRIFT,
            asset=asset_key,
            description="No feature's population stability index between the champion's training days and "
            "the recent window exceeds the failure threshold (warns above the warning threshold).",
        ),
        dg.AssetCheckSpec(
            PREDICTION_DECAY,
            asset=asset_key,
            description="The champion's realized ROC AUC over the recent window, on flights whose outcome is "
            "known, stays above the floor.",
        ),
    ]


def feature_drift(
    asset_key: dg.AssetKey, drift: pl.DataFrame, warn_above: float, fail_above: float
) -> dg.AssetCheckResult:
    worst = drift.drop_nulls("psi")
    top = float(worst["psi"].max()) if worst.height else 0.0
    failing = worst.filter(pl.col("psi") > fail_above)["feature"].to_list()
    warning = worst.filter(pl.col("psi") > warn_above)["feature"].to_list()
    return dg.AssetCheckResult(
        check_name=FEATURE_DRIFT,
        asset_key=asset_key,
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
    asset_key: dg.AssetKey, realized: dict[str, float] | None, floor: float, scored: int
) -> dg.AssetCheckResult:
    if realized is None:
        return dg.AssetCheckResult(
            check_name=PREDICTION_DECAY,
            asset_key=asset_key,
            passed=True,
            description="no predicted flight with a known outcome in the window yet",
            metadata={"scored": scored},
        )
    return dg.AssetCheckResult(
        check_name=PREDICTION_DECAY,
        asset_key=asset_key,
        passed=realized["roc_auc"] >= floor,
        description=f"realized ROC AUC {realized['roc_auc']:.4f} against a floor of {floor}",
        metadata={
            "realized_roc_auc": realized["roc_auc"],
            "realized_brier": realized["brier"],
            "floor": floor,
            "scored": scored,
        },
    )
