"""The checks in front of the champion gate: a model that cannot beat the baseline goes no further."""

from __future__ import annotations

import dagster as dg

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
