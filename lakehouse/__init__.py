"""lakehouse: raw sources to bronze and silver Delta tables, DuckDB gold, and an MLflow-tracked model."""
