import os
from datetime import date

import polars as pl
import pytest
from deltalake import DeltaTable

from lakehouse.resources import MLFLOW_URI_VARIABLES, LakeStorage, MlflowTracking, Warehouse


def frame(day: date, values: list[int]) -> pl.DataFrame:
    return pl.DataFrame({"day": [day] * len(values), "value": values})


def test_replace_dates_replaces_only_its_days_and_is_idempotent(tmp_path):
    lake = LakeStorage(root=str(tmp_path))
    d1, d2 = date(2013, 1, 1), date(2013, 1, 2)
    lake.replace_dates("t/x", pl.concat([frame(d1, [1, 2]), frame(d2, [3])]), "day", [d1, d2], "run-a")
    lake.replace_dates("t/x", frame(d1, [10]), "day", [d1], "run-b")
    lake.replace_dates("t/x", frame(d1, [10]), "day", [d1], "run-c")
    assert lake.scan("t/x").sort("day").collect()["value"].to_list() == [10, 3]
    history = DeltaTable(lake.uri("t/x")).history(1)[0]
    assert history["dagster_run_id"] == "run-c"
    assert lake.version("t/x") == 2


def test_replace_dates_refuses_rows_outside_its_days(tmp_path):
    lake = LakeStorage(root=str(tmp_path))
    with pytest.raises(ValueError, match="outside the dates being replaced"):
        lake.replace_dates("t/x", frame(date(2013, 1, 2), [1]), "day", [date(2013, 1, 1)], "run")
    assert lake.table("t/x") is None


def test_scoped_replace_leaves_other_scopes_alone(tmp_path):
    lake = LakeStorage(root=str(tmp_path))
    d = date(2013, 1, 1)
    for source, values in [("a", [1]), ("b", [2, 3]), ("a", [4])]:
        lake.replace_dates(
            "q",
            frame(d, values).with_columns(source=pl.lit(source)),
            "day",
            [d],
            "r",
            scope={"source": source},
        )
    assert lake.scan("q").sort("value").collect()["value"].to_list() == [2, 3, 4]


def test_merge_upserts_deletes_and_skips_unchanged_rows(tmp_path):
    lake = LakeStorage(root=str(tmp_path))
    lake.merge("ref", pl.DataFrame({"k": ["a", "b"], "v": [1, None]}), ["k"], "r1")
    _, metrics = lake.merge("ref", pl.DataFrame({"k": ["b", "c"], "v": [None, 3]}), ["k"], "r2")
    assert (
        metrics["num_target_rows_inserted"],
        metrics["num_target_rows_updated"],
        metrics["num_target_rows_deleted"],
    ) == (1, 0, 1)
    assert lake.scan("ref").sort("k").collect().rows() == [("b", None), ("c", 3)]


def test_scanning_a_missing_table_says_what_to_build(tmp_path):
    with pytest.raises(LookupError, match="materialize silver/flights first"):
        LakeStorage(root=str(tmp_path)).scan("silver/flights")


def test_mlflow_tracking_leaves_the_environment_as_it_found_it(tmp_path, monkeypatch):
    """MLflow exports a tracking URI to the process environment; a subprocess started after training (a
    `dg launch`, a test's `dagster dev`) must not inherit this store."""
    for name in MLFLOW_URI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=str(tmp_path / "artifacts")
    )
    with tracking.activated():
        assert os.environ["MLFLOW_TRACKING_URI"] == tracking.tracking_uri
    assert not any(name in os.environ for name in MLFLOW_URI_VARIABLES)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    with tracking.activated():
        pass
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///elsewhere.db"


def test_the_warehouse_follows_a_tables_new_columns_and_drops_retired_ones(tmp_path):
    """A feature added or retired by a new version of the code: the table's columns become the frame's."""
    warehouse = Warehouse(database=str(tmp_path / "w.duckdb"))
    first = pl.DataFrame({"flight_date": [date(2013, 1, 1)], "kept": [1], "retired": [2]})
    second = pl.DataFrame({"flight_date": [date(2013, 1, 2)], "kept": [3], "added": [4.5]})
    with warehouse.get_connection() as connection:
        warehouse.replace_days(connection, "gold.t", first, [date(2013, 1, 1)])
        assert warehouse.replace_days(connection, "gold.t", second, [date(2013, 1, 2)]) == 2
        table = connection.sql("SELECT * FROM gold.t ORDER BY flight_date").pl()
    assert table.columns == ["flight_date", "kept", "added"]
    assert table["kept"].to_list() == [1, 3] and table["added"].to_list() == [None, 4.5]
