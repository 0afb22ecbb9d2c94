"""lakehouse: raw sources to bronze and silver Delta tables, DuckDB gold, and an MLflow-tracked model."""

import warnings

# Single-run backfills and partition mappings that reach before the first day are the design's choices;
# Dagster 1.13 still labels both beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")
warnings.filterwarnings("ignore", message="Parameter `allow_nonexistent_upstream_partitions`")
