"""Shared fixtures: the real data under RECEXP_DATA_DIR, and a quiet MLflow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("RECEXP_DATA_DIR") and _SHARED.is_dir():
    # The same default as the Makefile, for a bare `pytest` in a checkout.
    os.environ["RECEXP_DATA_DIR"] = str(_SHARED)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder of real public data (``../shared/data`` in CI); skips when absent."""
    value = os.environ.get("RECEXP_DATA_DIR")
    if not value or not Path(value).is_dir():
        message = f"RECEXP_DATA_DIR ({value!r}) is not the shared data folder"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run the real-data tests")
        pytest.skip(message)
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


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A project root of its own for one test module: ``mlflow.db`` and ``mlruns/`` in a
    temporary folder (``RECEXP_HOME``), so tests never touch the checkout's runs."""
    from recexp import tracking

    root = tmp_path_factory.mktemp("project")
    (root / "mlruns").mkdir()
    saved = {k: os.environ.get(k) for k in ("RECEXP_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["RECEXP_HOME"] = str(root)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    tracking.configure()
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    tracking.configure()
