"""Drift and decay: how far live data has moved from the training data, and how well predictions held up.

Plain functions of Polars frames, shared by ``ml/monitoring`` and its tests.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from lakehouse.lib.model import figure_png

PSI_BINS = 10
EPSILON = 1e-4


def population_stability_index(reference: pl.Series, current: pl.Series) -> float | None:
    """PSI of ``current`` against ``reference``: sum over bins of (c - r) * ln(c / r).

    Numbers are binned at the reference's deciles, categories by value; missing values are a bin of
    their own. None when either side is empty.
    """
    if reference.len() == 0 or current.len() == 0:
        return None
    if reference.dtype.is_numeric():
        present = reference.drop_nulls().cast(pl.Float64)
        edges = (
            np.unique(np.quantile(present.to_numpy(), np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
            if present.len()
            else []
        )

        def shares(values: pl.Series) -> np.ndarray:
            numbers = values.cast(pl.Float64).fill_null(np.nan).to_numpy()
            missing = np.isnan(numbers)
            counts = np.bincount(np.digitize(numbers[~missing], edges), minlength=len(edges) + 1).astype(
                float
            )
            return np.append(counts, missing.sum()) / len(numbers)

        expected, actual = shares(reference), shares(current)
    else:
        categories = sorted(
            set(reference.cast(pl.String).fill_null("<missing>").unique().to_list())
            | set(current.cast(pl.String).fill_null("<missing>").unique().to_list())
        )

        def shares(values: pl.Series) -> np.ndarray:
            counts = values.cast(pl.String).fill_null("<missing>").value_counts()
            lookup = dict(zip(counts[counts.columns[0]], counts["count"], strict=True))
            return np.array([lookup.get(c, 0) for c in categories], float) / values.len()

        expected, actual = shares(reference), shares(current)
    expected, actual = np.clip(expected, EPSILON, None), np.clip(actual, EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_table(reference: pl.DataFrame, current: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """PSI per column, largest first."""
    rows = [(c, population_stability_index(reference[c], current[c])) for c in columns]
    return pl.DataFrame(rows, schema={"feature": pl.String, "psi": pl.Float64}, orient="row").sort(
        "psi", descending=True, nulls_last=True
    )


def drift_plot(drift: pl.DataFrame, warn: float, fail: float) -> bytes:
    top = drift.drop_nulls("psi").head(15).reverse()
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.barh(top["feature"].to_list(), top["psi"].to_list())
    axis.axvline(warn, color="orange", linestyle="--", label=f"warn {warn}")
    axis.axvline(fail, color="red", linestyle="--", label=f"fail {fail}")
    axis.set(xlabel="population stability index", title="Drift from the champion's training days")
    axis.legend(loc="lower right")
    return figure_png(figure)
