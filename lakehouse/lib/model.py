"""The delay model: a time-based split, a scikit-learn pipeline, metrics against a baseline, plots.

Plain functions of Polars frames (no Dagster, no MLflow), so training, reproduction and tests share
one definition. The model's input is the ``FEATURE_COLUMNS`` of ``gold/flight_features`` as a pandas
frame (what MLflow's pyfunc serves); categorical codes are learned by an ``OrdinalEncoder``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score, roc_curve
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from lakehouse.lib.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS

NUMERIC_FEATURES = [c for c in FEATURE_COLUMNS if c not in CATEGORICAL_FEATURES]
LABEL = "late"
SEED = 13


@dataclass(frozen=True)
class TrainingWindow:
    """Days to train on and days to hold out, both inclusive."""

    train_start: date
    train_end: date
    holdout_start: date
    holdout_end: date

    def describe(self) -> str:
        return f"train {self.train_start}..{self.train_end}, holdout {self.holdout_start}..{self.holdout_end}"


def choose_window(
    labelled_days: list[date],
    holdout_days: int,
    train_start: date | None = None,
    train_end: date | None = None,
    holdout_start: date | None = None,
    holdout_end: date | None = None,
) -> TrainingWindow:
    """By default the last ``holdout_days`` labelled days are the holdout and all earlier days train."""
    if not labelled_days:
        raise ValueError("the feature table has no labelled flights: build it first")
    last = holdout_end or max(labelled_days)
    first_holdout = holdout_start or last - timedelta(days=holdout_days - 1)
    window = TrainingWindow(
        train_start=train_start or min(labelled_days),
        train_end=train_end or first_holdout - timedelta(days=1),
        holdout_start=first_holdout,
        holdout_end=last,
    )
    if not window.train_start <= window.train_end < window.holdout_start <= window.holdout_end:
        raise ValueError(f"the training window must end before the holdout starts: {window.describe()}")
    return window


def require_trainable(train: pl.DataFrame, window: TrainingWindow) -> None:
    """Refuse a training set with a feature that has no value at all: scikit-learn 1.9's histogram
    binning fails on it (a one-day window at the start of the data has no 28-day history, say)."""
    empty = [c for c in FEATURE_COLUMNS if train[c].null_count() == train.height]
    if empty:
        raise ValueError(
            f"feature(s) {', '.join(empty)} have no values in the training days ({window.describe()}): "
            "widen the training window"
        )


def model_input(features: pl.DataFrame) -> pd.DataFrame:
    """The columns the model reads, as the pandas frame MLflow serves (numbers as floats)."""
    return features.select(
        *(pl.col(c).cast(pl.String) for c in CATEGORICAL_FEATURES),
        *(pl.col(c).cast(pl.Float64) for c in NUMERIC_FEATURES),
    ).to_pandas()


def build_pipeline(
    learning_rate: float, max_iter: int, max_leaf_nodes: int, l2_regularization: float, seed: int = SEED
) -> Pipeline:
    """The encoder and the gradient-boosted trees. ``seed`` matters past 200,000 training rows, where the
    histogram binning subsamples them."""
    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                CATEGORICAL_FEATURES,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        learning_rate=learning_rate,
        max_iter=max_iter,
        max_leaf_nodes=max_leaf_nodes,
        l2_regularization=l2_regularization,
        categorical_features=list(range(len(CATEGORICAL_FEATURES))),
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("encode", encode), ("classify", classifier)])


def baseline_scores(train: pl.DataFrame, holdout: pl.DataFrame) -> np.ndarray:
    """The route's historical late rate (its 28-day rate, else the carrier's, else the training rate)."""
    prior = float(train[LABEL].mean())
    return (
        holdout.select(pl.coalesce("route_late_rate_28d", "carrier_late_rate_28d", pl.lit(prior)))
        .to_series()
        .to_numpy()
    )


def evaluate(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "brier": float(brier_score_loss(labels, clipped)),
        "log_loss": float(log_loss(labels, clipped)),
    }


def figure_png(figure) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def roc_plot(labels: np.ndarray, curves: dict[str, np.ndarray]) -> bytes:
    figure, axis = plt.subplots(figsize=(5, 4))
    for name, scores in curves.items():
        fpr, tpr, _ = roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the holdout")
    axis.legend(loc="lower right")
    return figure_png(figure)


def calibration_plot(labels: np.ndarray, curves: dict[str, np.ndarray]) -> bytes:
    figure, axis = plt.subplots(figsize=(5, 4))
    for name, scores in curves.items():
        observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
        axis.plot(predicted, observed, marker="o", label=name)
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set(
        xlabel="predicted probability of late",
        ylabel="observed late rate",
        title="Calibration on the holdout",
    )
    axis.legend(loc="upper left")
    return figure_png(figure)


SCORING_SLICE_ROWS = 200_000


def scores_of(
    model: Pipeline,
    features: pl.DataFrame,
    rows: int = SCORING_SLICE_ROWS,
    done: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The model's probability of ``late`` for each row of ``features``, a slice of rows at a time, so the
    model's float inputs exist for one slice only (each row's score is the same either way). ``done`` is
    told each slice's number and the rows scored so far."""
    parts = []
    for number, start in enumerate(range(0, features.height, rows), start=1):
        parts.append(model.predict_proba(model_input(features.slice(start, rows)))[:, 1])
        if done is not None:
            done(number, start + len(parts[-1]))
    return np.concatenate(parts or [np.empty(0)])


def importance(model: Pipeline, holdout: pl.DataFrame, rows: int = 5000) -> pl.DataFrame:
    """Permutation importance (drop in ROC AUC) on a fixed sample of the holdout."""
    sample = np.random.default_rng(SEED).choice(holdout.height, size=min(rows, holdout.height), replace=False)
    picked = holdout[sample]
    inputs = model_input(picked)
    result = permutation_importance(
        model,
        inputs,
        picked[LABEL].to_numpy(),
        scoring="roc_auc",
        n_repeats=3,
        random_state=SEED,
        n_jobs=1,
    )
    return pl.DataFrame({"feature": list(inputs.columns), "importance": result.importances_mean}).sort(
        "importance", descending=True
    )


def importance_plot(importances: pl.DataFrame) -> bytes:
    top = importances.head(15).reverse()
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.barh(top["feature"].to_list(), top["importance"].to_list())
    axis.set(xlabel="drop in ROC AUC when shuffled", title="Permutation importance")
    return figure_png(figure)
