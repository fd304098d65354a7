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


@app.command("demo")
def demo() -> None:
    """The main job: MovieLens 100K loaded and described (an experiment once the runner lands)."""
    data_describe("movielens-100k", path=None, on_bad_lines="error", as_json=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
