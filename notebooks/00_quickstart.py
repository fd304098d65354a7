# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Quickstart: the whole loop in ten cells
#
# Load MovieLens 100K, split it, fit LightFM and a popularity baseline, evaluate both, then
# run the same thing as a **tracked experiment** and open it in the MLflow UI. Later notebooks
# take each step apart; this one shows how they fit together.
#
# **Where the data comes from.** `load("movielens-100k")` reads `$RECEXP_DATA_DIR/ml-100k/`
# when it is there (no network at all). `make lab` exports `RECEXP_DATA_DIR=../shared/data`
# when that folder exists. If the variable is unset, recexp looks in its cache
# (`~/.cache/recexp`, or `$RECEXP_CACHE_DIR`) and otherwise downloads the archive from
# GroupLens once and verifies its checksum (`RECEXP_OFFLINE=1` forbids the download). Have
# the files somewhere else? Start JupyterLab with `RECEXP_DATA_DIR=/path/to/data make lab`,
# or run `%env RECEXP_DATA_DIR=/path/to/data` in a new cell before the loading cell.
#
# **Where the runs go.** Into the project's own MLflow store: `mlflow.db` and `mlruns/` at the
# repository root (found from this `notebooks/` folder), unless `MLFLOW_TRACKING_URI` points
# at a tracking server.

# %% tags=["parameters"]
# FAST = True: a small, quick run (the test suite sets it). Change nothing else.
FAST = False

# %%
import pandas as pd

from recexp import experiment, tracking
from recexp.config import parse_config
from recexp.dataset import Dataset
from recexp.datasets import fetch, load
from recexp.metrics import evaluate
from recexp.models import get_model_class
from recexp.models.lightfm import LightFMRecommender
from recexp.preprocess import preprocess
from recexp.split import make_splitter

EPOCHS = 5 if FAST else 30
print("data folder:", fetch("movielens-100k"))
print("MLflow store:", tracking.tracking_uri())

# %% [markdown]
# ## 1 · Data
# 100,000 ratings (1–5 stars) by 943 users on 1,682 movies. We treat a rating of 4 or 5 as
# "the user liked it" (implicit positive) and ask models to rank the movies each user will
# like. `preprocess` reports what every step removed.

# %%
data = load("movielens-100k")
positives, reports = preprocess(data.interactions, [{"step": "to_implicit", "threshold": 4}])
for report in reports:
    print(report)
ds = Dataset.from_frames(positives)
pd.Series(ds.describe()).drop("rating_histogram").to_frame("ML-100K, ratings >= 4")

# %% [markdown]
# ## 2 · Split
# Hold out 20% of each user's positives as the test set. Everything a model learns comes from
# `split.train`; `split.test` is only for measuring.

# %%
split = make_splitter({"kind": "user_ratio", "ratio": 0.2, "seed": 42}).split(ds)
split.describe().loc[["train", "test"]]

# %% [markdown]
# ## 3 · Fit a baseline and LightFM, then evaluate both
# `evaluate` ranks the whole catalogue for every test user (minus the movies they already saw
# in training) and compares the top of that ranking with their held-out positives.
# `ndcg@10` rewards hits near the top of the list; `recall@10` is the share of a user's test
# positives found in their top 10; `auc` looks at the whole ranking. Notebook 03 defines each.

# %%
popular = get_model_class("most_popular")().fit(split.train)
lightfm = LightFMRecommender(no_components=32, loss="warp", epochs=EPOCHS,
                             random_state=0).fit(split.train)
scores = {name: evaluate(model, split, k=10).summary
          for name, model in {"most_popular": popular, "lightfm": lightfm}.items()}
pd.DataFrame(scores).T[["precision@10", "recall@10", "ndcg@10", "auc", "coverage@10"]]

# %% [markdown]
# LightFM should beat popularity on every accuracy metric and recommend from far more of the
# catalogue (`coverage@10`). Here are one user's recommendations, in external ids and titles:

# %%
user = 1
lightfm.recommend([user], k=5).merge(data.items, on="item_id")[["rank", "title", "genres", "score"]]

# %% [markdown]
# ## 4 · The same, as a tracked experiment
# A config (the same keys as the YAML files in `experiments/`) makes one MLflow **parent run**
# with one **child run** per (model, seed): params, per-epoch validation curves, test metrics
# overall and per segment, the per-user metric table, plots and the saved model.

# %%
config = parse_config({
    "name": "tutorial-00-quickstart",
    "description": "Notebook 00: LightFM vs popularity on ML-100K (ratings >= 4).",
    "data": {"dataset": "movielens-100k",
             "preprocess": [{"step": "to_implicit", "threshold": 4}]},
    "split": {"kind": "user_ratio", "ratio": 0.2, "seed": 42},
    "validation": {"kind": "user_ratio", "ratio": 0.1, "seed": 7},
    "models": [{"model": "most_popular"},
               {"model": "lightfm", "params": {"no_components": 32, "epochs": EPOCHS}}],
    "evaluation": {"k": [10]},
})
result = experiment.run(config, progress=False)
result.table()[["model", "seed", "ndcg@10", "recall@10", "auc", "coverage@10"]]

# %% [markdown]
# The tracked LightFM differs a little from the one above: it trained on train minus a 10%
# validation carve-out (that is where its per-epoch curves come from).
#
# ## 5 · Look at it in the MLflow UI
# In a terminal at the repository root run **`.venv/bin/recexp ui`** (or
# `mlflow ui --backend-store-uri sqlite:///mlflow.db`) and open <http://127.0.0.1:5000>.
# Pick the experiment `tutorial-00-quickstart`, expand the parent run, open a child run:
# *Model metrics* holds the validation curve, *Artifacts* the plots, the per-user table and the
# model — a servable MLflow model whose files are JSON and arrays, no pickle (notebook 08). From
# the same terminal you can ask it for recommendations:

# %%
print("experiment:", result.experiment, " parent run:", result.parent_run_id)
print("store:", tracking.tracking_uri())
print(f"try:   .venv/bin/recexp recommend runs:/{result.runs[-1].run_id}/model 1 2 3 -k 5")

# %% [markdown]
# ## What to try next
# * Run the shipped experiment from a terminal:
#   `.venv/bin/recexp run experiments/ml100k_baselines.yaml`, then
#   `.venv/bin/recexp compare ml100k-baselines`.
# * Change `threshold` to 5, or the split to `{"kind": "temporal", "ratio": 0.2}`, and rerun the
#   tracked cell: every variant is a new run you can compare in the UI.
# * Go on with **01 · data exploration**.
