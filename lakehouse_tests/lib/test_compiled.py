"""The compiled trees give the pipeline's probabilities bit for bit: on real feature rows, with unknown
and missing categories, missing numbers, and both a small and a deep model."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from lakehouse.lib.compiled import CompiledModel
from lakehouse.lib.features import FEATURE_COLUMNS, HISTORY_LOOKBACK_DAYS
from lakehouse.lib.model import build_pipeline, model_input
from lakehouse_tests.real_silver import features_of, real_silver

FIRST, LAST = date(2013, 5, 1), date(2013, 5, 7)


@pytest.fixture(scope="module")
def features():
    silver = real_silver(FIRST - timedelta(days=HISTORY_LOOKBACK_DAYS), LAST)
    days = silver["flights"].filter(pl.col("flight_date") >= FIRST)
    return features_of(silver, days, silver["flights"])


@pytest.mark.parametrize(
    "params",
    [
        {"learning_rate": 0.1, "max_iter": 30, "max_leaf_nodes": 8, "l2_regularization": 0.0},
        {"learning_rate": 0.05, "max_iter": 400, "max_leaf_nodes": 31, "l2_regularization": 1.0},
    ],
    ids=["small", "as-trained"],
)
def test_compiled_probabilities_equal_the_pipeline_bit_for_bit(features, params):
    train = features.filter(pl.col("flight_date") < LAST)
    model = build_pipeline(**params).fit(model_input(train), train["late"].to_numpy())
    compiled = CompiledModel(model)
    assert compiled.is_categorical.any(), "the test needs a model with categorical splits"

    scored = features.filter(pl.col("flight_date") == LAST)
    odd = scored.head(60).with_columns(
        carrier=pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.lit("ZZ")).otherwise("carrier"),
        dest=pl.when(pl.int_range(pl.len()) % 4 == 0).then(None).otherwise("dest"),
        weather_visib=pl.when(pl.int_range(pl.len()) % 2 == 0).then(None).otherwise("weather_visib"),
    )
    for frame in (scored, odd):
        expected = model.predict_proba(model_input(frame))[:, 1]
        rows = frame.select(FEATURE_COLUMNS).to_dicts()
        assert np.array_equal(compiled.probabilities(rows), expected)
        assert all(compiled.probabilities([row])[0] == p for row, p in zip(rows[:40], expected, strict=False))


def test_an_empty_request_scores_nothing(features):
    train = features.filter(pl.col("flight_date") < LAST)
    model = build_pipeline(0.1, 10, 4, 0.0).fit(model_input(train), train["late"].to_numpy())
    assert CompiledModel(model).probabilities([]).shape == (0,)
