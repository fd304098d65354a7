"""Compare tracked runs: read them back from MLflow, then intervals and paired tests.

>>> from recexp.compare import compare_experiment          # doctest: +SKIP
>>> compare_experiment("ml100k-baselines", metric="ndcg@10", baseline="most_popular")
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from recexp import tracking
from recexp.stats import RunTable, compare_runs

__all__ = ["compare_experiment", "format_table", "load_runs", "plot_table"]


_TABLES = {"ranking": "per_user_metrics.parquet", "ctr": "per_impression_metrics.parquet"}
"""The per-unit metric table each task logs (users for ranking, impressions for clicks)."""
_DEFAULT_METRIC = {"ranking": "ndcg@10", "ctr": "log_loss"}


def _latest_parent(client, experiment_id: str) -> str:
    runs = client.search_runs([experiment_id],
                              filter_string="tags.`recexp.kind` = 'experiment' and "
                                            "attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise ValueError("no finished experiment run found: run the config first")
    return runs[0].info.run_id


def load_runs(experiment: str, *, parent_run_id: str | None = None) -> list[RunTable]:
    """The per-user tables of every finished child run of one invocation (latest by default)."""
    from mlflow.tracking import MlflowClient

    tracking.configure()
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = [e.name for e in client.search_experiments()]
        import difflib

        near = difflib.get_close_matches(experiment, names, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise KeyError(f"no experiment named {experiment!r} in {tracking.tracking_uri()}{hint}")
    parent = parent_run_id or _latest_parent(client, found.experiment_id)
    children = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"], max_results=5000)
    if not children:
        raise ValueError(f"parent run {parent} has no finished child runs")
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for child in children:
            name = _TABLES[child.data.tags.get("recexp.task", "ranking")]
            local = client.download_artifacts(child.info.run_id, name, tmp)
            per_user = pd.read_parquet(local)
            Path(local).unlink()
            tags = child.data.tags
            tables.append(RunTable(label=tags.get("recexp.label", child.info.run_name),
                                   seed=int(tags.get("recexp.seed", 0)), per_user=per_user))
    return tables


def compare_experiment(experiment: str, *, metric: str | None = None,
                       baseline: str | None = None, parent_run_id: str | None = None,
                       alpha: float = 0.05) -> pd.DataFrame:
    """The comparison table of one invocation of an experiment.

    ``metric`` defaults to ``ndcg@10`` for ranking and ``log_loss`` for click prediction
    (``task: ctr``, whose runs are paired impression by impression).

    Returns a DataFrame (see :func:`recexp.stats.compare_runs`): model, mean, interval,
    difference to the baseline, paired t and Wilcoxon p-values, Holm-adjusted p-value,
    significant.
    """
    runs = load_runs(experiment, parent_run_id=parent_run_id)
    if metric is None:
        metric = _DEFAULT_METRIC["ctr" if runs[0].unit == "impression" else "ranking"]
    metric = metric.replace("_at_", "@")  # accept MLflow's spelling (ndcg_at_10) too
    base = baseline or runs[0].label
    return compare_runs(runs, metric=metric, baseline=base, alpha=alpha)


def format_table(table: pd.DataFrame) -> str:
    """The comparison table as aligned text for a terminal."""
    metric = table["metric"].iloc[0]
    lines = [f"{metric}: mean [interval]; diff and p-values against the first row's baseline"]
    header = (f"{'model':<18} {'mean':>8} {'interval':>19} {'seeds':>5} {'diff':>9} "
              f"{'p(t)':>9} {'p(Wilc.)':>9} {'p(Holm)':>9}  sig")
    lines.append(header)
    lines.append("-" * len(header))
    ordered = pd.concat([table[table["diff"] == 0].head(1),
                         table.drop(table[table["diff"] == 0].head(1).index)
                         .sort_values("mean", ascending=False)])
    for _, row in ordered.iterrows():
        interval = (f"[{row['low']:.4f}, {row['high']:.4f}]" if pd.notna(row["low"])
                    else "-")

        def p(v: float) -> str:
            return "-" if pd.isna(v) else ("<1e-4" if v < 1e-4 else f"{v:.4f}")

        sig = "*" if row["significant"] else ""
        lines.append(f"{row['model']:<18} {row['mean']:>8.4f} {interval:>19} "
                     f"{int(row['seeds']):>5} {row['diff']:>+9.4f} {p(row['t_pvalue']):>9} "
                     f"{p(row['wilcoxon_pvalue']):>9} {p(row['holm_pvalue']):>9}  {sig}")
    lines.append(f"intervals: {', '.join(sorted(set(table['interval'])))}; "
                 "* = Holm-adjusted p < alpha")
    return "\n".join(lines)


def plot_table(table: pd.DataFrame):
    """Bar chart of the comparison table (mean with interval whiskers)."""
    from recexp.plots import metric_bars

    return metric_bars(table, metric=table["metric"].iloc[0])
