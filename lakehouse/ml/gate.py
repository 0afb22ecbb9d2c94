"""The champion gate: whether a new model version replaces the champion, decided on the same holdout.

Plain functions over the resources; the ``ml/promotions`` asset calls ``judge`` and reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from lakehouse.lib.features import FEATURE_COLUMNS
from lakehouse.lib.model import LABEL, TrainingWindow, baseline_scores, evaluate, scores_of
from lakehouse.ml import registry
from lakehouse.ml.lineage import model_lineage
from lakehouse.reads import read_features
from lakehouse.resources import CHAMPION, MlflowTracking, Warehouse


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


@dataclass(frozen=True)
class Decision:
    candidate: str
    previous_champion: str | None
    promoted: bool
    reason: str
    candidate_auc: float
    champion_auc: float | None
    baseline_auc: float
    tolerance: float
    decided_at: datetime
    window: TrainingWindow  # the candidate's: its holdout is where both were scored

    def row(self, run_id: str) -> pl.DataFrame:
        """The decision as a row of ``ml/promotions``."""
        return pl.DataFrame(
            {
                "model_version": [int(self.candidate)],
                "decided_at": [self.decided_at],
                "previous_champion": [int(self.previous_champion) if self.previous_champion else None],
                "promoted": [self.promoted],
                "reason": [self.reason],
                "candidate_roc_auc": [self.candidate_auc],
                "champion_roc_auc": [self.champion_auc],
                "baseline_roc_auc": [self.baseline_auc],
                "tolerance": [self.tolerance],
                "holdout_start": [self.window.holdout_start],
                "holdout_end": [self.window.holdout_end],
                "dagster_run_id": [run_id],
            },
            schema_overrides={
                "decided_at": pl.Datetime("us", "UTC"),
                "previous_champion": pl.Int64,
                "champion_roc_auc": pl.Float64,
            },
        )


def missing_inputs(model, features: pl.DataFrame) -> list[str]:
    """The input columns ``model`` was fitted on that the model input of ``features`` lacks."""
    available = set(FEATURE_COLUMNS) & set(features.columns)
    return [c for c in model.feature_names_in_ if c not in available]


def judge(mlflow: MlflowTracking, warehouse: Warehouse, candidate: str, tolerance: float) -> Decision:
    """Score ``candidate`` and the champion on the candidate's holdout, move the alias if the candidate
    wins, and record the decision as tags of the candidate version."""
    champion = mlflow.champion()
    champion_version = str(champion.version) if champion else None
    lineage = model_lineage(mlflow, candidate)
    window = lineage.window
    holdout = read_features(warehouse, window.holdout_start, window.holdout_end)
    train = read_features(warehouse, window.train_start, window.train_end, lineage.train_every)
    labels = holdout[LABEL].to_numpy()

    def auc(model) -> float:
        return evaluate(labels, scores_of(model, holdout))["roc_auc"]

    candidate_auc = auc(registry.load_model(mlflow, candidate))
    baseline_auc = evaluate(labels, baseline_scores(train, holdout))["roc_auc"]
    if champion_version == candidate:
        promoted, reason, champion_auc = True, "already the champion", candidate_auc
    else:
        champion_model = registry.load_model(mlflow, champion_version) if champion_version else None
        missing = missing_inputs(champion_model, holdout) if champion_model is not None else []
        # A champion that reads features the table no longer has cannot score today's flights: it retires,
        # and the candidate faces the baseline as a first model would.
        champion_auc = auc(champion_model) if champion_model is not None and not missing else None
        promoted, reason = decide(candidate_auc, baseline_auc, champion_auc, tolerance)
        if missing:
            reason = (
                f"champion version {champion_version} reads {len(missing)} feature(s) the table no longer "
                f"has ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); {reason}"
            )
        if promoted:
            mlflow.client().set_registered_model_alias(mlflow.model_name, CHAMPION, candidate)
    decision = Decision(
        candidate,
        champion_version,
        promoted,
        reason,
        candidate_auc,
        champion_auc,
        baseline_auc,
        tolerance,
        datetime.now(UTC),
        window,
    )
    client = mlflow.client()
    for tag, value in (
        ("gate.decision", "promoted" if promoted else "rejected"),
        ("gate.reason", reason),
        ("gate.decided_at", decision.decided_at.isoformat()),
    ):
        client.set_model_version_tag(mlflow.model_name, candidate, tag, value)
    return decision
