"""Is a difference real? Intervals over users and seeds, paired tests, Holm correction.

All functions take per-user metric values (the ``per_user`` table of
:func:`recexp.metrics.evaluate`, segment ``"all"``) and use scipy's implementations.

* :func:`bootstrap_interval` — percentile bootstrap of the mean over users
  (``scipy.stats.bootstrap``).
* :func:`seed_interval` — mean, std and Student-t interval of per-seed means.
* :func:`paired_test` — paired t-test and Wilcoxon signed-rank test of two runs on the users
  both evaluated.
* :func:`holm` — Holm's step-down adjustment of many p-values (controls the family-wise
  error rate).
* :func:`summarize_runs` and :func:`compare_runs` — the tables ``recexp compare`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st

from recexp.columns import Columns

__all__ = [
    "PairedTest",
    "RunTable",
    "bootstrap_interval",
    "compare_runs",
    "holm",
    "paired_test",
    "seed_interval",
    "summarize_runs",
]


def bootstrap_interval(values: np.ndarray, *, confidence: float = 0.95,
                       n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs dropped).

    Returns ``(nan, nan)`` for fewer than two values.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = _st.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                        method="percentile", rng=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def seed_interval(means: Sequence[float], *, confidence: float = 0.95
                  ) -> tuple[float, float, float, float]:
    """``(mean, std, low, high)`` of per-seed means; a Student-t interval (ddof=1).

    With one seed the std and interval are NaN.
    """
    x = np.asarray(means, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(x.std(ddof=1))
    half = float(_st.t.ppf(0.5 + confidence / 2, len(x) - 1) * std / np.sqrt(len(x)))
    return mean, std, mean - half, mean + half


@dataclass(frozen=True)
class PairedTest:
    """Result of :func:`paired_test` (``diff`` = mean of ``b - a`` over common users)."""

    n: int
    diff: float
    t_pvalue: float
    wilcoxon_pvalue: float


def paired_test(a: pd.Series, b: pd.Series) -> PairedTest:
    """Paired t-test and Wilcoxon signed-rank test of ``b`` against ``a``.

    Parameters
    ----------
    a, b : Series indexed by user id
        One metric value per user; only users present (and finite) in both are compared.
    """
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    n = len(joined)
    if n < 2:
        return PairedTest(n, float("nan"), float("nan"), float("nan"))
    diff = joined["b"].to_numpy(float) - joined["a"].to_numpy(float)
    if np.all(diff == 0):
        return PairedTest(n, 0.0, 1.0, 1.0)
    t_p = float(_st.ttest_rel(joined["b"], joined["a"]).pvalue)
    w_p = float(_st.wilcoxon(diff, zero_method="wilcox").pvalue) if np.any(diff != 0) else 1.0
    return PairedTest(n, float(diff.mean()), t_p, w_p)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values (NaNs stay NaN and are not counted)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


@dataclass(frozen=True)
class RunTable:
    """Per-user metrics of one (model, seed) run: the input of the comparison tables."""

    label: str
    seed: int
    per_user: pd.DataFrame
    """One row per unit evaluated: a user (ranking) or an impression (click prediction)."""

    @property
    def unit(self) -> str:
        """The column that names what a row is about: ``user_id``, else ``impression``."""
        return Columns.User if Columns.User in self.per_user else "impression"


def _user_means(runs: Sequence[RunTable], label: str, metric: str) -> pd.Series:
    """Per-user value of ``metric`` averaged over the seeds of ``label`` (segment "all")."""
    frames = []
    for r in runs:
        if r.label != label:
            continue
        table = r.per_user
        if "segment" in table:
            table = table[table["segment"] == "all"]
        if metric not in table:
            have = [c for c in table.columns
                    if c not in ("segment", r.unit, "label", "probability")]
            raise KeyError(f"metric {metric!r} is not in the per-{r.unit.split('_')[0]} table "
                           f"of {label!r}, so it cannot be paired; have {have}")
        frames.append(table.set_index(table[r.unit].astype(str))[metric])
    return pd.concat(frames, axis=1).mean(axis=1)


def summarize_runs(runs: Sequence[RunTable], *, metric: str, confidence: float = 0.95
                   ) -> pd.DataFrame:
    """Mean and interval of ``metric`` per model.

    With several seeds that disagree the interval is across seeds (:func:`seed_interval`);
    with one seed, or seeds that all give the same value (a deterministic model), it is a
    bootstrap over users or impressions (:func:`bootstrap_interval`).

    Returns
    -------
    DataFrame
        ``model, mean, low, high, std_seeds, seeds, users, interval``.
    """
    rows = []
    for label in dict.fromkeys(r.label for r in runs):
        mine = [r for r in runs if r.label == label]
        users = _user_means(runs, label, metric)
        per_seed = []
        for r in mine:
            table = r.per_user
            table = table[table["segment"] == "all"] if "segment" in table else table
            per_seed.append(float(np.nanmean(table[metric])))
        # A deterministic model gives the same value for every seed: an interval across
        # seeds would be a point, so it falls back to the bootstrap like a single seed.
        if len(mine) > 1 and len(set(per_seed)) > 1:
            mean, std, low, high = seed_interval(per_seed, confidence=confidence)
            kind = "seeds-t"
        else:
            mean, std = per_seed[0], (0.0 if len(mine) > 1 else float("nan"))
            low, high = bootstrap_interval(users.to_numpy(), confidence=confidence)
            kind = "bootstrap-users" if mine[0].unit == Columns.User else "bootstrap-impressions"
        rows.append({"model": label, "mean": mean, "low": low, "high": high,
                     "std_seeds": std, "seeds": len(mine), "users": int(users.notna().sum()),
                     "interval": kind})
    return pd.DataFrame(rows)


def compare_runs(runs: Sequence[RunTable], *, metric: str, baseline: str,
                 alpha: float = 0.05, confidence: float = 0.95) -> pd.DataFrame:
    """Every model against ``baseline`` on ``metric``: difference, paired tests, Holm.

    Per-user values are averaged over each model's seeds, then paired by user. The Holm
    correction runs over the comparisons in this table (one per non-baseline model), on the
    t-test p-values; ``significant`` is Holm-adjusted p < ``alpha``.
    """
    labels = list(dict.fromkeys(r.label for r in runs))
    if baseline not in labels:
        import difflib

        near = difflib.get_close_matches(baseline, labels, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise KeyError(f"baseline {baseline!r} is not among the runs{hint} "
                       f"({', '.join(labels)})")
    summary = summarize_runs(runs, metric=metric, confidence=confidence).set_index("model")
    base = _user_means(runs, baseline, metric)
    rows = []
    for label in labels:
        row = {"model": label, **summary.loc[label].to_dict()}
        if label == baseline:
            row.update(diff=0.0, t_pvalue=np.nan, wilcoxon_pvalue=np.nan, paired_users=len(base))
        else:
            test = paired_test(base, _user_means(runs, label, metric))
            row.update(diff=test.diff, t_pvalue=test.t_pvalue,
                       wilcoxon_pvalue=test.wilcoxon_pvalue, paired_users=test.n)
        rows.append(row)
    table = pd.DataFrame(rows)
    table["holm_pvalue"] = holm(table["t_pvalue"].to_numpy())
    table["significant"] = table["holm_pvalue"] < alpha
    table.insert(0, "metric", metric)
    return table
