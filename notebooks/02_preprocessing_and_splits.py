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
# # 02 · Preprocessing and splits
#
# Two decisions come before any model, and both can silently change every number after them:
#
# 1. **What counts as an interaction** — duplicates, missing ids, explicit ratings turned into
#    positives, users and items too rare to learn from (k-core).
# 2. **What is held out** — which interactions the model may learn from and which it is
#    scored on. A split that lets the future leak into training, or tests only users the
#    model already knows, answers a different question than you think.
#
# Every preprocessing step in `recexp.preprocess` returns the new table *and* a report of what
# it removed; every splitter in `recexp.split` returns a `Split` whose parts are provably
# disjoint and whose test interactions are labelled by **segment** (warm, cold user, cold
# item, both cold).

# %% tags=["parameters"]
# FAST = True: a small, quick run (the test suite sets it). Change nothing else.
FAST = False

# %%
import numpy as np
import pandas as pd

from recexp import experiment, plots
from recexp.columns import Columns
from recexp.config import parse_config
from recexp.dataset import Dataset
from recexp.datasets import load
from recexp.preprocess import deduplicate, k_core, preprocess, to_implicit
from recexp.split import Split, make_splitter

data = load("movielens-100k")
ratings = data.interactions
ratings.head()

# %% [markdown]
# ## Duplicates
# MovieLens has one rating per (user, movie). Logs rarely do: a retried request or a replayed
# event writes the same interaction twice. Below we *simulate* such a bug by appending 500
# copied rows. recexp refuses to build a `Dataset` from repeated pairs (summing them would
# silently double their weight) and says which pair; `deduplicate` keeps one row per pair by a
# stated rule (`last` by default: the latest rating is the user's current opinion).

# %%
doubled = pd.concat([ratings, ratings.sample(500, random_state=0)], ignore_index=True)
try:
    Dataset.from_frames(doubled)
except ValueError as error:
    print("refused:", error)
clean, report = deduplicate(doubled, keep="last")
print(report)
print("details:", report.details)

# %% [markdown]
# ## Ratings to positives, and the k-core
# `to_implicit(threshold=4)` keeps ratings of 4 and 5 as positives (weight 1). The **k-core**
# then keeps the largest part of the data where every user and every item has at least *k*
# interactions: removing a rare item can push a user under *k*, whose removal can push another
# item under, so it repeats until nothing changes. Rare items carry almost no signal for
# collaborative filtering and make evaluation noisy; removing them also changes the task (the
# tail is gone), so the choice of *k* belongs in the experiment's config and in its tracked
# params. `preprocess` runs the same steps from plain dicts, exactly as a YAML config lists
# them, and returns one report per step.

# %%
steps = [{"step": "drop_missing"},
         {"step": "deduplicate", "keep": "last"},
         {"step": "to_implicit", "threshold": 4},
         {"step": "k_core", "user_k": 5, "item_k": 5}]
positives, reports = preprocess(ratings, steps)
pd.DataFrame([r.to_dict() for r in reports]).set_index("step")[
    ["rows_before", "rows_after", "rows_removed", "users_removed", "items_removed", "details"]]

# %% [markdown]
# How strong should the core be? Each step is a function too; here is what a stricter *k*
# costs (on the positives):

# %%
implicit, _ = to_implicit(ratings, threshold=4)
pd.DataFrame({k: k_core(implicit, user_k=k, item_k=k)[1].to_dict() for k in (1, 5, 10, 20)}
             ).T[["rows_after", "users_after", "items_after", "details"]]

# %% [markdown]
# ## Every kind of split
# From here on the data is `positives` (ratings ≥ 4, 5-core). Each splitter is a small frozen
# config; `make_splitter` builds one from the same flat dict a YAML file holds. Seeds are
# integers so that a split can be recreated exactly from a run's params.
#
# | kind | holds out | question it answers |
# |---|---|---|
# | `random` | a random 20% of all interactions | generic; some users end up with nothing in train |
# | `user_ratio` | 20% of *each* user's interactions | how well do we rank for known users? |
# | `item_ratio` | 20% of each item's interactions | the same, balanced over items |
# | `temporal` | everything after a cut in time | how would it have done *next month*? |
# | `leave_last_n` | each user's *n* latest | what will this user do next? |
# | `leave_random_n` | *n* random ones per user | leave-one-out without timestamps |
# | `kfold` / `user_kfold` | fold *f* of *k* (of interactions / of users) | variance across folds |
# | `predefined` | the files shipped with the data (`u1`..`u5`, `ua`, `ub`) | comparison with papers |
# | `cold_start` | whole users and items, plus a warm holdout | what about newcomers? |

# %%
ds = Dataset.from_frames(positives)
specs = {
    "random": {"kind": "random", "ratio": 0.2, "seed": 42},
    "user_ratio": {"kind": "user_ratio", "ratio": 0.2, "seed": 42},
    "item_ratio": {"kind": "item_ratio", "ratio": 0.2, "seed": 42},
    "temporal": {"kind": "temporal", "ratio": 0.2},
    "leave_last_n": {"kind": "leave_last_n", "n": 3},
    "leave_random_n": {"kind": "leave_random_n", "n": 3, "seed": 42},
    "kfold": {"kind": "kfold", "k": 5, "seed": 42},
    "user_kfold": {"kind": "user_kfold", "k": 5, "seed": 42},
    "predefined": {"kind": "predefined", "name": "u1", "missing": "drop"},
    "cold_start": {"kind": "cold_start", "user_ratio": 0.1, "item_ratio": 0.1, "seed": 42},
}
splits = {name: make_splitter(spec).split(ds, source=data) if name == "predefined"
          else make_splitter(spec).split(ds) for name, spec in specs.items()}
splits["temporal"]

# %% [markdown]
# `Split.describe()` counts interactions, users and items per part and per test **segment**:
# `warm` (user and item both seen in training), `cold_user`, `cold_item`, `cold_both`. The
# interactions column of every split side by side:

# %%
pd.DataFrame({name: s.describe()["interactions"] for name, s in splits.items()}).T

# %% [markdown]
# Read it row by row: `random` can leave a user or item with nothing in train, cold by
# accident (after the 5-core, none here); `temporal` makes most test interactions cold-user,
# because most users rated in one burst (notebook 01); `cold_start` makes users and items cold
# on purpose and in every combination; `user_ratio`, `leave_*_n` and `user_kfold` keep every
# test user warm. The predefined `u1`
# split was made on *all* ratings, so after our filtering it keeps only the listed pairs that
# survived (`missing="drop"`).
#
# ## A picture of what goes where
# Forty users with the longest activity (rows) against time; each dot is one interaction,
# coloured by the part it went to.

# %%
kinds = ["random", "user_ratio", "temporal", "leave_last_n", "predefined", "cold_start"]
fig = plots.split_by_user({kind: splits[kind] for kind in kinds}, n_users=40)

# %% [markdown]
# `temporal` is one vertical cut: everything right of it is test. `leave_last_n` takes the
# right end of every row. `random` and `user_ratio` scatter test dots over each user's whole
# history, so the model trains on the user's future to predict their past. `cold_start` holds
# out whole rows (cold users; cold items are invisible in this view).
#
# Counted per week instead (`plots.split_timeline`): the temporal split is one cut in time,
# marked where its test part begins; a per-user split takes about the same share of every week.

# %%
fig = plots.split_timeline(splits["temporal"], freq="W")
fig = plots.split_timeline(splits["user_ratio"], freq="W")

# %% [markdown]
# ## Leakage checks
# **Pairs.** No (user, item) pair may sit in two parts. Splitters guarantee it by construction
# and a `Split` built by hand checks it (one sort of all pairs). Here is a deliberately leaky
# split, refused with the first repeated pair:

# %%
rows = np.arange(ds.n_interactions)
try:
    Split(ds.subset(rows < 0.9 * len(rows)), ds.subset(rows >= 0.8 * len(rows)))
except ValueError as error:
    print("refused:", error)

# %% [markdown]
# **Time.** Two questions per split: is any test interaction older than the *latest training
# interaction overall* (the model saw the world's future: e.g. which movies became popular),
# and is any older than *the same user's* latest training interaction (it saw the user's own
# future)?

# %%
leaks = {}
for name, s in splits.items():
    train, test = s.full_train.to_frame(), s.test.to_frame()
    last_of_user = train.groupby(Columns.User)[Columns.Datetime].max()
    before_user = test[Columns.Datetime] < test[Columns.User].map(last_of_user)
    leaks[name] = {"test before last train (any user)":
                   (s.test.timestamp < s.full_train.timestamp.max()).mean(),
                   "test before the user's own last train": before_user.mean()}
pd.DataFrame(leaks).T.round(3)

# %% [markdown]
# Only `temporal` is leak-free on both counts; `leave_last_n` is leak-free per user but still
# trains on other users' later behaviour. Neither is "right": a per-user random split measures
# how well a model fills in a user's tastes; a temporal split measures forecasting. Choose the
# one that matches the decision the model will support, and keep it fixed when comparing
# models.
#
# ## The split changes the number
# The same two models — popularity and item-kNN — on three splits of the same data, tracked
# as three invocations of one MLflow experiment (`tutorial-02-splits`). The preprocessing
# steps above go into the config, so each run records what was removed (`preprocess.*`
# metrics and `data_report.json`).

# %%
results = {}
for kind in ("user_ratio", "temporal", "leave_last_n"):
    config = parse_config({
        "name": "tutorial-02-splits",
        "description": f"Notebook 02: the same models on a {kind} split.",
        "data": {"dataset": "movielens-100k", "preprocess": steps},
        "split": specs[kind],
        "models": [{"model": "most_popular"},
                   {"model": "item_knn", "params": {"neighbours": 100, "shrink": 10}}],
        "evaluation": {"k": [10]},
    })
    results[kind] = experiment.run(config, progress=False).table().set_index("model")
pd.concat({kind: table[["ndcg@10", "recall@10", "users"]] for kind, table in results.items()},
          axis=1).round(4)

# %% [markdown]
# The numbers are **not comparable across splits**: the temporal test has only a few hundred
# users, most of them new, each with dozens of test positives (that raises NDCG and lowers
# recall), and `leave_last_n` asks for exactly 3 items per user. What *is* comparable is how the
# models rank within one split: item-kNN doubles popularity on the per-user split and on
# leave-last-3, but only ties it on the temporal split, where most test users are new and
# "what is popular" is all either model knows about them. Compare models on one fixed split;
# choose the split for the question.
#
# ## What to try next
# * Add `{"step": "time_window", "start": "1997-10-01"}` to `steps` and see what it removes.
# * Give `temporal` a `date` (`"1998-03-01"`) instead of a ratio, or `by: time`.
# * Put a validation carve-out on a split: `splits["temporal"].with_validation(make_splitter(
#   {"kind": "temporal", "ratio": 0.1}))` — valid then comes *before* test, as it should.
# * Continue with **03 · collaborative filtering**.
