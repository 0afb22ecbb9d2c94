"""The skew table counts exactly the values that differ, nulls and float rounding included."""

import polars as pl

from lakehouse.lib.skew import skew_plot, skew_table


def test_mismatches_are_counted_per_feature_with_nulls_and_rounding():
    offline = pl.DataFrame(
        {
            "flight_id": ["a", "b", "c", "d"],
            "rate": [0.1, 0.2, None, 0.4],
            "hour": [5, 6, 7, 8],
            "carrier": ["UA", "AA", "B6", "DL"],
        }
    )
    online = pl.DataFrame(
        {
            "flight_id": ["d", "c", "b", "a"],
            "rate": [0.4 + 1e-15, None, 0.2, 0.1],
            "hour": [8, 7, 6, None],
            "carrier": ["DL", "B6", "AA", "UA"],
        }
    )
    table = skew_table(online, offline, ["rate", "hour", "carrier"])
    counts = {row["feature"]: row["mismatches"] for row in table.iter_rows(named=True)}
    assert counts == {"rate": 0, "hour": 1, "carrier": 0}
    assert table.row(0, named=True)["feature"] == "hour"
    assert table.row(0, named=True)["mismatch_share"] == 0.25
    changed = online.with_columns(rate=pl.col("rate") * 2)
    assert skew_table(changed, offline, ["rate"])["mismatches"].item() == 3
    assert skew_plot(table, 0.01).startswith(b"\x89PNG")
