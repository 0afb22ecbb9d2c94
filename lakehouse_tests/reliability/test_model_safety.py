"""Model safety: a challenger trained on corrupted labels never becomes the champion, and a failed
blocking check upstream of the model stops training in the same run."""

from __future__ import annotations

from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest

from lakehouse.catalog import DELAY_MODEL, FLIGHT_FEATURES, PROMOTIONS
from lakehouse.sources.replay import flights_path, replay
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, assets_of, check_result, ingest, materialize

FIRST, JAN3, LAST = date(2013, 1, 1), date(2013, 1, 3), date(2013, 1, 5)
# Train on 1 to 4 January and hold out 5 January, as the model tests do.
TRAINING = {"holdout_days": 1, "max_iter": 60, "max_leaf_nodes": 8}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    """Five real days through gold, and a champion trained on their true labels."""
    data = tmp_path_factory.mktemp("safety") / "data"
    replay(str(data / "landing"), data / "sources" / "operational.sqlite", FIRST, LAST)
    resources = resources_at(data)
    assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, FIRST, LAST).success
    with dg.instance_for_test() as instance:
        assert train(resources, instance).success
        yield data, resources, instance


def train(resources: dict, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets_of(DELAY_MODEL, PROMOTIONS),
        resources=resources,
        instance=instance,
        run_config={"ops": {"ml__delay_model": {"config": TRAINING}}},
        raise_on_error=False,
        **kwargs,
    )


def registered(resources: dict) -> list[str]:
    versions = resources["mlflow"].client().search_model_versions("name='flight_delay'")
    return sorted(str(v.version) for v in versions)


def test_a_challenger_trained_on_corrupted_labels_is_never_promoted(stores):
    _, resources, instance = stores
    champion = str(resources["mlflow"].champion().version)
    # A bug upstream flips the label of every training day; the holdout day keeps its true labels.
    with duckdb.connect(resources["warehouse"].database) as connection:
        connection.execute("UPDATE gold.flight_features SET late = NOT late WHERE flight_date < ?", [LAST])

    result = train(resources, instance)
    [model] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == DELAY_MODEL.key
    ]
    corrupted = model["model_version"].value
    assert corrupted != champion and model["holdout_roc_auc"].value < 0.5  # it learned the labels' opposite
    beats_baseline = check_result(result, "ml/delay_model", "beats_baseline")
    assert not beats_baseline.passed and not result.success
    decided = resources["lake"].scan("ml/promotions").collect()
    assert int(corrupted) not in decided["model_version"].to_list()  # it never reached the gate
    assert str(resources["mlflow"].champion().version) == champion


def test_a_failed_blocking_check_upstream_stops_training(stores):
    data, resources, instance = stores
    champion, versions = str(resources["mlflow"].champion().version), registered(resources)
    # 3 January is re-delivered with every flight 2 hours late: each row is valid, the day is not.
    file = data / "landing" / flights_path(JAN3)
    frame = pl.read_csv(file, infer_schema=False)
    file.write_text(frame.with_columns(arr_delay=pl.lit("120")).write_csv())
    assert ingest(resources, JAN3).success

    result = dg.materialize(
        assets_of(FLIGHT_FEATURES, DELAY_MODEL, PROMOTIONS),
        resources=resources,
        instance=instance,
        run_config={"ops": {"ml__delay_model": {"config": TRAINING}}},
        partition_key=JAN3.isoformat(),
        raise_on_error=False,
    )
    label_rate = check_result(result, "gold/flight_features", "label_rate")
    assert not label_rate.passed and "2013-01-03 (1.000)" in label_rate.description
    assert not result.success
    materialized = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
    assert DELAY_MODEL.key not in materialized and PROMOTIONS.key not in materialized
    assert registered(resources) == versions
    assert str(resources["mlflow"].champion().version) == champion
