"""The ML layer: the delay model in MLflow, the champion gate, batch predictions."""
