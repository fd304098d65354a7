"""Shared fixtures: the real data under RECEXP_DATA_DIR, and a quiet MLflow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real public data (``../shared/data`` in CI); skips when absent."""
    value = os.environ.get("RECEXP_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("RECEXP_DATA_DIR is not set to the shared data folder")
    return Path(value)


@pytest.fixture(scope="session")
def ml100k(data_dir):
    """MovieLens 100K as SourceData, read once per test session."""
    from recexp.datasets import load

    return load("movielens-100k", download=False)


@pytest.fixture(scope="session")
def ml100k_dataset(ml100k):
    """MovieLens 100K as a Dataset (all 100,000 ratings, weight 1.0)."""
    return ml100k.to_dataset()
