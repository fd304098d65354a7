"""The tutorial notebooks: committed clean, paired with their py:percent files, and runnable.

Fast mode
---------
Each notebook has one early cell tagged ``parameters`` holding ``FAST = False``. The test runs
a notebook the way papermill would: it inserts a cell tagged ``injected-parameters`` with
``FAST = True`` right after that cell (in memory; the files are never written) and executes
the notebook with nbclient in a fresh kernel whose working directory is ``notebooks/``. A
reader gets the same by running ``papermill NB.ipynb out.ipynb -p FAST True``, or by editing
the cell.

Tracking
--------
Every execution gets a project root of its own (``RECEXP_HOME``: ``mlflow.db``, ``mlruns/``
and ``optuna/`` in a temporary folder, with ``experiments/`` linked from the checkout), so
the notebooks never touch the project's own store. Afterwards the test reads that store and
checks that the runs the notebook promises are there and FINISHED.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
SCRIPTS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))

# Modules a notebook may import (habit 10: the logic lives in recexp). The standard-library
# entries are for paths and temporary folders only.
ALLOWED_IMPORTS = {"recexp", "pandas", "numpy", "matplotlib", "pathlib", "tempfile"}
# Where a notebook's subject is a library's own output, that library too.
EXTRA_IMPORTS = {"06_hyperparameter_search": {"optuna"}}

# notebook stem -> {MLflow experiment -> child-run labels that must be FINISHED there}.
# A label is the `recexp.label` tag: the model's `name` in the config, else its `model`.
PROMISED: dict[str, dict[str, set[str]]] = {
    "00_quickstart": {"tutorial-00-quickstart": {"most_popular", "lightfm"}},
    "01_data_exploration": {"tutorial-01-data": {"random", "most_popular"}},
    "02_preprocessing_and_splits": {"tutorial-02-splits": {"most_popular", "item_knn"}},
    "03_collaborative_filtering": {"tutorial-03-cf": {
        "random", "most_popular", "item_knn", "ease", "als", "bpr", "lightfm-warp"}},
    "04_content_based": {"tutorial-04-content": {
        "content", "most_popular", "random", "lightfm-cf"}},
    "05_hybrid_lightfm": {"tutorial-05-hybrid": {"lightfm-cf", "lightfm-hybrid",
                                                  "most_popular"}},
    "06_hyperparameter_search": {},
    "07_comparing_runs": {"tutorial-07-compare": {"most_popular", "item_knn", "als",
                                                   "lightfm"}},
    "08_serving_and_scale": {"tutorial-08-serving": {"lightfm-hybrid"},
                             "tutorial-08-scale": {"most_popular", "als"}},
}
# Invocations (parent runs) an experiment must have, where a notebook runs it more than once.
PARENTS = {"tutorial-02-splits": 3, "tutorial-05-hybrid": 2}
# Sweeps: notebook -> experiment whose `recexp.kind = sweep` parent run has trial children.
SWEEPS = {"06_hyperparameter_search": "tutorial-06-search"}
# Services: notebook -> experiment holding a FINISHED `recexp.kind = service` run that logged a
# pyfunc model.
SERVICES = {"08_serving_and_scale": "tutorial-08-serving"}


# ----------------------------------------------------------------------------- helpers
def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _parameters_index(nb) -> int:
    found = [i for i, cell in enumerate(nb.cells) if "parameters" in _tags(cell)]
    if len(found) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(found)}")
    return found[0]


def with_fast(nb):
    """A copy of ``nb`` with ``FAST = True`` injected after its parameters cell."""
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell("# Injected by tests/test_notebooks.py\nFAST = True")
    cell.metadata["tags"] = ["injected-parameters"]
    out.cells.insert(_parameters_index(out) + 1, cell)
    return out


def execute(path: Path):
    """Run the notebook at ``path`` in fast mode in a fresh kernel (cwd: notebooks/)."""
    from nbclient import NotebookClient

    nb = with_fast(_read(path))
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()
    return nb


def _cells(path: Path) -> list[tuple[str, str, tuple[str, ...]]]:
    """(type, source, tags) of every cell, read through jupytext (either format)."""
    import jupytext

    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), tuple(_tags(c))) for c in nb.cells]


def _python(source: str) -> str:
    """A cell's source as plain Python (IPython magics such as ``%timeit`` translated)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _imports(source: str) -> set[str]:
    tree = ast.parse(_python(source))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


# ----------------------------------------------------------------- committed form
def test_every_notebook_has_a_pair_and_a_promise():
    assert NOTEBOOKS, "no notebooks found"
    assert [p.stem for p in NOTEBOOKS] == [p.stem for p in SCRIPTS], \
        "every NN_topic.ipynb needs its NN_topic.py (py:percent) pair and vice versa"
    assert sorted(PROMISED) == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = _read(path)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} have outputs; strip them "
                       f"(jupytext --to ipynb notebooks/{path.with_suffix('.py').name})")
    raw = json.loads(path.read_text())
    assert "widgets" not in raw.get("metadata", {}), f"{path.name}: widget state is committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_matches_its_py_percent_pair(path):
    script = path.with_suffix(".py")
    nb = _read(path)
    formats = nb.metadata.get("jupytext", {}).get("formats", "")
    assert formats == "ipynb,py:percent", f"{path.name}: jupytext formats are {formats!r}"
    assert script.read_text().startswith("# ---\n# jupyter:"), \
        f"{script.name}: not a jupytext py:percent file with a header"
    assert _cells(path) == _cells(script), (
        f"{path.name} and {script.name} differ: run `jupytext --sync notebooks/{script.name}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_follows_the_house_rules(path):
    nb = _read(path)
    index = _parameters_index(nb)
    assert index <= 2, f"{path.name}: the parameters cell should come early (cell {index})"
    params = nb.cells[index]
    assert params.cell_type == "code" and "FAST = False" in params.source
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    imported = set().union(*(_imports(s) for s in code))
    allowed = ALLOWED_IMPORTS | EXTRA_IMPORTS.get(path.stem, set())
    assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)}"
    defined = [node.name for s in code for node in ast.walk(ast.parse(_python(s)))
               if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    assert not defined, f"{path.name} defines {defined}: put logic in recexp"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and "what to try next" in last.source.lower()


def test_fast_mode_injection_lands_after_the_parameters_cell():
    nb = with_fast(_read(NOTEBOOKS[0]))
    index = _parameters_index(nb)
    assert "FAST = True" in nb.cells[index + 1].source
    assert _tags(nb.cells[index + 1]) == ["injected-parameters"]


# ------------------------------------------------------------------- execution
@pytest.fixture
def store(tmp_path, monkeypatch, data_dir):
    """A project root of its own for one notebook; the kernel inherits this environment."""
    (tmp_path / "mlruns").mkdir()
    (tmp_path / "experiments").symlink_to(ROOT / "experiments", target_is_directory=True)
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("RECEXP_OFFLINE", "1")
    monkeypatch.setenv("RECEXP_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    return tmp_path


def _runs(experiment: str):
    """Every run of ``experiment`` in the current store, as MLflow run objects."""
    from mlflow.tracking import MlflowClient

    from recexp import tracking

    tracking.configure()
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r} in {tracking.tracking_uri()}"
    return client.search_runs([found.experiment_id], max_results=5000)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_fast_mode_and_tracks_its_runs(path, store):
    nb = execute(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    for experiment, labels in PROMISED[path.stem].items():
        runs = _runs(experiment)
        unfinished = [(r.info.run_name, r.info.status) for r in runs
                      if r.info.status != "FINISHED"]
        assert not unfinished, f"{experiment}: runs not FINISHED: {unfinished}"
        models = {r.data.tags.get("recexp.label") for r in runs
                  if r.data.tags.get("recexp.kind") == "model"}
        assert labels <= models, f"{experiment}: missing child runs {sorted(labels - models)}"
        parents = [r for r in runs if r.data.tags.get("recexp.kind") == "experiment"]
        assert len(parents) >= PARENTS.get(experiment, 1)
        children = [r for r in runs if r.data.tags.get("recexp.kind") == "model"]
        assert all("ndcg_at_10" in r.data.metrics for r in children)
    if path.stem in SWEEPS:
        runs = _runs(SWEEPS[path.stem])
        parents = [r for r in runs if r.data.tags.get("recexp.kind") == "sweep"]
        trials = [r for r in runs if r.data.tags.get("recexp.kind") == "trial"]
        assert parents and all(r.info.status == "FINISHED" for r in parents + trials)
        assert len(trials) >= 3
        assert any(k.startswith("test.tuned.") for k in parents[0].data.metrics)
    if path.stem in SERVICES:
        import mlflow

        runs = _runs(SERVICES[path.stem])
        services = [r for r in runs if r.data.tags.get("recexp.kind") == "service"]
        assert services and all(r.info.status == "FINISHED" for r in services)
        models = mlflow.search_logged_models(experiment_ids=[services[0].info.experiment_id],
                                             output_format="list")
        assert models, "no pyfunc model was logged"
    assert not (ROOT / "notebooks" / "mlruns").exists(), "a notebook wrote a store into notebooks/"
    assert os.environ["RECEXP_HOME"] == str(store)
