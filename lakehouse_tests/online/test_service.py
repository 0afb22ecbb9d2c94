"""The scoring service's contract against a real Redis holding a replayed day: its answers, every way a
request can be wrong (401, 404, 413, 422, 503, never a 500), the champion's alias moving under load, and a
fuzz of the API from its own OpenAPI document."""

from __future__ import annotations

import json
import secrets
import threading
import time

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from lakehouse.lib.features import FEATURE_COLUMNS
from lakehouse.lib.model import scores_of
from lakehouse.ml.registry import load_model
from lakehouse.online.feed import live_events, send_live
from lakehouse.online.redis_server import RedisServer
from lakehouse.online.service import Champion, Limits, create_app
from lakehouse.online.store import OnlineStore
from lakehouse.resources import CHAMPION
from lakehouse_tests.online.conftest import (
    LIVE_DAY,
    SMALL_MODEL,
    WorkerThread,
    gold_of_live_day,
    push_history,
    register_model,
    wait_caught_up,
)
from lakehouse_tests.servers import free_port

# A token made for the run: none is written in the repository.
TOKEN = secrets.token_hex(16)
FUZZ_EXAMPLES = 60


@pytest.fixture(scope="module")
def served(live_stores, tmp_path_factory):
    """A Redis of the module's own, holding the live day's vectors after a replay at full speed."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port()).start()
    store = OnlineStore(server.url)
    push_history(live_stores, store.url)
    with WorkerThread(store) as worker:
        send_live(store, live_events(live_stores.lake, LIVE_DAY, LIVE_DAY), speed=None)
        wait_caught_up(store, worker)
    yield store
    server.stop()


@pytest.fixture
def client(live_stores, served):
    champion = Champion(live_stores.tracking, poll_seconds=3600).start()
    with TestClient(create_app(served, champion, None, token=TOKEN, limits=Limits(20_000, 50))) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def a_flight(live_stores) -> dict:
    row = gold_of_live_day(live_stores).row(0, named=True)
    return {"flight_id": row["flight_id"]}


def test_an_answer_names_its_flight_model_vector_and_as_of_time(client, live_stores):
    answer = client.post(
        "/predict", json={"carrier": "UA", "flight": 1545, "origin": "EWR", "date": "2013-03-08"}
    )
    if answer.status_code == 404:  # UA 1545 does not fly from EWR that day: ask for the first flight of gold
        answer = client.post("/predict", json=a_flight(live_stores))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) >= {"probability_late", "model_version", "features", "as_of", "predict_at", "complete"}
    assert 0 < body["probability_late"] < 1 and body["complete"] and list(body["features"]) == FEATURE_COLUMNS


def test_without_the_token_a_request_is_refused(client, live_stores):
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        refused = client.post("/predict", json=a_flight(live_stores), headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/health", headers={"Authorization": ""}).status_code == 401


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"carrier": "UA", "flight": 1545, "origin": "EWR"}, "missing date"),
        ({"carrier": "ua", "flight": 1545, "origin": "EWR", "date": "2013-03-08"}, "carrier"),
        ({"carrier": "UA", "flight": 0, "origin": "EWR", "date": "2013-03-08"}, "flight"),
        ({"carrier": "UA", "flight": 1545, "origin": "EWR", "date": "2013-02-30"}, "date"),
        ({"flight_id": "x"}, "flight_id"),
        ({"flight_id": "2013-03-08-UA-1545-EWR", "carrier": "UA"}, "not both"),
        ({"flights": []}, "extra"),
    ],
)
def test_a_malformed_request_gets_422_naming_the_field(client, body, named):
    refused = client.post("/predict", json=body)
    assert refused.status_code == 422
    assert named in refused.text


def test_an_unknown_flight_gets_404_saying_so(client):
    missing = client.post(
        "/predict", json={"carrier": "ZZ", "flight": 1, "origin": "EWR", "date": "2013-03-08"}
    )
    assert missing.status_code == 404 and "no flight ZZ 1 from EWR on 2013-03-08" in missing.json()["detail"]
    unknown = client.post("/predict", json={"flight_id": "2013-03-09-UA-1-EWR"})
    assert unknown.status_code == 404 and "2013-03-09-UA-1-EWR" in unknown.json()["detail"]


def test_bodies_and_batches_past_their_limits_get_413(client, live_stores):
    flights = [a_flight(live_stores)] * 51
    assert client.post("/predict/batch", json={"flights": flights}).status_code == 413
    assert client.post("/predict/batch", json={"flights": flights[:50]}).status_code == 200
    big = client.post(
        "/predict", content=b"{" + b" " * 30_000 + b"}", headers={"content-type": "application/json"}
    )
    assert big.status_code == 413

    def chunks():
        yield b'{"flight_id": "'
        for _ in range(30):
            yield b"x" * 1000

    chunked = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert chunked.status_code == 413


def test_a_store_that_does_not_answer_gets_503_with_the_reason(live_stores):
    gone = OnlineStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    champion = Champion(live_stores.tracking, poll_seconds=3600).start()
    with TestClient(create_app(gone, champion, None)) as client:
        answer = client.post("/predict", json=a_flight(live_stores))
        assert answer.status_code == 503 and "does not answer" in answer.json()["detail"]
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "not ready"


def test_health_and_metrics(client, live_stores):
    ready = client.get("/health")
    assert ready.status_code == 200 and ready.json()["status"] == "ready", ready.text
    client.post("/predict", json=a_flight(live_stores))
    text = client.get("/metrics").text
    for metric in (
        'lakehouse_requests_total{endpoint="/predict",status="200"}',
        "lakehouse_request_seconds_bucket",
        "lakehouse_model_version",
        "lakehouse_feature_age_seconds_bucket",
    ):
        assert metric in text


@pytest.mark.slow
def test_the_champion_moves_under_load_without_a_failed_or_mixed_request(live_stores, served):
    tracking = live_stores.tracking
    before = tracking.champion().version
    gold = gold_of_live_day(live_stores).sort("flight_id").head(40)
    champion = Champion(tracking, poll_seconds=0.5).start()
    answers: list[tuple[float, int, dict]] = []
    stop = threading.Event()

    with TestClient(create_app(served, champion, None)) as client:

        def load():
            while not stop.is_set():
                answer = client.post(
                    "/predict/batch", json={"flights": [{"flight_id": f} for f in gold["flight_id"]]}
                )
                answers.append((time.monotonic(), answer.status_code, answer.json()))

        loader = threading.Thread(target=load)
        loader.start()
        try:
            time.sleep(1)
            other = {**SMALL_MODEL, "max_iter": 20, "max_leaf_nodes": 4}
            features = gold_of_live_day(live_stores)
            new = register_model(tracking, features, other, champion=False)
            moved_at = time.monotonic()
            tracking.client().set_registered_model_alias(tracking.model_name, CHAMPION, new)
            deadline = moved_at + 30
            while not any(a[2].get("model_version") == int(new) for a in answers[-3:]):
                assert time.monotonic() < deadline, "the service did not move to the new champion within 30 s"
                time.sleep(0.1)
            time.sleep(1)
        finally:
            stop.set()
            loader.join()
            tracking.client().set_registered_model_alias(tracking.model_name, CHAMPION, before)
    assert all(status == 200 for _, status, _ in answers), [a for a in answers if a[1] != 200][:1]
    expected = {
        int(v): scores_of(load_model(tracking, v), gold) for v in (before, new)
    }  # each version's batch scores of the same flights
    for _, _, body in answers:
        versions = {p["model_version"] for p in body["predictions"]}
        assert versions == {body["model_version"]}
        got = np.array([p["probability_late"] for p in body["predictions"]])
        assert np.array_equal(got, expected[body["model_version"]])
    first_new = next(at for at, _, body in answers if body["model_version"] == int(new))
    assert first_new - moved_at < 30


def fuzz_operation(operation, answered: dict[str, list[int]]) -> None:
    label = operation.label

    @given(case=operation.as_strategy())
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call()
        answered.setdefault(label, []).append(response.status_code)
        assert response.status_code < 500, f"{label} {case.body!r}: {response.text[:300]}"

    fuzz()


def test_the_api_never_answers_5xx_to_anything(live_stores, served):
    """Every operation of the OpenAPI document fuzzed (schemathesis' generated requests, valid and not):
    no answer is a server error."""
    champion = Champion(live_stores.tracking, poll_seconds=3600).start()
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(served, champion, None))
    answered: dict[str, list[int]] = {}
    for found in schema.get_all_operations():
        operation = found.ok()

        fuzz_operation(operation, answered)
    assert set(answered) == {"POST /predict", "POST /predict/batch", "GET /health", "GET /metrics"}
    assert all(status < 500 for statuses in answered.values() for status in statuses)
    # Malformed requests and well-formed ones for flights the store does not have, both answered.
    assert {422, 404} <= set(answered["POST /predict"])


def test_a_vector_without_a_feature_the_model_reads_is_not_scored(live_stores, served):
    """A worker of another version wrote vectors without a feature: 503 naming it, never a guess."""
    flight = a_flight(live_stores)["flight_id"]
    key = f"lakehouse:vector:{flight}"
    kept = served.redis.get(key)
    vector = json.loads(kept)
    del vector["features"]["weather_visib"]
    served.redis.set(key, json.dumps(vector))
    try:
        champion = Champion(live_stores.tracking, poll_seconds=3600).start()
        with TestClient(create_app(served, champion, None)) as client:
            answer = client.post("/predict", json={"flight_id": flight})
        assert answer.status_code == 503 and "weather_visib" in answer.json()["detail"]
    finally:
        served.redis.set(key, kept)
