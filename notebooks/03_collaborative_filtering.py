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
# # 03 · Collaborative filtering, and what each metric means
#
# Collaborative filtering (CF) learns only from *who interacted with what*: no genres, no
# ages. Users who liked the same movies in the past will probably like the same movies next.
# This notebook runs the CF models recexp ships against the two floors from notebook 01, on one
# fixed split, and explains how the evaluation scores them.
#
# | model | idea |
# |---|---|
# | `random` | the floor: any model must beat it |
# | `most_popular` | the same list for everyone, by number of positives; hard to beat on accuracy |
# | `item_knn` / `user_knn` | score an item by its similarity (shrunk cosine over co-occurrence) to the user's items / users by their similar users' items |
# | `ease` | a closed-form linear item-to-item model (Steck 2019): ridge regression of each item on all others, no self-similarity |
# | `pure_svd` | truncated SVD of the user × item matrix; scores are the low-rank reconstruction |
# | `als` | implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky 2008), via `implicit` |
# | `bpr` | matrix factorisation trained pairwise: a seen item should score above an unseen one |
# | `lightfm` (pure CF) | LightFM with only identity features = matrix factorisation; `warp` loss samples negatives until one outranks the positive, so it optimises the top of the list |
#
# The experiment is the shipped `experiments/ml100k_baselines.yaml` (ratings ≥ 4 as positives,
# 20% of each user's positives held out, a 10% validation carve-out for learning curves),
# renamed so its runs stay apart from the ones the CLI makes.

# %% tags=["parameters"]
# FAST = True: a small, quick run (the test suite sets it). Change nothing else.
FAST = False

# %%
import pandas as pd

from recexp import experiment, plots, tracking
from recexp.config import load_config
from recexp.metrics import evaluate
from recexp.stats import RunTable, summarize_runs

overrides = ["name=tutorial-03-cf"]
if FAST:
    overrides += ["seeds=[0]", "models.als.params.iterations=5",
                  "models.bpr.params.iterations=20", "models.lightfm-warp.params.epochs=5"]
config = load_config(tracking.project_root() / "experiments" / "ml100k_baselines.yaml",
                     overrides=overrides)
pd.DataFrame({"model": [m.model for m in config.models],
              "params": [m.params for m in config.models]},
             index=[m.label for m in config.models])

# %% [markdown]
# ## Run it
# One MLflow parent run, one child run per (model, seed). Seeds matter for the models with
# randomness (random, ALS, BPR, LightFM); the rest give the same numbers for every seed, which
# is itself a useful check (PureSVD's seed only sets the solver's start vector, and it lands on
# the same factors). Expect a few minutes in full mode.

# %%
result = experiment.run(config, progress=False)
table = result.table()
columns = ["precision@10", "recall@10", "ndcg@10", "map@10", "mrr", "auc",
           "coverage@10", "novelty@10", "popularity@10"]
table.groupby("model")[columns].mean().sort_values("ndcg@10", ascending=False).round(4)

# %% [markdown]
# ## What each metric means
# For every test user, `evaluate` ranks **all items** the user did not interact with in
# training (the full catalogue, not a sample of negatives), best first; ties go to the lower
# item index so a model cannot gain from tied scores. The user's held-out positives are the
# relevant items *R*. With `hits@k` the relevant items in the top *k*:
#
# * **precision@k** = hits@k / k — how much of the list is good.
# * **recall@k** = hits@k / |R| — how much of what the user liked we found.
# * **hit_rate@k** — 1 if at least one hit.
# * **ndcg@k** — hits weighted by 1 / log2(position + 1), divided by the best possible value:
#   a hit at position 1 counts more than one at position 10.
# * **map@k** — mean of the precision at each hit's position (over min(k, |R|)).
# * **mrr** — 1 / position of the first relevant item, over the whole ranking.
# * **auc** — the share of (relevant, irrelevant) pairs ranked the right way round, over the
#   whole ranking: "how well is the *whole* list ordered", not just its top.
#
# Every one is averaged over users, so each user counts once. Beyond accuracy, over all the
# top-*k* lists: **coverage@k** (share of the catalogue recommended to anyone), **novelty@k**
# (mean self-information −log2 p(item): higher means less popular items) and
# **popularity@k** (mean training positives of the recommended items). The module docstring of
# `recexp.metrics` holds the exact definitions.
#
# ### One user, by hand
# Fit item-kNN on the same data, take one user's top 10 and mark the hits: precision and recall
# computed by hand match what `evaluate` reports for that user.

# %%
prepared = experiment.prepare(config, progress=False)
split = prepared.split
knn = experiment.make_model("item_knn", {"neighbours": 100, "shrink": 10}).fit(split.full_train)
per_user = evaluate(knn, split, k=10).per_user.query("segment == 'all'").set_index("user_id")
user = 42
relevant = split.test.to_frame().query("user_id == @user")["item_id"]
top10 = knn.recommend([user], k=10)
top10["hit"] = top10["item_id"].isin(relevant)
print(f"user {user}: {len(relevant)} relevant items, {top10['hit'].sum()} hits in the top 10 -> "
      f"precision@10 = {top10['hit'].sum() / 10:.3f}, "
      f"recall@10 = {top10['hit'].sum() / len(relevant):.3f}")
print("evaluate says:",
      per_user.loc[user, ["precision@10", "recall@10", "ndcg@10"]].round(3).to_dict())
top10

# %% [markdown]
# ## Accuracy, with intervals
# Bars are the mean over seeds of NDCG@10; whiskers are a 95% interval (across seeds when there
# are several, else a bootstrap over users: see notebook 07).

# %%
summary = summarize_runs([RunTable(r.label, r.seed, r.per_user) for r in result.runs],
                         metric="ndcg@10")
fig = plots.metric_bars(summary, metric="ndcg@10")
summary.set_index("model")[["mean", "low", "high", "seeds", "interval"]].round(4)

# %% [markdown]
# ## LightFM's learning curve
# The validation carve-out is scored after every epoch (these curves are logged to the child
# run as `valid.*` metrics, one step per epoch). Too few epochs underfit; a curve that turns
# down is overfitting, which is what notebook 06 tunes against.

# %%
curves = {f"{r.label} seed {r.seed}": r.curve for r in result.runs if r.curve is not None}
fig = plots.learning_curves(curves, metrics=["ndcg@10", "recall@10", "auc"])

# %% [markdown]
# ## Reading the table
# * **EASE and the neighbourhood models are the ones to beat** on ML-100K. Strong, simple
#   baselines are the norm in recommender research, and a new model that is not compared with
#   them says little.
# * **Popularity is far above random** on accuracy and far below everything on coverage and
#   novelty: the long tail again.
# * **Accuracy and coverage pull apart**: models that recommend the head score well; which
#   trade-off is right depends on the product, which is why every run logs both.
# * The differences between the top models are small; whether they are *real* is the subject
#   of notebook 07.
#
# ## What to try next
# * `recexp run experiments/ml100k_baselines.yaml --set models.ease.params.l2=50` in a
#   terminal, and compare it with this run in the MLflow UI.
# * Evaluate with `relevance_threshold` on the raw ratings instead of `to_implicit`.
# * Continue with **04 · content-based** to use what CF ignores: the movies' genres and titles.
