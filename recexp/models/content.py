"""Content-based recommendation: items like the ones a user interacted with, by their features."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from recexp.dataset import Dataset
from recexp.models.base import Recommender, register_model
from recexp.models.baselines import (
    _csr_from_state,
    _csr_to_state,
    _fall_back_to_popularity,
    _item_popularity,
    _user_items,
)

__all__ = ["ContentBased"]


@register_model
class ContentBased(Recommender):
    """Cosine similarity between each user's profile and each item's side features.

    A user's profile is the weighted mean of the feature vectors of the items in their
    training interactions (weights: the Dataset's, or 1.0 with ``binary=True``);
    ``score(u, i) = cos(profile_u, f_i)``, in ``[-1, 1]`` (``[0, 1]`` for non-negative
    features). Features are the Dataset's item side features (``Dataset.item_side``: genres,
    TF-IDF of text, ...), never the identity columns, so items without training interactions
    (cold items) are scored from their features like any other; an item without features
    scores 0.

    Users without a signal (no training interactions, or a profile orthogonal to every item)
    are scored by popularity, the rule shared with :mod:`recexp.models.baselines`.

    Parameters
    ----------
    binary : bool
        Average the user's items with equal weight instead of the Dataset's weights.

    Notes
    -----
    Learned state: ``item_vectors_`` (float32 CSR ``[n_items, n_features]``, rows scaled to
    unit length), ``profiles_`` (float32 CSR ``[n_users, n_features]``, unit length, zero for
    users without interactions) and ``popularity_``. Memory is that of the two sparse
    matrices; scoring a batch is one sparse product, ``O(batch * n_items)`` dense output.
    """

    name = "content"
    param_names = ("binary",)

    def __init__(self, *, binary: bool = False) -> None:
        self.binary = binary
        super().__init__()

    def _fit(self, train: Dataset) -> None:
        side = train.item_side
        if side is None or side.n_features == 0:
            raise ValueError(
                "ContentBased needs item side features: build the Dataset with "
                "Dataset.from_frames(..., item_features=<item_id, feature[, value] table>)")
        features = sp.csr_matrix(side.matrix, dtype=np.float32)
        # A cosine ignores scale, so the weighted sum stands for the weighted mean, and unit
        # rows make it a plain dot product at score time. normalize keeps zero rows at zero.
        profiles = _user_items(train, bool(self.binary)) @ features
        self.profiles_ = sp.csr_matrix(normalize(profiles, norm="l2"), dtype=np.float32)
        self.item_vectors_ = sp.csr_matrix(normalize(features, norm="l2"), dtype=np.float32)
        self.popularity_ = _item_popularity(train)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        scores = (self.profiles_[user_idx] @ self.item_vectors_.T).toarray().astype(np.float32)
        return _fall_back_to_popularity(scores, user_idx, self.seen_, self.popularity_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_, **_csr_to_state("profiles", self.profiles_),
                **_csr_to_state("item_vectors", self.item_vectors_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"].astype(np.float32)
        self.profiles_ = _csr_from_state(arrays, "profiles")
        self.item_vectors_ = _csr_from_state(arrays, "item_vectors")
