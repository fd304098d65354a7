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
# # 01 · Exploring MovieLens 100K
#
# Before choosing a model, look at the data: how ratings are distributed, how unequal
# users and items are (the **long tail**), how empty the user × item matrix is
# (**sparsity**), and how activity spreads over time. Each of these shapes a later decision:
# the implicit threshold, the split, the baselines, the metrics that can be trusted.
#
# Everything here reads the tables `recexp.datasets.load` returns, in the one column
# vocabulary of `recexp.columns.Columns` (`user_id`, `item_id`, `rating`, `timestamp`).

# %% tags=["parameters"]
# FAST = True: a small, quick run (the test suite sets it). Change nothing else.
FAST = False

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from recexp import experiment, plots
from recexp.columns import Columns
from recexp.config import parse_config
from recexp.datasets import load
from recexp.experiment import make_model
from recexp.metrics import evaluate

SEEDS = [0] if FAST else [0, 1, 2]

data = load("movielens-100k")
ratings, users, items = data.interactions, data.users, data.items
ds = data.to_dataset()
facts = ds.describe()
pd.Series({k: v for k, v in facts.items() if k != "rating_histogram"}).to_frame("ML-100K")

# %% [markdown]
# ## Ratings
# Ratings are whole stars, skewed towards 4: people mostly rate what they chose to watch, so
# low ratings are rarer than they would be on random movies. This is why the later notebooks
# call a rating of 4 or more a **positive** and rank for it, rather than predict stars.

# %%
histogram = pd.Series(facts["rating_histogram"], name="ratings")
ax = histogram.plot.bar(title="Ratings by stars", xlabel="stars", ylabel="ratings", rot=0)
histogram.to_frame().T

# %% [markdown]
# ## Users: how much each one rates
# Every user has at least 20 ratings (GroupLens kept only such users), but the distribution is
# heavily skewed: a few users rate hundreds of movies. Averages over *interactions* are
# dominated by them; recexp's metrics average over *users*, so each user counts once.

# %%
per_user = ratings.groupby(Columns.User).size()
fig = plots.activity_histogram(per_user, xlabel="ratings per user", title="User activity")
per_user.describe().round(1).to_frame("ratings per user").T

# %% [markdown]
# ## Items: the long tail
# Sort movies by their number of ratings: a short **head** of blockbusters carries a large
# share of all ratings and a long **tail** has a handful each. A popularity baseline exploits
# the head and is hard to beat on accuracy; a model that only recommends the head covers
# little of the catalogue. Notebooks 03 and 07 measure both sides (accuracy, coverage, novelty).

# %%
per_item = ratings.groupby(Columns.Item).size().sort_values(ascending=False)
share = per_item.cumsum() / per_item.sum()
fig = plots.long_tail(per_item, head_share=0.2, unit="ratings", what="movie")
head = int(0.2 * len(per_item))
print(f"the top 20% of movies ({head}) hold {share.iloc[head - 1]:.0%} of the ratings; "
      f"{(per_item < 5).sum()} movies have fewer than 5 ratings")

# %% [markdown]
# Popular movies are also rated higher on average (a rank correlation of about 0.5), and
# movies with few ratings spread over the whole scale: their mean is noise. This is one reason
# not to rank by mean rating.

# %%
by_item = ratings.groupby(Columns.Item)[Columns.Rating].agg(["size", "mean"])
ax = by_item.plot.scatter(x="size", y="mean", s=6, alpha=0.5, logx=True, figsize=(6, 3.2),
                          title="Mean rating vs number of ratings")
by_item.corr(method="spearman").round(3)

# %% [markdown]
# ## Sparsity
# 100,000 ratings fill about 6% of the 943 × 1,682 matrix; after keeping only ratings ≥ 4 it
# is about 4%. Each dot below is one rating (rows: users, columns: movies, in order of first
# appearance in the file). Collaborative filtering has to fill in the white.

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.spy(ds.binary, markersize=0.05, aspect="auto", color="black")
ax.set_title(f"User x movie matrix, density {facts['density']:.2%}")
fig.tight_layout()

# %% [markdown]
# ## Time
# The ratings span seven months (Sept 1997 – April 1998). Most users rate in one burst: about
# two thirds of them do all their rating within one day, the median user within an hour. So
# a *temporal* split (train before a date, test after) mostly tests users the model has never
# seen, while a *per-user random* split tests users it knows: notebook 02 draws both.

# %%
weekly = ratings.set_index(Columns.Datetime).resample("W").size()
first_last = ratings.groupby(Columns.User)[Columns.Datetime].agg(["min", "max"])
span_days = (first_last["max"] - first_last["min"]).dt.total_seconds() / 86400
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.2))
weekly.plot(ax=ax1, title="Ratings per week", xlabel="", ylabel="ratings")
ax2.hist(span_days, bins=40)
ax2.set(xlabel="days between a user's first and last rating", ylabel="users",
        title="How long users stay active")
fig.tight_layout()
print(f"median span {span_days.median():.2f} days; "
      f"{(span_days < 1).mean():.0%} of users rate everything within one day")

# %% [markdown]
# ## Side information
# Users come with age, gender, occupation and zip code; movies with a title, a year and up to
# several of 19 genres. Notebooks 04 and 05 turn these into features for the content-based and
# hybrid models.

# %%
genres = items["genres"].str.split("|").explode().value_counts()
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
genres.plot.barh(ax=axes[0], title="Movies per genre").invert_yaxis()
users["age"].plot.hist(ax=axes[1], bins=30, title="User age")
users["occupation"].value_counts().plot.barh(ax=axes[2], title="User occupation")
axes[2].invert_yaxis()
fig.tight_layout()
users["gender"].value_counts(normalize=True).round(3).to_frame("share of users").T

# %% [markdown]
# ## A floor to beat, tracked
# Any model must beat two baselines: **random** and **most popular**. The long tail makes the
# second strong. The experiment below runs both on ratings ≥ 4 with a per-user 80/20 split; its
# MLflow parent run also records the data itself: counts and density as `data.*` metrics,
# what preprocessing removed, and a digest of the exact train and test sets.

# %%
config = parse_config({
    "name": "tutorial-01-data",
    "description": "Notebook 01: the baselines every model must beat on ML-100K.",
    "data": {"dataset": "movielens-100k",
             "preprocess": [{"step": "to_implicit", "threshold": 4}]},
    "split": {"kind": "user_ratio", "ratio": 0.2, "seed": 42},
    "models": [{"model": "random"}, {"model": "most_popular"}],
    "seeds": SEEDS,
    "evaluation": {"k": [10]},
})
result = experiment.run(config, progress=False)
result.table().groupby("model")[["ndcg@10", "recall@10", "coverage@10", "novelty@10"]].mean()

# %% [markdown]
# Where do their recommendations fall on the long tail? `recexp.plots.popularity_tail` draws
# it from the lists `evaluate` returns (the same figure is an artifact of every child run).

# %%
prepared = experiment.prepare(config, progress=False)
train = prepared.split.train
lists = {name: evaluate(make_model(name, {}, seed=0).fit(train), prepared.split,
                        k=10).recommended.ravel()
         for name in ("random", "most_popular")}
popularity = np.asarray(train.binary.sum(axis=0)).ravel()
fig = plots.popularity_tail(popularity, lists)

# %% [markdown]
# Most-popular recommends the same few head movies to everyone; random spreads evenly over the
# catalogue and hits almost nothing. Good models sit in between.
#
# ## What to try next
# * Repeat this on `movielens-latest-small` (`load("movielens-latest-small")`): a different
#   era, ratings in half stars, tags instead of demographics.
# * Find the users with the most ratings and look at what they rate: are they typical?
# * Continue with **02 · preprocessing and splits**: what to clean, and how to hold data out.
