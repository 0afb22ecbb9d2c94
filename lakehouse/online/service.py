"""``lakehouse serve``: the scoring service (FastAPI).

A request names flights; the service reads each one's precomputed vector from the online store (one round
trip, never the lake), scores them all with the champion it holds, and answers with the probability that
each is late, the model version, the vector and its as-of time. The scored rows go to the request log
(``online/requests``) off the request path.

- The champion is loaded by alias; a thread looks at the alias every ``poll_seconds`` and, when it has
  moved, loads the new version in the background and swaps it in whole: a request uses the one model it
  picked up at its start.
- One flight, or a few, is scored by ``CompiledModel`` (the same trees as arrays: under a millisecond);
  larger batches by the pipeline itself. Both give the same probabilities, bit for bit.
- Every request needs ``Authorization: Bearer <LAKEHOUSE_SERVE_TOKEN>`` when the token is set (compared
  in constant time). Bodies over ``max_body_bytes`` and batches over ``max_batch`` get 413.
- 422 names the field that is wrong; 404 says which flight the store does not have; 503 says why the
  service cannot answer now (the store unreachable, no champion loaded). A vector computed without some
  of its history says so (``complete: false`` and the days missing).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import date as Date
from typing import Annotated, Any

import numpy as np
import polars as pl
import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.pipeline import Pipeline

from lakehouse.catalog import ONLINE_FEATURE_STORE
from lakehouse.lib.compiled import CompiledModel
from lakehouse.lib.features import FEATURE_COLUMNS
from lakehouse.lib.model import CATEGORICAL_FEATURES, scores_of
from lakehouse.online.request_log import RequestLog
from lakehouse.online.store import OnlineStore, StoreUnavailable
from lakehouse.resources import MlflowTracking

log = logging.getLogger(__name__)

# Up to this many flights a request is scored by the compiled trees, past it by the pipeline (faster in
# bulk); the probabilities are the same either way.
COMPILED_UP_TO = 64
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError, StoreUnavailable, OSError)


# --- the model ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedModel:
    version: int
    pipeline: Pipeline
    compiled: CompiledModel
    loaded_at: float

    def probabilities(self, features: list[dict[str, Any]]) -> np.ndarray:
        if len(features) <= COMPILED_UP_TO:
            return self.compiled.probabilities(features)
        frame = pl.DataFrame(features, schema=_input_schema(), strict=False)
        return scores_of(self.pipeline, frame)


def _input_schema() -> dict[str, pl.DataType]:
    return {c: pl.String if c in CATEGORICAL_FEATURES else pl.Float64 for c in FEATURE_COLUMNS}


class Champion:
    """The champion model, followed by alias (see the module's description)."""

    def __init__(self, tracking: MlflowTracking, poll_seconds: float = 5.0):
        self.tracking, self.poll_seconds = tracking, poll_seconds
        self.current: LoadedModel | None = None
        self.problem: str | None = "the champion has not been loaded yet"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion", daemon=True)

    def refresh(self) -> bool:
        """Load the version the alias points at if it is not the one held; whether it moved."""
        try:
            version = self.tracking.champion()
        except Exception as error:  # the registry is another service: say why, keep serving what we hold
            self.problem = f"the model registry at {self.tracking.tracking_uri} does not answer: {error}"
            return False
        if version is None:
            self.problem = f"{self.tracking.model_name} has no champion yet: run `make demo`"
            return False
        number = int(version.version)
        if self.current is not None and self.current.version == number:
            self.problem = None
            return False
        from lakehouse.ml.registry import load_model

        pipeline = load_model(self.tracking, number)
        self.current = LoadedModel(number, pipeline, CompiledModel(pipeline), time.time())
        self.problem = None
        log.info("serving %s version %d", self.tracking.model_name, number)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as error:  # a broken version must not stop the service serving the last one
                self.problem = f"could not load the new champion: {error}"
                log.exception("could not load the new champion")

    def start(self) -> Champion:
        self.refresh()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()


# --- requests and answers ----------------------------------------------------------------------------


class Flight(BaseModel):
    """A flight, by its id or by carrier, flight number, origin and date."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"carrier": "UA", "flight": 1545, "origin": "EWR", "date": "2013-01-01"}]
        },
    )

    flight_id: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}-[A-Z0-9]{2}-\d{1,4}-[A-Z]{3}$")] | None = (
        None
    )
    carrier: Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")] | None = None
    flight: Annotated[int, Field(ge=1, le=9999)] | None = None
    origin: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    date: Date | None = None

    @model_validator(mode="after")
    def one_way_of_naming(self) -> Flight:
        parts = {"carrier": self.carrier, "flight": self.flight, "origin": self.origin, "date": self.date}
        given = [name for name, value in parts.items() if value is not None]
        if self.flight_id is not None and given:
            raise ValueError(
                f"give flight_id or carrier, flight, origin and date, not both ({', '.join(given)})"
            )
        if self.flight_id is None and len(given) < len(parts):
            missing = [name for name in parts if name not in given]
            raise ValueError(f"missing {', '.join(missing)} (or give flight_id)")
        return self

    def describe(self) -> str:
        if self.flight_id is not None:
            return self.flight_id
        return f"{self.carrier} {self.flight} from {self.origin} on {self.date}"


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flights: Annotated[list[Flight], Field(min_length=1)]


FeatureValue = float | int | str | bool | None


class Prediction(BaseModel):
    flight_id: str
    carrier: str
    flight: int
    origin: str
    date: Date
    sched_dep_at: datetime
    predict_at: datetime = Field(description="One hour before the scheduled departure.")
    as_of: datetime = Field(description="The time of the latest event the vector counts.")
    final: bool = Field(
        description="Whether the events have passed the prediction time: the vector is final."
    )
    probability_late: float
    model_version: int
    complete: bool = Field(description="False when the store lacked history days (listed) for the features.")
    missing_history_days: list[Date]
    features: dict[str, FeatureValue]


class Predictions(BaseModel):
    model_version: int
    predictions: list[Prediction]


class Problem(BaseModel):
    detail: str


class Health(BaseModel):
    status: str
    model_version: int | None
    store: str
    problems: list[str]


ERRORS = {
    401: {"model": Problem, "description": "No or wrong bearer token."},
    404: {"model": Problem, "description": "The online store has no such flight."},
    413: {"model": Problem, "description": "The body or the batch is too large."},
    503: {"model": Problem, "description": "The store does not answer or no champion is loaded."},
}


class ServiceError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


# --- the application ---------------------------------------------------------------------------------


@dataclass
class Limits:
    max_body_bytes: int = 1_000_000
    max_batch: int = 1000


class Metrics:
    """The service's Prometheus metrics, in a registry of its own."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lakehouse_requests", "Requests answered.", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "lakehouse_request_seconds",
            "Time to answer a request.",
            ["endpoint"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.flights = Counter("lakehouse_flights_scored", "Flights scored.", registry=self.registry)
        self.model_version = Gauge(
            "lakehouse_model_version", "The champion version served.", registry=self.registry
        )
        self.feature_age = Histogram(
            "lakehouse_feature_age_seconds",
            "How long before the request the scored vector was computed.",
            buckets=(0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400),
            registry=self.registry,
        )
        self.log_pending = Gauge(
            "lakehouse_request_log_pending", "Scored rows not yet in the lake.", registry=self.registry
        )


def create_app(
    store: OnlineStore,
    champion: Champion,
    request_log: RequestLog | None,
    token: str | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """The service over a store, a champion and a request log (started and stopped with the app)."""
    limits = limits or Limits()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            yield
        finally:
            champion.stop()
            if request_log is not None:
                request_log.close()

    app = FastAPI(
        title="lakehouse scoring service",
        description="The probability that a New York flight is late, from its online feature vector and the "
        "champion model.",
        version="1",
        lifespan=lifespan,
    )

    app.add_middleware(Guard, token=token, limits=limits, metrics=metrics)

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, error: ServiceError):
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    def predictions(flights: list[Flight]) -> dict:
        model = champion.current
        if model is None:
            raise ServiceError(503, f"no model to score with: {champion.problem}")
        try:
            ids = [flight.flight_id or _lookup(store, flight) for flight in flights]
            vectors = store.vectors(ids)
        except STORE_ERRORS as error:
            raise ServiceError(503, f"the online store at {store.url} does not answer: {error}") from None
        missing = [
            flight.describe() for flight, vector in zip(flights, vectors, strict=True) if vector is None
        ]
        if missing:
            raise ServiceError(404, f"the online store has no vector for {', '.join(missing[:10])}: "
                               "not replayed live yet, or scheduled beyond the worker's horizon")  # fmt: skip
        lacking = sorted({c for v in vectors for c in FEATURE_COLUMNS if c not in v["features"]})
        if lacking:
            raise ServiceError(
                503,
                f"the stored vectors lack {len(lacking)} feature(s) the model reads "
                f"({', '.join(lacking[:5])}): the stream worker runs another version of the features",
            )
        scores = model.probabilities([vector["features"] for vector in vectors])
        requested_at, request_id = datetime.now(UTC), uuid.uuid4().hex
        now = time.time()
        answers = []
        for vector, score in zip(vectors, scores, strict=True):
            metrics.feature_age.observe(max(0.0, now - vector.get("computed_at", now)))
            answers.append(_answer(vector, float(score), model.version))
        if request_log is not None:
            request_log.add([(request_id, requested_at, v, model.version, a["probability_late"])
                             for v, a in zip(vectors, answers, strict=True)])  # fmt: skip
            metrics.log_pending.set(request_log.pending)
        metrics.flights.inc(len(answers))
        metrics.model_version.set(model.version)
        return {"model_version": model.version, "predictions": answers}

    # The handlers build their JSON themselves (the response models document it): validating a
    # response of 90 features again would cost more than scoring it. They are coroutines: a request is
    # a store lookup and a millisecond of arithmetic, not worth a hop to a thread.
    @app.post("/predict", response_model=Prediction, responses=ERRORS)
    async def predict(flight: Flight) -> Response:
        """Score one flight."""
        return _json(predictions([flight])["predictions"][0])

    @app.post("/predict/batch", response_model=Predictions, responses=ERRORS)
    async def predict_batch(batch: Batch) -> Response:
        """Score many flights with one model version."""
        if len(batch.flights) > limits.max_batch:
            raise ServiceError(413, f"{len(batch.flights)} flights in one batch; at most {limits.max_batch}")
        return _json(predictions(batch.flights))

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health():
        """Ready when the champion is loaded and the store answers with its history pushed."""
        problems = [] if champion.current is not None else [champion.problem or "no model loaded"]
        try:
            store.check()
            if store.reference() is None:
                problems.append(f"the store has no history: materialize {ONLINE_FEATURE_STORE.path}")
        except STORE_ERRORS as error:
            problems.append(str(error))
        body = Health(
            status="ready" if not problems else "not ready",
            model_version=None if champion.current is None else champion.current.version,
            store=store.url,
            problems=problems,
        )
        return JSONResponse(body.model_dump(), status_code=200 if not problems else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus():
        """Requests, latency, flights scored, model version, feature age, in Prometheus' text format."""
        if request_log is not None:
            metrics.log_pending.set(request_log.pending)
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class Guard:
    """Every request, before the application sees it: 401 without the token (when one is set), 413 once
    the body passes the limit, declared or not (chunked: the body is read here first, up to the limit,
    and handed on whole); and its count and latency in the metrics."""

    def __init__(self, app, token: str | None, limits: Limits, metrics: Metrics):
        self.app, self.limits, self.metrics = app, limits, metrics
        self.token = None if token is None else token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        refused = self._refused(dict(scope["headers"]))
        if refused is None:
            body, refused = await self._body(receive)
        if refused is not None:
            await refused(scope, receive, sending)
        else:
            await self.app(scope, _replay([body], receive), sending)
        endpoint = scope["path"]
        self.metrics.requests.labels(endpoint, str(status[0])).inc()
        self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    def _refused(self, headers: dict[bytes, bytes]) -> JSONResponse | None:
        if self.token is not None:
            scheme, _, credential = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credential, self.token):
                return JSONResponse(
                    {"detail": "a bearer token is required (Authorization: Bearer <LAKEHOUSE_SERVE_TOKEN>)"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limits.max_body_bytes):
            return self._too_large()
        return None

    def _too_large(self) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the body is over {self.limits.max_body_bytes:,} bytes"}, status_code=413
        )

    async def _body(self, receive) -> tuple[dict, JSONResponse | None]:
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return message, None
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            more = message.get("more_body", False)
            if size > self.limits.max_body_bytes:
                return {}, self._too_large()
        return {"type": "http.request", "body": b"".join(parts), "more_body": False}, None


def _replay(messages: list[dict], receive):
    """An ASGI ``receive`` that gives ``messages``, then what ``receive`` gives (the client leaving)."""
    pending = list(messages)

    async def replayed():
        return pending.pop(0) if pending else await receive()

    return replayed


def _answer(vector: dict, probability: float, version: int) -> dict:
    """The JSON of one scored flight (the fields of ``Prediction``)."""
    return {
        "flight_id": vector["flight_id"],
        "carrier": vector["carrier"],
        "flight": vector["flight"],
        "origin": vector["origin"],
        "date": vector["date"],
        "sched_dep_at": vector["sched_dep_at"],
        "predict_at": vector["predict_at"],
        "as_of": vector["as_of"],
        "final": vector["final"],
        "probability_late": probability,
        "model_version": version,
        "complete": not vector["missing_history_days"],
        "missing_history_days": vector["missing_history_days"],
        "features": vector["features"],
    }


def _json(body: dict) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _lookup(store: OnlineStore, flight: Flight) -> str:
    found = store.flight_id(flight.date, flight.carrier, flight.flight, flight.origin)
    if found is None:
        raise ServiceError(404, f"the online store has no flight {flight.describe()}")
    return found
