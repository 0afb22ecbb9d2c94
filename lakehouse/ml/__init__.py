"""Model logic over the resources: training and reproduction, the champion gate, typed lineage and the
MLflow registry. The assets that call it are in ``lakehouse/defs/ml/``."""
