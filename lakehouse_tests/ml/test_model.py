"""The model lifecycle against a real MLflow store and real Delta and DuckDB under a temporary folder:
training on a small slice, the champion gate in both directions, batch predictions."""

import json
from dataclasses import dataclass
from datetime import date

import dagster as dg
import numpy as np
import polars as pl
import pytest

from lakehouse import catalog
from lakehouse.defs.ml import checks as ml_checks
from lakehouse.defs.ml.delay_model import delay_model
from lakehouse.defs.ml.monitoring import monitoring
from lakehouse.defs.ml.promotions import promotions as promotions_asset
from lakehouse.lib.model import TrainingWindow, model_input, scores_of
from lakehouse.ml import quality, registry, training
from lakehouse.ml.gate import decide, missing_inputs
from lakehouse.ml.lineage import (
    ModelLineage,
    VacuumRefused,
    model_lineage,
    models_trained_on,
    safe_vacuum,
    version_tags,
)
from lakehouse.ml.training import REPRODUCE_STEPS, reproduce, training_key
from lakehouse.reads import count_features, read_features
from lakehouse.resources import MlflowTracking
from lakehouse.sources.replay import replay
from lakehouse_tests.conftest import resources_at
from lakehouse_tests.pipeline import GOLD_ASSETS, INGEST_ASSETS, assets_of, materialize

FIRST, LAST = date(2013, 1, 1), date(2013, 1, 5)
# Train on 1 to 4 January, hold out 5 January. On so little data simpler models score better, which gives
# a fixed order on the holdout: baseline 0.568 < WORSE 0.607 < CHAMPION 0.640 < BETTER 0.651 ROC AUC;
# BELOW_BASELINE overfits to a Brier score of 0.158, worse than the baseline's 0.146.
SMALL = {"holdout_days": 1}
CHAMPION = {"learning_rate": 0.1, "max_iter": 60, "max_leaf_nodes": 8}
WORSE = {"learning_rate": 0.1, "max_iter": 120, "max_leaf_nodes": 8}
BETTER = {"learning_rate": 0.1, "max_iter": 10, "max_leaf_nodes": 4}
BELOW_BASELINE = {"learning_rate": 0.3, "max_iter": 600, "max_leaf_nodes": 31}
# Silver cleans its days again even though bronze is unchanged, so the tables move to new versions.
REBUILD = {"ops": {"silver__flights": {"config": {"rebuild": True}}}}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Five real days landed, built through gold, with an MLflow store beside them."""
    target = tmp_path_factory.mktemp("ml") / "data"
    replay(str(target / "landing"), target / "sources" / "operational.sqlite", FIRST, LAST)
    resources = resources_at(target)
    assert materialize(INGEST_ASSETS + GOLD_ASSETS, resources, FIRST, LAST).success
    with dg.instance_for_test() as instance:
        yield resources, instance


def train(stores, config: dict, **kwargs) -> dg.ExecuteInProcessResult:
    resources, instance = stores
    return dg.materialize(
        [delay_model, promotions_asset],
        resources=resources,
        instance=instance,
        run_config={"ops": {"ml__delay_model": {"config": SMALL | config}}},
        **kwargs,
    )


def promotions(stores) -> pl.DataFrame:
    return stores[0]["lake"].scan(catalog.PROMOTIONS.path).sort("model_version").collect()


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@dataclass
class Lifecycle:
    """The model's life on the five days, run once in this order; each test reads what it needs."""

    first: dg.ExecuteInProcessResult
    again: dg.ExecuteInProcessResult
    worse: dg.ExecuteInProcessResult
    better: dg.ExecuteInProcessResult
    below_baseline: dg.ExecuteInProcessResult
    promotions_after_first: pl.DataFrame
    promotions_after_again: pl.DataFrame
    versions_after_again: int
    champion_after: dict[str, str]
    flights_version: int


@pytest.fixture(scope="module")
def lifecycle(stores) -> Lifecycle:
    resources, _ = stores
    champion_after = {}
    first = train(stores, CHAMPION)
    after_first = promotions(stores)
    again = train(stores, CHAMPION)
    after_again = promotions(stores)
    versions = len(resources["mlflow"].client().search_model_versions("name='flight_delay'"))
    worse = train(stores, WORSE)
    champion_after["worse"] = str(resources["mlflow"].champion().version)
    better = train(stores, BETTER)
    champion_after["better"] = str(resources["mlflow"].champion().version)
    below = train(stores, BELOW_BASELINE, raise_on_error=False)
    champion_after["below_baseline"] = str(resources["mlflow"].champion().version)
    return Lifecycle(
        first,
        again,
        worse,
        better,
        below,
        after_first,
        after_again,
        versions,
        champion_after,
        resources["lake"].version(catalog.SILVER_FLIGHTS.path),
    )


def test_the_gate_rule_in_both_directions():
    assert decide(0.70, 0.60, None, 0.0)[0]
    assert not decide(0.55, 0.60, None, 0.0)[0]
    assert decide(0.751, 0.6, 0.75, 0.0)[0]
    assert not decide(0.749, 0.6, 0.75, 0.0)[0]
    assert decide(0.749, 0.6, 0.75, 0.002)[0]


def test_training_registers_a_model_with_lineage_and_the_first_becomes_champion(stores, lifecycle):
    resources, _ = stores
    result = lifecycle.first
    assert result.success
    model = metadata(result, "ml/delay_model")
    assert model["window"] == "train 2013-01-01..2013-01-04, holdout 2013-01-05..2013-01-05"
    assert model["holdout_roc_auc"] > model["baseline_roc_auc"]
    version = model["model_version"]
    assert version == "1"
    tags = resources["mlflow"].client().get_model_version("flight_delay", version).tags
    assert tags["delta_version.silver/flights"] == str(lifecycle.flights_version)
    assert int(tags["features.train_rows"]) == model["train_rows"] > 3000
    assert len(tags["features.content_hash"]) == 64
    assert tags["dagster.run_id"] == result.run_id
    assert tags["gate.decision"] == "promoted"
    plots = {a.path for a in resources["mlflow"].client().list_artifacts(model["mlflow_run_id"], "plots")}
    assert plots == {"plots/roc.png", "plots/calibration.png", "plots/importance.png"}
    assert {"roc", "calibration", "importance"} <= set(model)
    decision = lifecycle.promotions_after_first.row(0, named=True)
    assert decision["promoted"] and decision["model_version"] == int(version)
    assert "first model" in decision["reason"]


def test_the_mlflow_run_lists_each_input_table_at_its_delta_version(stores, lifecycle):
    resources, _ = stores
    run_id = metadata(lifecycle.first, "ml/delay_model")["mlflow_run_id"]
    inputs = resources["mlflow"].client().get_run(run_id).inputs.dataset_inputs
    recorded = {i.dataset.name: i.dataset for i in inputs}
    assert set(recorded) == {t.path for t in catalog.FLIGHT_FEATURES.upstream}
    for table, dataset in recorded.items():
        version = resources["mlflow"].client().get_run(run_id).data.tags[f"delta_version.{table}"]
        source = json.loads(dataset.source)
        assert dataset.source_type == "delta_table" and dataset.digest == f"v{version}"
        assert source["path"] == resources["lake"].uri(table)
        # MLflow's Delta source leaves a version 0 out of its JSON.
        assert source.get("delta_table_version", 0) == int(version)
    assert {tag.value for i in inputs for tag in i.tags} == {"training"}


def test_training_again_on_the_same_rows_changes_nothing(lifecycle):
    again = lifecycle.again
    assert again.success
    model = metadata(again, "ml/delay_model")
    assert model["model_version"] == "1" and model["reused"] is True
    # A reused version shows its own metrics, plots and run, as a new one does.
    first = metadata(lifecycle.first, "ml/delay_model")
    assert {"metrics", "roc", "calibration", "importance"} <= set(model)
    assert model["roc"] == first["roc"] and model["holdout_roc_auc"] == first["holdout_roc_auc"]
    assert model["mlflow_run"] == first["mlflow_run"]
    assert model["mlflow_run"].startswith("http://127.0.0.1:5000/#/experiments/")
    assert model["mlflow_run"].endswith(f"/runs/{first['mlflow_run_id']}")
    assert metadata(again, "ml/promotions")["reason"] == "already the champion"
    assert lifecycle.promotions_after_again.equals(lifecycle.promotions_after_first)
    assert lifecycle.versions_after_again == 1


def test_a_worse_challenger_is_not_promoted_and_a_better_one_is(stores, lifecycle):
    resources, _ = stores
    worse_version = metadata(lifecycle.worse, "ml/delay_model")["model_version"]
    rejected = promotions(stores).filter(pl.col("model_version") == int(worse_version)).row(0, named=True)
    assert rejected["baseline_roc_auc"] < rejected["candidate_roc_auc"] < rejected["champion_roc_auc"]
    assert not rejected["promoted"] and rejected["previous_champion"] == 1
    assert lifecycle.champion_after["worse"] == "1"
    tags = resources["mlflow"].client().get_model_version("flight_delay", worse_version).tags
    assert tags["gate.decision"] == "rejected" and "champion's" in tags["gate.reason"]

    better_version = metadata(lifecycle.better, "ml/delay_model")["model_version"]
    accepted = promotions(stores).filter(pl.col("model_version") == int(better_version)).row(0, named=True)
    assert accepted["candidate_roc_auc"] > accepted["champion_roc_auc"]
    assert accepted["promoted"] and accepted["previous_champion"] == 1
    assert lifecycle.champion_after["better"] == better_version
    assert promotions(stores)["model_version"].to_list() == [1, 2, 3]  # every decision kept, once


def test_a_model_that_fails_its_blocking_check_never_reaches_the_gate(stores, lifecycle):
    result = lifecycle.below_baseline
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "beats_baseline" and not check.passed
    assert metadata(result, "ml/delay_model")["model_version"] == "4"  # registered, but never judged
    assert 4 not in promotions(stores)["model_version"].to_list()
    assert lifecycle.champion_after["below_baseline"] == lifecycle.champion_after["better"]


def predict(stores, day: date) -> dg.ExecuteInProcessResult:
    resources, instance = stores
    return dg.materialize(
        assets_of(catalog.PREDICTIONS), resources=resources, instance=instance, partition_key=day.isoformat()
    )


def test_predictions_come_from_the_champion_and_match_the_registered_model(stores, lifecycle):
    resources, _ = stores
    assert predict(stores, LAST).success
    scored = resources["lake"].scan(catalog.PREDICTIONS.path).collect()
    champion = resources["mlflow"].champion()
    features = read_features(resources["warehouse"], LAST, LAST)
    assert scored.height == features.height > 0
    assert scored["model_version"].unique().to_list() == [int(champion.version)]
    assert scored["probability_late"].is_between(0, 1).all()
    model = registry.load_model(resources["mlflow"], champion.version)
    expected = model.predict_proba(model_input(features))[:, 1]
    assert scored.sort("flight_id")["probability_late"].to_list() == pytest.approx(list(expected))


def test_monitoring_measures_drift_and_realized_quality_of_the_champion(stores, lifecycle):
    resources, instance = stores
    assert predict(stores, LAST).success
    result = dg.materialize(
        [monitoring],
        resources=resources,
        instance=instance,
        run_config={"ops": {"ml__monitoring": {"config": {"window_days": 1}}}},
    )
    assert result.success
    values = metadata(result, "ml/monitoring")
    assert values["recent_days"] == "2013-01-05..2013-01-05"
    assert values["max_psi"] > 0 and 0 < values["realized_roc_auc"] < 1
    assert "| month |" not in values["drift"]  # a calendar feature drifts by construction
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"feature_drift", "prediction_decay"}
    assert checks["prediction_decay"].metadata["scored"].value > 0


def test_drift_beyond_the_threshold_fails_and_names_the_features():
    drift = pl.DataFrame({"feature": ["weather_temp", "carrier", "month"], "psi": [0.6, 0.15, 0.01]})
    result = ml_checks.feature_drift(catalog.MONITORING, drift, warn_above=0.1, fail_above=0.25)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "weather_temp" in result.description and "carrier" not in result.description
    mild = ml_checks.feature_drift(catalog.MONITORING, drift.tail(2), 0.1, 0.25)
    assert not mild.passed and mild.severity == dg.AssetCheckSeverity.WARN


def test_a_window_whose_feature_is_empty_is_refused_by_name(stores):
    resources, instance = stores
    with pytest.raises(ValueError, match=r"route_late_rate_28d.*have no values in the training days"):
        dg.materialize(
            [delay_model],
            resources=resources,
            instance=instance,
            run_config={
                "ops": {
                    "ml__delay_model": {"config": {"train_end": "2013-01-01", "holdout_start": "2013-01-05"}}
                }
            },
        )


def test_a_malformed_training_day_is_an_error_naming_the_field(stores):
    resources, instance = stores
    with pytest.raises(ValueError, match="holdout_start='Dec 1' is not a date"):
        dg.materialize(
            [delay_model],
            resources=resources,
            instance=instance,
            run_config={"ops": {"ml__delay_model": {"config": {"holdout_start": "Dec 1"}}}},
        )


def test_lineage_runs_both_ways(stores, lifecycle):
    resources, _ = stores
    flights, flights_version = catalog.SILVER_FLIGHTS.path, lifecycle.flights_version
    assert models_trained_on(resources["mlflow"], flights, flights_version) == ["1", "2", "3", "4"]
    assert models_trained_on(resources["mlflow"], flights, flights_version + 99) == []
    lineage = model_lineage(resources["mlflow"], "1")
    assert (lineage.window.train_start, lineage.window.train_end) == (FIRST, date(2013, 1, 4))
    assert lineage.dagster_asset == catalog.DELAY_MODEL.path and lineage.code_version == "2"
    assert lineage.input_versions[catalog.SILVER_FLIGHTS.path] == flights_version
    assert version_tags(resources["mlflow"], "1")["features.train_days"] == "2013-01-01..2013-01-04"


def test_reproduce_rebuilds_the_training_set_and_the_same_predictions_from_time_travel(stores, lifecycle):
    resources, _ = stores
    # Rewrite the silver days the model read: the table moves on, the model must still be reproduced.
    assert materialize(INGEST_ASSETS, resources, FIRST, LAST, run_config=REBUILD).success
    steps: list[str] = []
    result = reproduce(resources["mlflow"], resources["lake"], "3", log=steps.append)
    assert len(steps) == REPRODUCE_STEPS  # what the CLI's progress bar counts
    assert result.hash_rebuilt == result.hash_recorded
    assert result.max_difference == 0.0 and result.identical


def test_vacuum_refuses_to_delete_what_a_registered_model_needs(stores, lifecycle):
    resources, _ = stores
    lake, tracking = resources["lake"], resources["mlflow"]
    # Rewrite the silver days the models read: their table versions are no longer the current one.
    assert materialize(INGEST_ASSETS, resources, FIRST, LAST, run_config=REBUILD).success
    with pytest.raises(VacuumRefused, match=r"silver/flights .* version\(s\) 1, 2, 3, 4 were trained on"):
        safe_vacuum(lake, tracking, catalog.SILVER_FLIGHTS.path, retention_hours=0, dry_run=True)
    flights = catalog.SILVER_FLIGHTS.path
    assert lake.table(flights, version=model_lineage(tracking, "1").input_versions[flights])
    # No model read bronze at a particular version: its old files may go.
    deleted = safe_vacuum(lake, tracking, catalog.BRONZE_FLIGHTS.path, retention_hours=0, dry_run=False)
    assert isinstance(deleted, list)


def test_a_capped_training_set_takes_every_kth_flight_and_is_reproduced(stores):
    resources, instance = stores
    warehouse = resources["warehouse"]
    # A model of its own name: the lifecycle's versions stay the lifecycle's.
    tracking = resources["mlflow"]
    capped = MlflowTracking(
        tracking_uri=tracking.tracking_uri,
        artifact_location=tracking.artifact_location,
        model_name="flight_delay_capped",
    )
    result = dg.materialize(
        [delay_model],
        resources=resources | {"mlflow": capped},
        instance=instance,
        run_config={"ops": {"ml__delay_model": {"config": SMALL | CHAMPION | {"max_train_rows": 1000}}}},
    )
    assert result.success
    model = metadata(result, "ml/delay_model")
    available = count_features(warehouse, FIRST, date(2013, 1, 4))
    every = -(-available // 1000)
    assert model["train_rows_available"] == available and model["train_every"] == every > 1
    # DuckDB's choice is Polars' gather_every over the same rows in flight_id order, and fits the cap.
    everything = read_features(warehouse, FIRST, date(2013, 1, 4))
    thinned = read_features(warehouse, FIRST, date(2013, 1, 4), every)
    assert thinned.equals(everything.sort("flight_id").gather_every(every))
    assert model["train_rows"] == thinned.height <= 1000
    reproduced = reproduce(capped, resources["lake"], model["model_version"])
    assert reproduced.identical


def test_the_content_hash_is_the_whole_csvs_whatever_the_slice(stores):
    features = read_features(stores[0]["warehouse"], FIRST, FIRST)
    whole = training.content_hash(features, rows_per_slice=features.height)
    assert training.content_hash(features, rows_per_slice=7) == whole
    assert training.content_hash(features.reverse(), rows_per_slice=100) == whole
    assert training.content_hash(features.head(features.height - 1)) != whole


def test_scores_by_slice_are_the_scores_of_the_whole(stores, lifecycle):
    resources, _ = stores
    model = registry.load_model(resources["mlflow"], "1")
    features = read_features(resources["warehouse"], LAST, LAST)
    whole = model.predict_proba(model_input(features))[:, 1]
    assert np.array_equal(scores_of(model, features, rows=7), whole)
    assert scores_of(model, features.head(0)).shape == (0,)


def test_lineage_tags_round_trip_and_older_versions_still_read():
    window = TrainingWindow(FIRST, date(2013, 1, 4), LAST, LAST)
    lineage = ModelLineage(
        input_versions={"silver/flights": 3, "silver/planes": None},
        features_table="gold.flight_features",
        window=window,
        train_rows=10,
        train_rows_available=30,
        train_every=3,
        holdout_rows=4,
        content_hash="h",
        training_key="k",
        dagster_run_id="r",
        dagster_asset="ml/delay_model",
        code_version="2",
        git_commit="g",
    )
    assert ModelLineage.from_tags(lineage.to_tags()) == lineage
    # Versions registered before training could thin its rows have no train_every: they read every row.
    later = {"features.train_every", "features.train_rows_available"}
    older = ModelLineage.from_tags({k: v for k, v in lineage.to_tags().items() if k not in later})
    assert (older.train_every, older.train_rows_available) == (1, 10)
    with pytest.raises(LookupError, match=r"hold no lineage: .*training\.key"):
        ModelLineage.from_tags({k: v for k, v in lineage.to_tags().items() if k != "training.key"})


def test_the_same_days_split_another_way_make_another_model():
    """`make quality` after `make demo`: the same rows with another holdout are not the demo's model."""
    demo = TrainingWindow(date(2013, 1, 1), date(2013, 12, 3), date(2013, 12, 4), date(2013, 12, 31))
    quality = TrainingWindow(date(2013, 1, 1), date(2013, 10, 31), date(2013, 11, 1), date(2013, 12, 31))
    params = {"learning_rate": 0.05, "max_iter": 400}
    assert training_key("same rows", demo, params, "2") != training_key("same rows", quality, params, "2")
    assert training_key("same rows", demo, params, "2") == training_key("same rows", demo, dict(params), "2")


def test_the_quality_report_gives_each_split_its_seeds_and_the_baseline(stores):
    resources, _ = stores
    features = read_features(resources["warehouse"])
    window = TrainingWindow(FIRST, date(2013, 1, 4), LAST, LAST)
    params = {"learning_rate": 0.1, "max_iter": 60, "max_leaf_nodes": 8, "l2_regularization": 1.0}
    result = quality.split_quality(features, "five days", window, params, seeds=(1, 2))
    # Under 200,000 training rows the binning does not subsample: every seed makes the same model.
    assert len(result.roc_auc) == 2 and result.roc_auc[0] == result.roc_auc[1] and result.spread == 0
    assert result.holdout_rows == count_features(resources["warehouse"], LAST, LAST)
    assert 0.5 < result.mean < 1 and 0 < result.baseline_roc_auc < 1
    text = quality.report([result], params, target=0.99)
    assert f"| five days | {FIRST}..2013-01-04 | {LAST}..{LAST} |" in text
    assert "misses it" in text and "meets it" in quality.report([result], params, target=0.5)
    empty = TrainingWindow(date(2014, 1, 1), date(2014, 1, 2), date(2014, 1, 3), date(2014, 1, 4))
    with pytest.raises(ValueError, match="five days: no flights to train or hold out in train 2014-01-01"):
        quality.split_quality(features, "five days", empty, params)


def test_a_champion_reading_a_feature_the_table_lost_is_named(stores, lifecycle):
    """After an upgrade that drops a feature, the gate retires such a champion instead of failing on it."""
    resources, _ = stores
    holdout = read_features(resources["warehouse"], LAST, LAST)
    champion = registry.load_model(resources["mlflow"], "@champion")
    assert missing_inputs(champion, holdout) == []
    assert missing_inputs(champion, holdout.drop("origin_overdue_now", "prev_leg_late")) == [
        "origin_overdue_now",
        "prev_leg_late",
    ]
