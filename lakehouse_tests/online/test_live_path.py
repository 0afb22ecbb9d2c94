"""The live path end to end against a real Redis: a real day replayed live, every flight asked for at its
prediction time; the online vectors are gold's rows and the online scores the batch scores of the same
model version, and ``ml/serving_skew`` finds no mismatch."""

from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl
from fastapi.testclient import TestClient
from polars.testing import assert_frame_equal

from lakehouse import catalog
from lakehouse.defs.ml.serving_skew import serving_skew
from lakehouse.lib.features import FEATURE_COLUMNS
from lakehouse.lib.model import scores_of
from lakehouse.ml.registry import load_model
from lakehouse.online.feed import live_events, send_live
from lakehouse.online.request_log import RequestLog
from lakehouse.online.service import Champion, create_app
from lakehouse_tests.online.conftest import (
    LIVE_DAY,
    WorkerThread,
    gold_of_live_day,
    push_history,
    wait_caught_up,
)


def online_frame(predictions: list[dict], gold: pl.DataFrame) -> pl.DataFrame:
    """The answered vectors as a frame typed like gold's."""
    return pl.DataFrame(
        [{"flight_id": p["flight_id"], **p["features"]} for p in predictions],
        schema={"flight_id": pl.String, **{c: gold.schema[c] for c in FEATURE_COLUMNS}},
        strict=False,
    ).sort("flight_id")


def test_a_day_replayed_live_equals_gold_and_the_batch_scores(live_stores, store):
    pushed = push_history(live_stores, store.url)
    [materialization] = pushed.asset_materializations_for_node("online__feature_store")
    assert materialization.metadata["days_held"].value == 37  # 1 to 8 March and the 29 days before
    assert materialization.metadata["newest_day"].value == str(LIVE_DAY)

    events = live_events(live_stores.lake, LIVE_DAY, LIVE_DAY)
    with WorkerThread(store) as worker:
        report = send_live(store, events, speed=None)
        wait_caught_up(store, worker)
    assert report.events == events.height and store.stats()["events_applied"] == events.height

    gold = gold_of_live_day(live_stores).sort("flight_id")
    champion = Champion(live_stores.tracking, poll_seconds=3600).start()
    log = RequestLog(live_stores.lake)
    with TestClient(create_app(store, champion, log)) as client:
        batch = client.post("/predict/batch", json={"flights": [{"flight_id": f} for f in gold["flight_id"]]})
        sample = gold.sample(20, seed=3)
        singles = [
            client.post(
                "/predict",
                json={
                    "carrier": r["carrier"],
                    "flight": int(r["flight_id"].split("-")[4]),
                    "origin": r["origin"],
                    "date": str(r["flight_date"]),
                },
            )
            for r in sample.iter_rows(named=True)
        ]  # fmt: skip
    assert batch.status_code == 200, batch.text
    predictions = batch.json()["predictions"]
    assert len(predictions) == gold.height == 979
    # Every vector is the final one, as of its flight's prediction time, with all its history.
    assert all(p["final"] and p["as_of"] == p["predict_at"] and p["complete"] for p in predictions)
    online = online_frame(predictions, gold)
    assert_frame_equal(online, gold.select("flight_id", *FEATURE_COLUMNS))

    # The same model version scores the same vector the same, to the last bit.
    version = champion.current.version
    batch_scores = scores_of(load_model(live_stores.tracking, version), gold)
    online_scores = np.array(
        [p["probability_late"] for p in sorted(predictions, key=lambda p: p["flight_id"])]
    )
    assert np.array_equal(online_scores, batch_scores)
    by_id = dict(zip(gold["flight_id"], batch_scores, strict=True))
    for answer in singles:
        assert answer.status_code == 200, answer.text
        assert answer.json()["probability_late"] == by_id[answer.json()["flight_id"]]

    # The log reaches the lake, and the skew check compares it with gold: no mismatch.
    assert log.pending == 0 and log.written == gold.height + 20
    skew = dg.materialize(
        [serving_skew], resources={"lake": live_stores.lake, "warehouse": live_stores.warehouse}
    )
    assert skew.success
    [check] = skew.get_asset_check_evaluations()
    assert check.passed, check.description
    metadata = skew.asset_materializations_for_node("ml__serving_skew")[0].metadata
    assert metadata["requests_compared"].value == gold.height
    assert metadata["worst_mismatch_share"].value == 0.0
    assert 0.5 < metadata["online_roc_auc"].value < 1
    assert catalog.SERVING_SKEW.key == check.asset_key
