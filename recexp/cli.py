"""The ``recexp`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="recexp",
    help="Recommender-system experiments you can trust: data, models, sweeps, tracking.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="List, fetch and describe the datasets recexp knows.\n\n"
    "Files are read from $RECEXP_DATA_DIR/<folder>/ when present (no network), else from the "
    "cache (~/.cache/recexp or $RECEXP_CACHE_DIR), else downloaded from the publisher and "
    "checksum-verified.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


def _version(value: bool) -> None:
    if value:
        from recexp import __version__

        typer.echo(f"recexp {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Recommender-system experiments you can trust."""


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


@data_app.command("list")
def data_list() -> None:
    """List every dataset: name, task, folder, and whether its files are here already."""
    from recexp.datasets import DataNotFoundError, fetch, info, names

    rows = []
    for name in names():
        entry = info(name)
        try:
            where = str(fetch(name, download=False))
        except DataNotFoundError:
            where = "-" if entry.source.remote is None else "(downloadable)"
            if entry.source.remote is None:
                where = "(manual download)"
        rows.append((name, entry.task, where, entry.description))
    width = max(len(r[0]) for r in rows)
    for name, task, where, desc in rows:
        typer.echo(f"{name:<{width}}  {task:<8} {where}")
        typer.echo(f"{'':<{width}}  {desc}")


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="Dataset name (see `recexp data list`).")],
) -> None:
    """Make a dataset's files available locally (download and verify when needed)."""
    from recexp.datasets import DataNotFoundError, fetch

    try:
        folder = fetch(name)
    except (KeyError, DataNotFoundError) as exc:
        raise _fail(str(exc).strip('"')) from None
    typer.echo(str(folder))


@data_app.command("describe")
def data_describe(
    name: Annotated[str, typer.Argument(help="Dataset name (see `recexp data list`).")],
    path: Annotated[Path | None, typer.Option(help="Read from this folder instead.")] = None,
    on_bad_lines: Annotated[str, typer.Option(
        help="'error': stop at the first bad line; 'skip': skip and report bad lines.")
    ] = "error",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Rows, users, items, density, rating histogram and time span of a dataset."""
    from recexp.datasets import BadInputError, DataNotFoundError, load

    if on_bad_lines not in ("error", "skip"):
        raise _fail(f"--on-bad-lines must be 'error' or 'skip', got {on_bad_lines!r}")
    try:
        data = load(name, path=path, on_bad_lines=on_bad_lines)
    except (KeyError, DataNotFoundError, BadInputError, FileNotFoundError) as exc:
        raise _fail(str(exc).strip('"')) from None
    facts = data.to_dataset().describe()
    facts = {"dataset": name, **facts, "skipped_lines": data.skipped}
    if data.splits:
        facts["predefined_splits"] = list(data.splits)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(_describe_text(facts))
    for report in data.reports:
        if report.skipped:
            typer.echo("  " + report.summary())


def _describe_text(facts: dict) -> str:
    lines = [f"{facts['dataset']}"]
    lines.append(f"  interactions  {facts['interactions']:,}")
    lines.append(f"  users         {facts['users']:,}"
                 + (f" (+{facts['known_users'] - facts['users']:,} without interactions)"
                    if facts["known_users"] > facts["users"] else ""))
    lines.append(f"  items         {facts['items']:,}"
                 + (f" (+{facts['known_items'] - facts['items']:,} without interactions)"
                    if facts["known_items"] > facts["items"] else ""))
    lines.append(f"  density       {facts['density']:.4%}")
    if "first" in facts:
        lines.append(f"  time span     {facts['first']} .. {facts['last']}")
    if "rating_histogram" in facts:
        hist = facts["rating_histogram"]
        total = sum(hist.values())
        lines.append("  ratings")
        for value, count in hist.items():
            bar = "#" * max(1, round(40 * count / max(hist.values())))
            lines.append(f"    {value:>4g}  {count:>10,}  {count / total:6.1%}  {bar}")
    if facts.get("predefined_splits"):
        lines.append(f"  splits        {', '.join(facts['predefined_splits'])}")
    if facts.get("skipped_lines"):
        lines.append(f"  skipped lines {facts['skipped_lines']:,}")
    return "\n".join(lines)


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(
        help="Experiment YAML, e.g. experiments/ml100k_baselines.yaml or "
        "experiments/criteo_ctr.yaml.")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config value: key.path=value (repeatable), e.g. "
        "--set seeds=[0] --set models.lightfm-warp.params.epochs=5.")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only load and check the config, then print it.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Run an experiment config: every (model, seed) becomes an MLflow child run.

    `task: ranking` (the default) ranks the catalogue for every test user; `task: ctr`
    predicts clicks on a split of impressions (experiments/criteo_ctr.yaml).

    Runs go to MLFLOW_TRACKING_URI when it is set, else to mlflow.db and mlruns/ at the project
    root; `recexp ui` (or `mlflow ui` at the root) shows them.
    """
    from recexp.config import ConfigError, load_config

    try:
        cfg = load_config(config, overrides=set_ or ())
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if check:
        import yaml

        typer.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return
    _run_experiment(cfg, config, quiet=quiet)


def _run_experiment(cfg, config_path: Path | None, *, quiet: bool) -> None:
    from recexp import experiment, tracking
    from recexp.datasets import BadInputError, DataNotFoundError

    try:
        result = experiment.run(cfg, config_path=config_path, progress=not quiet)
    except (DataNotFoundError, BadInputError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: the runs are marked KILLED", err=True, fg=typer.colors.YELLOW)
        raise typer.Exit(code=130) from None
    except Exception as exc:
        raise _fail(f"the run failed ({type(exc).__name__}: {exc}); it is marked FAILED in "
                    "MLflow with the full traceback in its error.txt artifact") from None
    table = result.table()
    k = cfg.evaluation.k[min(1, len(cfg.evaluation.k) - 1)]
    shown = (("roc_auc", "log_loss", "brier", "mean_prediction", "ctr") if cfg.task == "ctr"
             else (f"precision@{k}", f"recall@{k}", f"ndcg@{k}", "auc", f"coverage@{k}"))
    cols = [c for c in shown if c in table]
    means = table.groupby("model", sort=False)[cols].mean()
    typer.echo("")
    typer.echo(f"experiment {result.experiment!r}, parent run {result.parent_run_id}")
    typer.echo(means.to_string(float_format=lambda v: f"{v:.4f}"))
    typer.echo("")
    typer.echo(f"tracking store: {tracking.tracking_uri()}")
    metric = " --metric log_loss" if cfg.task == "ctr" else ""
    typer.echo(f"compare:  recexp compare {result.experiment}{metric}")
    typer.echo("open:     recexp ui    (or: mlflow ui --backend-store-uri "
               f"{tracking.tracking_uri()})")


@app.command("compare")
def compare_command(
    experiment: Annotated[str, typer.Argument(help="Experiment name (the config's `name`).")],
    metric: Annotated[str | None, typer.Option(
        help="Metric to compare, e.g. ndcg@10, recall@20, auc; for click prediction "
        "log_loss or squared_error (per impression). Default: ndcg@10, or log_loss for "
        "a task: ctr experiment.")] = None,
    baseline: Annotated[str | None, typer.Option(
        help="Model label to test every other model against (default: the first model).")] = None,
    parent: Annotated[str | None, typer.Option(
        help="Parent run id (default: the latest finished invocation).")] = None,
    png: Annotated[Path | None, typer.Option(
        help="Also write a bar chart to this PNG file.")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level after Holm correction.")] = 0.05,
) -> None:
    """Compare the models of one experiment run: mean, interval, paired tests vs a baseline.

    Intervals are across seeds (Student t) when a model has several seeds, else a bootstrap
    over users; p-values are paired t-tests over users (Wilcoxon beside), Holm-corrected.
    Click-prediction experiments pair impressions instead of users.
    """
    from recexp import compare

    try:
        table = compare.compare_experiment(experiment, metric=metric, baseline=baseline,
                                           parent_run_id=parent, alpha=alpha)
    except (KeyError, ValueError) as exc:
        raise _fail(str(exc).strip('"')) from None
    typer.echo(compare.format_table(table))
    if png is not None:
        fig = compare.plot_table(table)
        fig.savefig(png, dpi=120)
        typer.echo(f"wrote {png}")


@app.command("ui")
def ui_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on 127.0.0.1 over this project's runs (Ctrl-C stops it)."""
    import os
    import subprocess
    import sys

    from recexp import tracking

    uri = tracking.tracking_uri()
    typer.echo(f"MLflow UI on http://127.0.0.1:{port}  (store: {uri})")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port)]
    try:
        raise typer.Exit(subprocess.call(cmd, env=env, cwd=tracking.project_root()))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command("demo")
def demo(
    quick: Annotated[bool, typer.Option(
        help="One seed and fewer epochs (a few minutes).")] = False,
) -> None:
    """The main job: the MovieLens 100K experiment (every baseline and LightFM), tracked in
    MLflow, then the comparison table."""
    from recexp import compare
    from recexp.config import load_config

    path = _experiments_dir() / "ml100k_baselines.yaml"
    overrides = ["seeds=[0]", "models.lightfm-warp.params.epochs=10"] if quick else []
    cfg = load_config(path, overrides=overrides)
    _run_experiment(cfg, path, quiet=False)
    typer.echo("")
    table = compare.compare_experiment(cfg.name, metric="ndcg@10", baseline="most_popular")
    typer.echo(compare.format_table(table))


@app.command("serve")
def serve_command(
    model_uri: Annotated[str, typer.Argument(
        help="A logged model: runs:/<run_id>/model, models:/<model_id>, or a pyfunc folder.")],
    host: Annotated[str, typer.Option(
        help="Interface to listen on; the default keeps the service on this machine."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 5000,
    workers: Annotated[int, typer.Option(help="Server worker processes.")] = 1,
) -> None:
    """Serve a logged recexp model over REST (mlflow models serve, this environment; Ctrl-C
    stops it).

    POST /invocations with {"dataframe_records": [{"user_id": "42"}], "params": {"k": 10}};
    new users may carry their attributes (e.g. "occupation", "age") when the model uses them.
    """
    from recexp import serving

    try:
        serving.server_command(model_uri, host=host, port=port, workers=workers)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"serving {model_uri} on http://{host}:{port}/invocations  (Ctrl-C stops it)")
    raise typer.Exit(serving.serve(model_uri, host=host, port=port, workers=workers))


@app.command("recommend")
def recommend_command(
    model_uri: Annotated[str, typer.Argument(
        help="A logged model (runs:/<run_id>/model, models:/<model_id>) or a saved folder.")],
    users: Annotated[list[str], typer.Argument(help="User ids, as the data has them.")],
    k: Annotated[int, typer.Option("--k", "-k", help="Items per user.")] = 10,
    include_seen: Annotated[bool, typer.Option(
        "--include-seen", help="Keep items the user already interacted with.")] = False,
    attr: Annotated[list[str] | None, typer.Option(
        "--attr", help="NAME=VALUE attribute of the users (repeatable), e.g. --attr "
                       "occupation=doctor --attr age=30: unknown users are then scored from "
                       "their attributes."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """Top-k recommendations for some users from a logged model; unknown users get the
    model's cold-start answer (their attributes, or the most popular items, flagged)."""
    import pandas as pd

    from recexp import serving

    features = None
    if attr:
        pairs = {}
        for item in attr:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise _fail(f"--attr takes NAME=VALUE, got {item!r}")
            pairs[name] = [value] * len(users)
        features = pd.DataFrame(pairs)
    try:
        table = serving.recommend_cli(model_uri, users, k, exclude_seen=not include_seen,
                                      features=features)
    except (serving.RequestError, serving.ServiceConfigError) as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(table.to_json(orient="records"))
    else:
        typer.echo(table.to_string(index=False))


@app.command("sweep")
def sweep_command(
    config: Annotated[Path, typer.Argument(
        help="Search config, e.g. experiments/ml100k_lightfm.search.yaml.")],
    n_trials: Annotated[int | None, typer.Option(
        "--n-trials", help="Trials to run now, split over the workers (default: the "
        "config's search.n_trials).")] = None,
    timeout: Annotated[float | None, typer.Option(
        help="Seconds after which no new trial starts.")] = None,
    workers: Annotated[int, typer.Option(
        help="Processes running trials against the one storage.")] = 1,
    storage: Annotated[str | None, typer.Option(
        help="Database URL (postgresql://user@host/db, sqlite:///file.db) or journal file "
        "(default: <root>/optuna/<study>.journal).")] = None,
    study: Annotated[str | None, typer.Option(
        help="Study name (default: the config's name); an existing study is resumed.")] = None,
    sampler: Annotated[str | None, typer.Option(
        help="Sampler kind: tpe, random, qmc (default: the config's).")] = None,
    pruner: Annotated[str | None, typer.Option(
        help="Pruner kind: median, percentile, successive_halving, hyperband, wilcoxon, "
        "none (default: the config's).")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Sampler seed (worker i uses seed + i).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a config value: key.path=value (repeatable), e.g. --set "
        "search.space.model.no_components.high=64 --set models.0.params.epochs=10.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Tune one model with Optuna, tracked in MLflow; then test the best and default params.

    Trials fit on train minus the validation carve-out and are scored on validation after
    every epoch (pruned when the pruner says so); they never see test. At the end the best
    params and the config's own params are refitted on train + validation and tested once,
    with a paired test. Every trial is a child run of one parent run per invocation. Run the
    same command again to resume the study. optuna-dashboard reads the same storage:
    `optuna-dashboard <root>/optuna/<study>.journal` (or the database URL).
    """
    from recexp import tracking, tuning
    from recexp.config import ConfigError
    from recexp.datasets import BadInputError, DataNotFoundError

    if workers < 1:
        raise _fail(f"--workers must be at least 1, got {workers}")
    if n_trials is not None and n_trials < 1:
        raise _fail(f"--n-trials must be at least 1, got {n_trials}")
    try:
        result = tuning.sweep_from_file(
            config, n_trials=n_trials, timeout=timeout, workers=workers, storage=storage,
            study=study, sampler=sampler, pruner=pruner, seed=seed, overrides=set_ or (),
            progress=not quiet)
    except (ConfigError, DataNotFoundError, BadInputError) as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: the runs are marked KILLED; run the same command to resume "
                    "the study", err=True, fg=typer.colors.YELLOW)
        raise typer.Exit(code=130) from None
    except Exception as exc:
        raise _fail(f"the sweep failed ({type(exc).__name__}: {exc}); its MLflow runs are "
                    "marked FAILED with the traceback in error.txt") from None
    typer.echo("")
    typer.echo(result.describe())
    typer.echo("")
    typer.echo(f"tracking store: {tracking.tracking_uri()}")
    again = f"recexp sweep {config} --study {result.study_name}"
    if storage:
        again += f" --storage {result.storage}"
    typer.echo(f"resume:   {again} --n-trials N")


def _experiments_dir() -> Path:
    from recexp import tracking

    folder = tracking.project_root() / "experiments"
    if not folder.is_dir():
        raise _fail(f"no experiments/ folder under {tracking.project_root()}; run from the "
                    "recexp checkout or set RECEXP_HOME")
    return folder


def main() -> None:
    app()


if __name__ == "__main__":
    main()
