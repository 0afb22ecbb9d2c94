"""lakehouse: raw sources to bronze and silver Delta tables, DuckDB gold, and an MLflow-tracked model."""

import warnings

# Single-run backfills (BackfillPolicy) are the design's choice; Dagster 1.13 still labels them beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")
