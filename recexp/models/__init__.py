"""Recommenders behind one protocol: LightFM hybrid, baselines, content-based, click models."""

# Importing a model module registers its models by name.
from recexp.models import baselines as _baselines  # noqa: F401
from recexp.models import content as _content  # noqa: F401
from recexp.models import ctr as _ctr  # noqa: F401
from recexp.models import lightfm as _lightfm  # noqa: F401
from recexp.models.base import (
    EpochCallback,
    NotFittedError,
    Recommender,
    get_model_class,
    iter_batches,
    register_model,
    top_k,
)

__all__ = [
    "EpochCallback",
    "NotFittedError",
    "Recommender",
    "get_model_class",
    "iter_batches",
    "register_model",
    "top_k",
]
