"""Training-serving skew: the online feature vectors the service scored against the offline rows of the
same flights. Plain functions of Polars frames, for ``ml/serving_skew`` and its tests."""

from __future__ import annotations

import matplotlib.pyplot as plt
import polars as pl

from lakehouse.lib.model import figure_png
from lakehouse.lib.monitoring import population_stability_index

# Two floats are the same value when they agree to this relative tolerance (JSON keeps 17 digits; sums
# in another order may differ in the last one).
RELATIVE_TOLERANCE = 1e-9


def differs(online: pl.Expr, offline: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Whether two values differ: one missing and not the other, or unequal (floats within tolerance)."""
    one_missing = online.is_null() != offline.is_null()
    if dtype.is_float():
        unequal = (online - offline).abs() > RELATIVE_TOLERANCE * pl.max_horizontal(
            offline.abs(), pl.lit(1.0)
        )
    else:
        unequal = online != offline
    return one_missing | unequal.fill_null(False)


def skew_table(online: pl.DataFrame, offline: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    """Per feature: the flights compared, how many online values differ from the offline ones and what
    share, and the PSI between the online and offline values; the worst first. ``online`` and ``offline``
    have a row per flight (``flight_id``) and the ``features``."""
    joined = online.select("flight_id", *features).join(
        offline.select("flight_id", *features), on="flight_id", suffix="_offline"
    )
    rows = []
    for feature in features:
        dtype = offline.schema[feature]
        online_values = joined[feature].cast(dtype)
        offline_values = joined[f"{feature}_offline"]
        pair = pl.DataFrame({"online": online_values, "offline": offline_values})
        mismatches = int(pair.select(differs(pl.col("online"), pl.col("offline"), dtype).sum()).item())
        rows.append(
            {
                "feature": feature,
                "compared": joined.height,
                "mismatches": mismatches,
                "mismatch_share": mismatches / joined.height if joined.height else None,
                "psi": population_stability_index(offline_values, online_values),
            }
        )
    schema = {
        "feature": pl.String,
        "compared": pl.Int64,
        "mismatches": pl.Int64,
        "mismatch_share": pl.Float64,
        "psi": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort(["mismatch_share", "psi"], descending=True, nulls_last=True)


def skew_plot(table: pl.DataFrame, threshold: float) -> bytes:
    """The features with the largest mismatch shares, against the check's threshold."""
    top = table.head(15).reverse()
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.barh(top["feature"].to_list(), top["mismatch_share"].fill_null(0).to_list())
    axis.axvline(threshold, color="red", linestyle="--", label=f"threshold {threshold}")
    axis.set(xlabel="share of online values that differ from gold", title="Training-serving skew")
    axis.legend(loc="lower right")
    return figure_png(figure)
