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
# # 06 · Hyperparameter search with Optuna
#
# LightFM has a dozen knobs (embedding size, learning rate, loss, regularisation, epochs...),
# and notebook 03 showed that a default setting can trail simpler baselines. A **sweep** tries
# many settings and keeps the best — but only if it follows three rules:
#
# 1. **Tune on validation, test once.** Every trial fits on *train minus validation* and is
#    scored on the validation carve-out; the test set is touched once, at the end, by the
#    winner and by the untuned default, so the comparison between them is fair. (Picking the
#    best of 30 settings *by test score* would report a lucky draw, not a better model.)
# 2. **Search smartly.** Optuna's TPE sampler models which regions of the space gave good
#    values and samples there more often, after a few random start-up trials.
# 3. **Stop bad trials early.** After each epoch a trial reports its validation NDCG, and a
#    **pruner** stops trials that look worse than others did at the same epoch. The shipped
#    config uses **Hyperband**: trials start on a small budget of epochs and only the best
#    third at each rung earn more (successive halving), hedged over several degrees of
#    aggressiveness. (The simpler **median** pruner stops a trial that is below the median of
#    earlier trials at the same epoch.) Most of the budget then goes to promising settings.
#
# `recexp.tuning` does all of this from `experiments/ml100k_lightfm.search.yaml`: one MLflow
# parent run per sweep, one child run per trial (with its validation curve, pruned or not),
# and Optuna's study in a journal file under `optuna/` at the project root, so a sweep can be
# stopped and resumed.

# %% tags=["parameters"]
# FAST = True: a small, quick run (the test suite sets it). Change nothing else.
FAST = False

# %%
import pandas as pd
from optuna.visualization import matplotlib as optuna_plots

from recexp import tracking, tuning

path = tracking.project_root() / "experiments" / "ml100k_lightfm.search.yaml"
study = "tutorial-06-search-fast" if FAST else "tutorial-06-search"
n_trials = 8 if FAST else 30
overrides = ["name=tutorial-06-search"]
if FAST:
    overrides += ["models.lightfm.params.epochs=6", "search.sampler.n_startup_trials=4"]
config = tuning.load_search_config(path, overrides=overrides)
print("optimise", config.search.metric, "on validation;", config.search.direction)
print("sampler:", dict(config.search.sampler), " pruner:", dict(config.search.pruner))
pd.Series({p.name: p.to_dict() for p in config.search.space}).to_frame("distribution")

# %% [markdown]
# The space is data, not code: each entry becomes one `trial.suggest_*` call, and
# `model.max_sampled` is only drawn when the loss samples negatives (`when:`). The config's own
# `params` are the **default** the tuned model will be compared with.
#
# ## Run the sweep
# Rerunning this cell *adds* trials to the same study (it is resumed by name); delete
# `optuna/<study>.journal` at the project root to start over.

# %%
result = tuning.sweep_from_file(path, n_trials=n_trials, study=study, overrides=overrides,
                                progress=False)
print(result.describe())

# %% [markdown]
# ## Reading the study's plots
# The same four plots are artifacts of the sweep's parent run in MLflow (`plots/`). Here they
# come straight from the study, which `result.load_study()` reads back from its storage.

# %%
loaded = result.load_study()
trials = loaded.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs"))
trials.tail(10)

# %% [markdown]
# **Optimisation history** — each dot a finished trial's validation NDCG@10, the line the best
# so far. Early dots are the random start-up trials; later ones cluster higher as TPE learns
# where good settings live. A line that is still climbing at the end says: more trials.

# %%
ax = optuna_plots.plot_optimization_history(loaded)

# %% [markdown]
# **Intermediate values** — one validation curve per trial, per epoch. Curves that stop
# early are pruned trials: the pruner judged them not worth more epochs.
# This is where pruning pays for itself: count the epochs saved.

# %%
ax = optuna_plots.plot_intermediate_values(loaded)
print(result.states, "-", result.epochs_trained, "epochs trained in total")

# %% [markdown]
# **Parameter importances** — how much of the variation in the objective each parameter
# explains (fANOVA over finished trials). With few trials this is rough; it tells you which
# knob to look at first, not a law. **Slices** show the objective against each parameter's
# values: look for a clear optimum, or a trend running into the edge of the range (then widen
# the range).

# %%
if len(trials.query("state == 'COMPLETE'")) >= 2:
    ax = optuna_plots.plot_param_importances(loaded)
axes = optuna_plots.plot_slice(loaded)

# %% [markdown]
# ## Retrain and test once
# At the end of the sweep the best params and the config's defaults were both refitted on
# train + validation and evaluated **once** on test, with a paired test over users (tuned
# minus default, per user). That is the result to report — not the best validation score,
# which is optimistic because it was the maximum of many noisy measurements.

# %%
final = result.final
comparison = pd.DataFrame({"default": final.default, "tuned": final.tuned}).loc[
    ["precision@10", "recall@10", "ndcg@10", "auc", "coverage@10"]]
print("tuned params:", final.tuned_params)
print(f"paired over {final.paired.n} test users: diff {final.paired.diff:+.4f}, "
      f"t-test p = {final.paired.t_pvalue:.3g}, Wilcoxon p = {final.paired.wilcoxon_pvalue:.3g}")
comparison.assign(change=comparison["tuned"] - comparison["default"]).round(4)

# %% [markdown]
# How to read it:
#
# * **Do not compare the best validation value with the test values.** The validation
#   carve-out holds far fewer positives per user than the test set, so its NDCG sits on a
#   different scale; and being the maximum of many noisy measurements, it is optimistic
#   anyway. The fair comparison is the one above: tuned vs default, both refitted the same
#   way, both on test.
# * A significant paired difference says tuning helped *on this split*. No significant
#   difference (what a small, fast sweep usually gives) says the default was already good or
#   the search too small to find better — not that tuning is useless. Notebook 07 explains
#   how far such claims go.
# * Watch the other columns: a setting tuned for NDCG can change coverage a lot.
#
# ## More workers, more machines
# Trials are independent, so they parallelise. The study lives in a shared storage and any
# number of processes can pull trials from it:
#
# * on one machine, `tuning.sweep(..., workers=2)`, or from a terminal
#   `recexp sweep experiments/ml100k_lightfm.search.yaml --workers 2 --n-trials 40`, starts
#   processes against the journal file;
# * across machines, point every worker at one database (`--storage
#   postgresql://user@host/db`, or `storage=` in Python) and start the same command on each.
#   Trials whose process died stop sending heartbeats; they are marked failed and retried with
#   the same params.
#
# The same command without `--workers` is the everyday way to run a sweep; this notebook only
# calls its Python face, `tuning.sweep_from_file`.
#
# ## What to try next
# * Rerun the sweep cell: the study resumes and TPE builds on the earlier trials.
# * Swap the pruner: `pruner="median"` in `sweep_from_file` (with a new `study` name), or
#   `pruner="none"` to see how many epochs pruning saved.
# * Widen a range that the slice plot shows running into its edge, with
#   `overrides=[..., "search.space.model.no_components.high=256"]`.
# * Tune EASE's `l2` or item-kNN's `neighbours` the same way: a search config is an
#   experiment config with one model, a `validation` carve-out and a `search:` section.
# * Continue with **07 · comparing runs**.
