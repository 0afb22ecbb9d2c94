"""Jobs that `dagster job execute` and the UI launch; each runs in one process (see definitions)."""

import dagster as dg

# Everything, from landing files to the last table: what `make demo` runs over the whole year.
lakehouse_job = dg.define_asset_job(
    "lakehouse_job",
    selection=dg.AssetSelection.all(),
    description="Every asset, landing files to the last layer, for a day or (as one run) a range of days.",
)

# Bronze and silver only: what the landing sensor asks for when a day's files arrive.
ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.groups("bronze", "silver"),
    description="Load landed files into bronze and clean them into silver for a day or a range of days.",
)

# Landing files through the gold warehouse, without training: a backfill of the data layers.
gold_job = dg.define_asset_job(
    "gold_job",
    selection=dg.AssetSelection.groups("bronze", "silver", "gold"),
    description="Load, clean and build gold for a day or a range of days; no training or scoring.",
)

# Train (and register) the delay model alone, as `make quality` does with a fixed window.
train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets(["ml", "delay_model"]),
    description="Train and register a delay model on gold/flight_features; the gate is not part of it.",
)

# Training and the champion gate: what the retrain sensor asks for.
retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets(["ml", "delay_model"], ["ml", "promotions"]),
    description="Train a new delay model and put it through the champion gate.",
)

# Batch scoring of a day's flights with the champion: what the daily schedule asks for.
score_job = dg.define_asset_job(
    "score_job",
    selection=dg.AssetSelection.assets(["ml", "predictions"]),
    description="Score a day's flights with the champion.",
)
