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
# # 07 · Comparing runs: intervals, significance, and what "better" means
#
# Model B scores NDCG@10 = 0.281, model A 0.277. Is B better? Three kinds of noise stand
# between the two numbers and the claim:
#
# * **Seeds** — a model with randomness (initialisation, sampling) lands somewhere different
#   on every run. An interval *across seeds* measures this.
# * **Users** — the test users are a sample; another sample would give other means. An
#   interval by *bootstrap over users* measures this, and a **paired test** over users
#   compares two models on the *same* users, which removes most of the between-user noise.
# * **Many comparisons** — compare ten models with the baseline at the 5% level and one will
#   look significant by chance. **Holm's correction** adjusts the p-values for that.
#
# Everything below reads the runs back **from MLflow** (each child run stores its per-user
# metric table as an artifact), so it works the same for runs made by the CLI, by another
# notebook last week, or on another machine sharing the tracking server.

# %% tags=["parameters"]
# FAST = True: a small, quick run (the test suite sets it). Change nothing else.
FAST = False

# %%
import matplotlib.pyplot as plt
import pandas as pd

from recexp import compare, experiment, stats
from recexp.config import parse_config

SEEDS = [0, 1] if FAST else [0, 1, 2, 3, 4]
EPOCHS = 5 if FAST else 30
config = parse_config({
    "name": "tutorial-07-compare",
    "description": "Notebook 07: four models, several seeds, for intervals and tests.",
    "data": {"dataset": "movielens-100k",
             "preprocess": [{"step": "to_implicit", "threshold": 4}]},
    "split": {"kind": "user_ratio", "ratio": 0.2, "seed": 42},
    "models": [{"model": "most_popular"},
               {"model": "item_knn", "params": {"neighbours": 100, "shrink": 10}},
               {"model": "als", "params": {"factors": 64, "iterations": 15}},
               {"model": "lightfm", "params": {"no_components": 64, "epochs": EPOCHS}}],
    "seeds": SEEDS,
    "evaluation": {"k": [10]},
})
result = experiment.run(config, progress=False)
print("parent run", result.parent_run_id, "with", len(result.runs), "child runs")

# %% [markdown]
# ## Pull the runs from MLflow
# `compare.load_runs` finds the latest finished invocation of the experiment (or the one whose
# parent run id you pass) and downloads every child run's per-user table.

# %%
runs = compare.load_runs("tutorial-07-compare")
pd.DataFrame([{"model": r.label, "seed": r.seed,
               "users": int((r.per_user["segment"] == "all").sum()),
               "ndcg@10": r.per_user.query("segment == 'all'")["ndcg@10"].mean()}
              for r in runs]).pivot(index="model", columns="seed", values="ndcg@10").round(4)

# %% [markdown]
# Most-popular and item-kNN give the same number for every seed: they have no randomness.
# ALS and LightFM move from seed to seed — by how much is the first kind of noise.
#
# ## Intervals
# `summarize_runs` gives each model's mean and a 95% interval: across seeds (Student t) when a
# model has several seeds, else a bootstrap over users. For deterministic models the seed
# interval has zero width, which does *not* mean the number is exact: the users are still a
# sample. Both kinds, side by side:

# %%
summary = stats.summarize_runs(runs, metric="ndcg@10").set_index("model")
users = {r.label: stats.bootstrap_interval(r.per_user.query("segment == 'all'")["ndcg@10"])
         for r in runs if r.seed == SEEDS[0]}
summary[["users low", "users high"]] = pd.DataFrame(users, index=["low", "high"]).T
summary[["mean", "std_seeds", "low", "high", "users low", "users high"]].round(4)

# %% [markdown]
# Two different questions, two different widths. The seed interval (`low`, `high`) answers
# "would another seed give another mean?"; with two seeds it is a t-interval with one degree of
# freedom and very wide, with five it tightens. The user bootstrap answers "would another
# sample of test users give another mean?" — it is there even for the deterministic models,
# and it is the one most comparisons ignore. Overlapping *unpaired* intervals do not mean "no
# difference": the same users are easy or hard for every model, and a **paired** test uses
# that.
#
# ## Paired tests against a baseline, with Holm's correction
# `compare_experiment` pairs every model with the baseline user by user (per-user values
# averaged over seeds), runs a paired t-test and a Wilcoxon signed-rank test, and corrects
# the t-test p-values for the number of comparisons (Holm). The same table is what
# `recexp compare tutorial-07-compare --baseline most_popular` prints.

# %%
table = compare.compare_experiment("tutorial-07-compare", metric="ndcg@10",
                                   baseline="most_popular")
print(compare.format_table(table))
fig = compare.plot_table(table)

# %% [markdown]
# Against popularity, every personalised model wins by a wide margin. The interesting
# question is between the personalised ones. Take item-kNN as the baseline instead:

# %%
close = compare.compare_experiment("tutorial-07-compare", metric="ndcg@10",
                                   baseline="item_knn")
print(compare.format_table(close))

# %% [markdown]
# ## A sanity check: the same model against itself
# LightFM with seed 0 against LightFM with seed 1 — an A/A test. Only the seed differs, so any
# "significant" difference here would be a warning about the test, not about the model. A
# test that cries wolf on A/A comparisons cannot be trusted on A/B ones.

# %%
lightfm = {r.seed: r.per_user.query("segment == 'all'").set_index("user_id")["ndcg@10"]
           for r in runs if r.label == "lightfm"}
aa = stats.paired_test(lightfm[SEEDS[0]], lightfm[SEEDS[1]])
print(f"seed {SEEDS[1]} - seed {SEEDS[0]}: diff {aa.diff:+.4f} over {aa.n} users, "
      f"t-test p = {aa.t_pvalue:.3f}, Wilcoxon p = {aa.wilcoxon_pvalue:.3f}")
differences = lightfm[SEEDS[1]] - lightfm[SEEDS[0]]
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(differences, bins=41)
ax.set(xlabel="per-user NDCG@10 difference between two seeds", ylabel="users",
       title="Two seeds of one model: large per-user swings, mean near zero")
fig.tight_layout()

# %% [markdown]
# Individual users swing a lot between seeds even though the mean barely moves. Per-user
# values are noisy; averages over hundreds of users are what the tests can speak about.
#
# ## What "better" means
# A result worth reporting says **which metric, on which users, by how much, how sure**:
#
# * **Which metric.** Accuracy at the top (`ndcg@10`), the whole ranking (`auc`) and the
#   catalogue (`coverage@10`, `novelty@10`) can disagree. Decide before looking which one the
#   product needs; report the others.
# * **On which users.** The overall mean can hide a loss on a segment (new users, rare items,
#   notebook 05). Compare per segment when it matters.
# * **By how much.** A difference can be significant and too small to matter (with thousands
#   of users, tiny gains become significant). Report the difference and its interval, not just
#   the p-value.
# * **How sure.** Use paired tests on the same users and split, several seeds for models with
#   randomness, and a correction for many comparisons. And a result holds for *this* split of
#   *this* data: notebook 02 showed how much the split changes the numbers.

# %%
metrics = ["ndcg@10", "recall@10", "auc", "coverage@10", "novelty@10"]
result.table().groupby("model")[metrics].mean().round(4)

# %% [markdown]
# ## What to try next
# * `compare.compare_experiment("tutorial-03-cf", baseline="ease")` on notebook 03's runs (run
#   03 first): is EASE's lead over item-kNN real?
# * Compare on `auc` or `recall@10` instead: does the ranking of models change?
# * In the MLflow UI, select the child runs of one invocation and press *Compare*: parallel
#   coordinates of params against metrics.
# * Continue with **08 · serving and scale**.
