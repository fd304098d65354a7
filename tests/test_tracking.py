"""recexp.tracking: batched per-step metrics."""

from __future__ import annotations

import time

import pytest

from recexp import tracking


def _history(run_id: str, key: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient().get_metric_history(run_id, key)


def test_step_metrics_store_every_step_with_its_time(store):
    with tracking.tracked_run("steps", experiment="test-tracking") as run:
        run_id = run.info.run_id
        before = int(time.time() * 1000)
        with tracking.StepMetrics(run_id, interval=3600) as steps:
            for epoch in range(1, 31):
                steps.log({"valid.a": epoch / 10, "valid.b": -epoch}, step=epoch)
            assert _history(run_id, "valid.a") == []  # nothing written before the flush
    history = _history(run_id, "valid.a")
    assert [m.step for m in history] == list(range(1, 31))
    assert [m.value for m in history] == pytest.approx([e / 10 for e in range(1, 31)])
    assert all(before <= m.timestamp <= int(time.time() * 1000) for m in history)
    assert [m.value for m in _history(run_id, "valid.b")] == [-e for e in range(1, 31)]


def test_step_metrics_write_when_the_interval_has_passed(store):
    with tracking.tracked_run("interval", experiment="test-tracking") as run:
        steps = tracking.StepMetrics(interval=0.0)  # the active run
        steps.log({"x": 1.0}, step=1)
        assert [m.step for m in _history(run.info.run_id, "x")] == [1]


def test_step_metrics_flush_on_failure(store):
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.tracked_run("failing", experiment="test-tracking") as run:
            with tracking.StepMetrics(interval=3600) as steps:
                steps.log({"x": 0.5}, step=1)
                raise RuntimeError("boom")
    assert [m.value for m in _history(run.info.run_id, "x")] == [0.5]


def test_step_metrics_need_a_run(store):
    with pytest.raises(RuntimeError, match="needs a run_id or an active MLflow run"):
        tracking.StepMetrics()
