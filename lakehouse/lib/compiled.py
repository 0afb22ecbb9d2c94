"""The registered model in a form fast enough to score one flight on a request path.

scikit-learn's pipeline spends about 10 ms on one row (the column transformer's pandas handling, then a
Python call per tree of the gradient boosting). ``CompiledModel`` holds the same fitted pipeline as flat
arrays: the ordinal encoder as dictionaries, and every tree's nodes in one table walked for all trees at
once, level by level, with NumPy. It follows scikit-learn's predictor rule for rule (``_predictor.pyx``:
missing values by ``missing_go_to_left``, categories by the left bitset, unknown or negative categories
as missing) and adds the trees' outputs in scikit-learn's order, so its probabilities are the pipeline's,
bit for bit (tested on real feature rows). It reads the pipeline; it does not replace the registered model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import expit
from sklearn.pipeline import Pipeline

from lakehouse.lib.model import CATEGORICAL_FEATURES, NUMERIC_FEATURES


class CompiledModel:
    """A fitted ``build_pipeline`` pipeline (ordinal encoder, binary gradient boosting) as arrays."""

    def __init__(self, pipeline: Pipeline):
        encode, classify = pipeline.named_steps["encode"], pipeline.named_steps["classify"]
        if classify.n_trees_per_iteration_ != 1:
            raise ValueError("only a binary classifier (one tree per iteration) can be compiled")
        ordinal = encode.named_transformers_["categories"]
        self.categories = [
            {value: float(code) for code, value in enumerate(values) if isinstance(value, str)}
            for values in ordinal.categories_
        ]
        self.columns = [*CATEGORICAL_FEATURES, *NUMERIC_FEATURES]
        if list(encode.get_feature_names_out()) != self.columns:
            raise ValueError("the pipeline's columns are not the model input's (categories first)")
        self.baseline = float(np.asarray(classify._baseline_prediction).ravel()[0])
        trees = [predictors[0] for predictors in classify._predictors]
        known, f_idx_map = classify._bin_mapper.make_known_categories_bitsets()
        self.known_bitsets, self.f_idx_map = np.asarray(known), np.asarray(f_idx_map, dtype=np.intp)

        offsets = np.cumsum([0] + [len(t.nodes) for t in trees])[:-1]
        bitset_offsets = np.cumsum([1] + [len(t.raw_left_cat_bitsets) for t in trees])[:-1]
        nodes = np.concatenate([t.nodes for t in trees])
        tree_of_node = np.repeat(np.arange(len(trees)), [len(t.nodes) for t in trees])
        self.roots = offsets.astype(np.intp)
        self.value = nodes["value"].astype(np.float64)
        self.feature = nodes["feature_idx"].astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_left = nodes["missing_go_to_left"].astype(bool)
        self.is_leaf = nodes["is_leaf"].astype(bool)
        self.is_categorical = nodes["is_categorical"].astype(bool)
        self.left = nodes["left"].astype(np.intp) + offsets[tree_of_node]
        self.right = nodes["right"].astype(np.intp) + offsets[tree_of_node]
        # Row 0 of the bitsets is empty: numeric nodes point at it.
        self.left_bitsets = np.concatenate(
            [
                np.zeros((1, 8), np.uint32),
                *(t.raw_left_cat_bitsets for t in trees if len(t.raw_left_cat_bitsets)),
            ]
        )
        self.bitset = np.where(
            self.is_categorical, nodes["bitset_idx"].astype(np.intp) + bitset_offsets[tree_of_node], 0
        )
        self.depth = max(t.get_max_depth() for t in trees)

    def encode(self, rows: Sequence[Mapping[str, object]]) -> np.ndarray:
        """The model's input matrix for feature dictionaries: categories as their codes (unknown or
        missing: -1), numbers as floats (missing: NaN), in the pipeline's column order."""
        matrix = np.empty((len(rows), len(self.columns)), dtype=np.float64)
        for i, row in enumerate(rows):
            for j, (column, codes) in enumerate(zip(CATEGORICAL_FEATURES, self.categories, strict=True)):
                matrix[i, j] = codes.get(row[column], -1.0)
            offset = len(CATEGORICAL_FEATURES)
            for j, column in enumerate(NUMERIC_FEATURES, start=offset):
                value = row[column]
                matrix[i, j] = np.nan if value is None else float(value)
        return matrix

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        """The boosting's raw scores: every tree walked for every row at once."""
        rows = np.arange(len(matrix))[:, None]
        at = np.broadcast_to(self.roots, (len(matrix), len(self.roots))).copy()
        for _ in range(self.depth):
            leaf = self.is_leaf[at]
            if leaf.all():
                break
            value = matrix[rows, self.feature[at]]
            missing = np.isnan(value)
            categorical = self.is_categorical[at]
            code = np.clip(np.where(missing, 0, value), 0, 255).astype(np.uint8)
            word, bit = code // 32, (code % 32).astype(np.uint32)
            in_left = ((self.left_bitsets[self.bitset[at], word] >> bit) & 1).astype(bool)
            known = ((self.known_bitsets[self.f_idx_map[self.feature[at]], word] >> bit) & 1).astype(bool)
            as_missing = missing | (categorical & ((value < 0) | (~in_left & ~known)))
            go_left = np.where(
                as_missing, self.missing_left[at], np.where(categorical, in_left, value <= self.threshold[at])
            )
            at = np.where(leaf, at, np.where(go_left, self.left[at], self.right[at]))
        leaves = self.value[at]
        # scikit-learn starts from the baseline and adds the trees one by one: the same sums, in order.
        totals = np.cumsum(np.hstack([np.full((len(matrix), 1), self.baseline), leaves]), axis=1)
        return totals[:, -1]

    def probabilities(self, rows: Sequence[Mapping[str, object]]) -> np.ndarray:
        """The probability that each flight is late, as the pipeline's ``predict_proba(...)[:, 1]``."""
        if not rows:
            return np.empty(0)
        return expit(self.raw(self.encode(rows)))
