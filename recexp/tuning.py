"""Hyperparameter sweeps with Optuna: search space, objective, pruning, storage, workers.

A search config (``experiments/NAME.search.yaml``) is an experiment config with exactly one
model and a ``validation`` carve-out, plus a ``search:`` section::

    search:
      metric: ndcg@10                 # validation metric the study optimises
      direction: maximize
      n_trials: 30
      sampler: {kind: tpe, seed: 0}   # tpe | random | qmc, with the sampler's own options
      pruner: {kind: median, n_warmup_steps: 5}
      space:                          # flat param -> distribution, suggested in this order
        model.no_components: {type: int, low: 16, high: 128, log: true}
        model.learning_rate: {type: float, low: 0.005, high: 0.2, log: true}
        model.loss: {type: categorical, choices: [warp, bpr]}
        model.max_sampled: {type: int, low: 5, high: 50, when: {model.loss: [warp]}}
      enqueue: [{model.no_components: 32}]    # param sets tried first (optional)
      heartbeat: {interval: 30, grace_period: 120, max_retry: 1}

:func:`suggest` is the one place where space entries become ``trial.suggest_*`` calls; an
entry with ``when`` is only suggested when every named param (an earlier entry, or the
config's fixed value) has one of the listed values.

What a sweep does (:func:`sweep`, :func:`sweep_from_file`, ``recexp sweep``)
-------------------------------------------------------------------------------
* Each trial (:class:`Objective`) fits on ``split.train`` (train minus validation) and scores
  ``split.valid`` after every epoch: ``trial.report(value, epoch)``, and a trial the pruner
  stops ends PRUNED. Models without epochs report once. The objective never holds the test
  part, so no trial can look at it.
* At the end of every invocation the best params of the whole study, and the config's own
  (default) params, are refitted on ``split.full_train`` (train + valid) and evaluated once on
  test; their per-user values go to :func:`recexp.stats.paired_test`. That is the result.
* ``pruner: {kind: wilcoxon}`` follows the documented use of Optuna's ``WilcoxonPruner``
  (per-instance values, reported with the instance id as the step, in a shuffled order). An
  instance here is a (repeat, user group) pair: a repeat is a model seed (``over: seeds``)
  or a fold of a k-fold ``validation`` splitter (``over: folds``); a user group is a fixed
  hash bucket of validation users, its value the mean metric over its users. After each
  repeat the pruner compares the groups seen so far with the best trial's, pair by pair.
  Users are grouped (not one report per user) to keep storage writes at ``groups`` per
  repeat. As the pruner's docs recommend, a pruned trial returns the mean of what it has
  seen instead of raising: its state is COMPLETE, its ``pruned`` attribute and tag true
  (TPE would misread instance ids as epochs of a PRUNED trial).

Storage and workers
-------------------
Default storage: a journal file ``<project root>/optuna/<study>.journal`` (the root as in
:mod:`recexp.tracking`); a database URL (``postgresql://...``, ``sqlite:///...``) for many
machines. A study is resumed by name. ``workers=W`` starts W processes (spawned) against the
one storage, each with its share of ``n_trials`` and its own sampler seed (``seed + i``).

Tracking
--------
One MLflow parent run per invocation (the launching process creates it; workers receive its
id), tagged ``recexp.study``; one child run per trial, made by the process that runs the
trial: params, the validation curve (``valid.<metric>``, step = epoch), ``epochs_trained``,
``trial_seconds``, tags ``optuna.trial_state`` and ``pruned``. The parent gets the best
params and value, Optuna's plots (PNG via ``optuna.visualization.matplotlib``), the trials
table and the tuned-vs-default test comparison. Every run ends FINISHED, FAILED or KILLED.

Faults
------
Trials send heartbeats (RDB storages natively; journal files through
:class:`HeartbeatJournalStorage`, since Optuna 5's ``JournalStorage`` has none). A trial
whose process died (SIGKILL, power loss) stops beating; after ``grace_period`` seconds the
next trial start of any worker, or the next invocation, marks it FAIL, and
``RetryHeartbeatStaleTrialCallback`` (Optuna 5's name for ``RetryFailedTrialCallback``)
queues a copy with the same params. At the start and end of every invocation, child runs of
the study still RUNNING whose trial is no longer running are set KILLED, and parent runs
still RUNNING whose process (same host, recorded pid) is gone are set KILLED.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import inspect
import json
import math
import os
import socket
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.storages import JournalStorage
from optuna.storages._heartbeat import BaseHeartbeat

from recexp import metrics, tracking
from recexp.columns import Columns
from recexp.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    parse_config,
    read_yaml,
)

__all__ = [
    "FinalResult",
    "HeartbeatConfig",
    "HeartbeatJournalStorage",
    "Objective",
    "SearchConfig",
    "SearchParam",
    "SweepConfig",
    "SweepResult",
    "apply_search_overrides",
    "close_stale_runs",
    "load_search_config",
    "make_pruner",
    "make_sampler",
    "make_storage",
    "parse_search_config",
    "storage_url",
    "suggest",
    "sweep",
    "sweep_from_file",
    "with_choices",
]

PARAM_TYPES = ("int", "float", "categorical")
PRUNERS = ("median", "percentile", "successive_halving", "hyperband", "wilcoxon", "none")
SAMPLERS = ("tpe", "random", "qmc")
_WILCOXON_EXTRA = {"over": "seeds", "repeats": 3, "groups": 30}
_CATCH = (ValueError, ArithmeticError)  # a bad param combination fails its trial, not the sweep
_HEARTBEAT_ATTR = "recexp:heartbeat"


# ============================================================================ search space
@dataclass(frozen=True)
class SearchParam:
    """One entry of the search space: a flat param and the distribution it is drawn from."""

    name: str
    """Flat param name, e.g. ``model.no_components``."""
    type: str
    """``int``, ``float`` or ``categorical``."""
    low: float | int | None = None
    """Lower bound (inclusive) for ``int`` and ``float``."""
    high: float | int | None = None
    """Upper bound (inclusive) for ``int`` and ``float``."""
    log: bool = False
    """Draw uniformly in log space (needs ``low > 0``; not with ``step`` other than 1)."""
    step: float | int | None = None
    """Grid step from ``low`` (``int``: default 1; ``float``: default continuous)."""
    choices: tuple = ()
    """Options of a ``categorical`` param (JSON scalars)."""
    when: Mapping[str, tuple] = field(default_factory=dict)
    """Suggest only when each named param (earlier entry or fixed value) is in its list."""

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether this param is suggested, given the values chosen or fixed so far."""
        return all(values.get(key) in allowed for key, allowed in self.when.items())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high)
            if self.log:
                out["log"] = True
            if self.step is not None:
                out["step"] = self.step
        if self.when:
            out["when"] = {k: list(v) for k, v in self.when.items()}
        return out


def suggest(trial: Any, space: Sequence[SearchParam], *,
            fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Draw one value per active entry of ``space`` through ``trial.suggest_*``.

    Parameters
    ----------
    trial : optuna.Trial
    space : sequence of SearchParam
        In order: a ``when`` may refer to an earlier entry.
    fixed : mapping, optional
        Flat values of params that are not searched, for ``when`` conditions.

    Returns
    -------
    dict
        Flat name -> value, for the entries that were active.

    >>> import optuna
    >>> space = [SearchParam("model.loss", "categorical", choices=("bpr",)),
    ...          SearchParam("model.max_sampled", "int", low=5, high=9,
    ...                      when={"model.loss": ("warp",)})]
    >>> suggest(optuna.create_study().ask(), space)
    {'model.loss': 'bpr'}
    """
    values = dict(fixed or {})
    chosen: dict[str, Any] = {}
    for p in space:
        if not p.active(values):
            continue
        if p.type == "int":
            value = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1),
                                      log=p.log)
        elif p.type == "float":
            value = trial.suggest_float(p.name, float(p.low), float(p.high), step=p.step,
                                        log=p.log)
        else:
            value = trial.suggest_categorical(p.name, list(p.choices))
        values[p.name] = chosen[p.name] = value
    return chosen


# ============================================================================ config
@dataclass(frozen=True)
class HeartbeatConfig:
    """How dead trials are found and retried."""

    interval: int = 30
    """Seconds between a running trial's heartbeats."""
    grace_period: int = 120
    """Seconds without a heartbeat after which a RUNNING trial is failed."""
    max_retry: int = 1
    """How many times a failed-by-heartbeat trial is queued again with the same params."""


@dataclass(frozen=True)
class SearchConfig:
    """The ``search:`` section of a search config."""

    space: tuple[SearchParam, ...]
    """Entries in order; names are flat params of the one model (``model.<param>``)."""
    metric: str = "ndcg@10"
    """Validation metric to optimise: a per-user metric of :mod:`recexp.metrics`."""
    direction: str = "maximize"
    """``maximize`` or ``minimize``."""
    n_trials: int = 20
    """Trials per invocation when the command line gives none."""
    sampler: Mapping[str, Any] = field(default_factory=lambda: {"kind": "tpe"})
    """``{kind: tpe|random|qmc, seed: ..., <sampler options>}``."""
    pruner: Mapping[str, Any] = field(default_factory=lambda: {"kind": "median"})
    """``{kind: median|percentile|successive_halving|hyperband|wilcoxon|none, <options>}``;
    wilcoxon also takes ``over`` (seeds|folds), ``repeats`` (seeds) and ``groups``."""
    enqueue: tuple[Mapping[str, Any], ...] = ()
    """Param sets (flat, a subset of the space) evaluated first, once per study."""
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    """Heartbeat and retry of trials whose process died."""

    @property
    def metric_name(self) -> str:
        return self.metric.split("@")[0]

    @property
    def metric_k(self) -> int | None:
        return int(self.metric.split("@")[1]) if "@" in self.metric else None

    @property
    def pruner_kind(self) -> str:
        return str(self.pruner.get("kind", "none"))

    def to_dict(self) -> dict[str, Any]:
        return {"space": {p.name: p.to_dict() for p in self.space}, "metric": self.metric,
                "direction": self.direction, "n_trials": self.n_trials,
                "sampler": dict(self.sampler), "pruner": dict(self.pruner),
                "enqueue": [dict(e) for e in self.enqueue],
                "heartbeat": dataclasses.asdict(self.heartbeat)}


@dataclass(frozen=True)
class SweepConfig:
    """A search config: the experiment (one model, with validation) and its search."""

    experiment: ExperimentConfig
    """Everything but ``search:``, checked by :func:`recexp.config.parse_config`."""
    search: SearchConfig
    """The ``search:`` section."""

    @property
    def model(self):
        """The one :class:`~recexp.config.ModelConfig`."""
        return self.experiment.models[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :func:`parse_search_config` reads back to an equal config."""
        return {**self.experiment.to_dict(), "search": self.search.to_dict()}


def _nearest(name: Any, options: Sequence[str]) -> str:
    near = difflib.get_close_matches(str(name), list(options), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _check_keys(data: Any, valid: Sequence[str], path: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {data!r}")
    for key in data:
        if key not in valid:
            raise ConfigError(f"{path}.{key}: unknown key{_nearest(key, valid)} "
                              f"(valid: {', '.join(valid)})")


def _number(value: Any, path: str, *, integer: bool) -> int | float:
    ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value):
        raise ConfigError(f"{path}: expected {'an integer' if integer else 'a number'}, "
                          f"got {value!r}")
    return value


def _model_check(cls, base: Mapping[str, Any], name: str, value: Any, path: str) -> None:
    try:
        model = cls.from_params({**base, name: value})
        model.check_params()
        # LightFMRecommender checks its params in `_validate` (check_params is the base
        # no-op there); ask it too, so a bad bound fails now and not in trial 17.
        validate = getattr(model, "_validate", None)
        if callable(validate):
            validate()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _parse_param(name: str, entry: Any, *, cls, base: Mapping[str, Any],
                 earlier: Mapping[str, SearchParam], path: str) -> SearchParam:
    keys = ("type", "low", "high", "log", "step", "choices", "when")
    _check_keys(entry, keys, path)
    names = [f"model.{p}" for p in cls.param_names]
    if name not in names:
        raise ConfigError(f"{path}: unknown parameter{_nearest(name, names)} (searchable: "
                          f"{', '.join(names)})")
    kind = entry.get("type")
    if kind not in PARAM_TYPES:
        raise ConfigError(f"{path}.type: {kind!r} is not a type{_nearest(kind, PARAM_TYPES)} "
                          f"(types: {', '.join(PARAM_TYPES)})")
    param = name.split(".", 1)[1]
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{path}.log: expected true or false, got {log!r}")
    kwargs: dict[str, Any] = {}
    if kind == "categorical":
        for key in ("low", "high", "log", "step"):
            if key in entry:
                raise ConfigError(f"{path}.{key}: a categorical param takes only `choices`")
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{path}.choices: expected a non-empty list, got {choices!r}")
        for i, choice in enumerate(choices):
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ConfigError(f"{path}.choices[{i}]: expected a number, string, boolean "
                                  f"or null, got {choice!r}")
            _model_check(cls, base, param, choice, f"{path}.choices[{i}]")
        kwargs["choices"] = tuple(choices)
    else:
        if "choices" in entry:
            raise ConfigError(f"{path}.choices: only a categorical param takes choices")
        integer = kind == "int"
        for key in ("low", "high"):
            if key not in entry:
                raise ConfigError(f"{path}.{key}: required for type {kind}")
            kwargs[key] = _number(entry[key], f"{path}.{key}", integer=integer)
        low, high = kwargs["low"], kwargs["high"]
        if low > high:
            raise ConfigError(f"{path}: low ({low}) is above high ({high})")
        if log and low <= 0:
            raise ConfigError(f"{path}.low: log scale needs low > 0, got {low}")
        step = entry.get("step")
        if step is not None:
            step = _number(step, f"{path}.step", integer=integer)
            if step <= 0:
                raise ConfigError(f"{path}.step: must be positive, got {step}")
            if log and step != 1:
                raise ConfigError(f"{path}: `log` and `step` cannot be combined (Optuna "
                                  "draws log-scale values without a grid)")
            if log and not integer:
                raise ConfigError(f"{path}: `log` and `step` cannot be combined for a float")
        kwargs["step"] = step
        kwargs["log"] = log
        for key in ("low", "high"):
            _model_check(cls, base, param, float(kwargs[key]) if not integer else kwargs[key],
                         f"{path}.{key}")
    when = entry.get("when", {})
    if not isinstance(when, Mapping):
        raise ConfigError(f"{path}.when: expected a mapping of param -> allowed values")
    parsed_when: dict[str, tuple] = {}
    for key, allowed in when.items():
        where = f"{path}.when.{key}"
        if key not in names:
            raise ConfigError(f"{where}: unknown parameter{_nearest(key, names)}")
        if key == name:
            raise ConfigError(f"{where}: a param cannot depend on itself")
        allowed = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if key in earlier and earlier[key].type == "categorical":
            options = earlier[key].choices
            for value in allowed:
                if value not in options:
                    raise ConfigError(f"{where}: {value!r} is not a choice of {key}"
                                      f"{_nearest(value, [str(c) for c in options])}")
        parsed_when[key] = allowed
    return SearchParam(name=name, type=kind, when=parsed_when, **kwargs)


def _later_reference(space: Sequence[SearchParam], path: str) -> None:
    seen: set[str] = set()
    names = {p.name for p in space}
    for p in space:
        for key in p.when:
            if key in names and key not in seen:
                raise ConfigError(f"{path}.{p.name}.when.{key}: {key} is searched after "
                                  f"{p.name}; list it first")
        seen.add(p.name)


def _kind_path(path: str) -> str:
    return path if path.startswith("--") else f"{path}.kind"  # --pruner X names the kind


def _parse_sampler(spec: Any, path: str) -> dict[str, Any]:
    spec = {"kind": spec} if isinstance(spec, str) else spec
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{path}: expected a mapping with a `kind`, got {spec!r}")
    spec = dict(spec)
    kind = spec.get("kind", "tpe")
    if kind not in SAMPLERS:
        raise ConfigError(f"{_kind_path(path)}: unknown sampler {kind!r}"
                          f"{_nearest(kind, SAMPLERS)} (samplers: {', '.join(SAMPLERS)})")
    spec["kind"] = kind
    options = _signature_names(_sampler_class(kind))
    _check_keys(spec, ["kind", *options], path)
    try:
        make_sampler(spec)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return spec


def _parse_pruner(spec: Any, path: str, config: ExperimentConfig) -> dict[str, Any]:
    spec = {"kind": spec} if isinstance(spec, str) else spec
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{path}: expected a mapping with a `kind`, got {spec!r}")
    spec = dict(spec)
    kind = spec.get("kind")
    if kind not in PRUNERS:
        raise ConfigError(f"{_kind_path(path)}: unknown pruner {kind!r}"
                          f"{_nearest(kind, PRUNERS)} (pruners: {', '.join(PRUNERS)})")
    options = _signature_names(_pruner_class(kind))
    if kind == "wilcoxon":
        options += list(_WILCOXON_EXTRA)
    _check_keys(spec, ["kind", *options], path)
    if kind == "wilcoxon":
        spec = {**_WILCOXON_EXTRA, **spec}
        if spec["over"] not in ("seeds", "folds"):
            raise ConfigError(f"{path}.over: 'seeds' or 'folds', got {spec['over']!r}"
                              f"{_nearest(spec['over'], ('seeds', 'folds'))}")
        for key in ("repeats", "groups"):
            if _number(spec[key], f"{path}.{key}", integer=True) < 2:
                raise ConfigError(f"{path}.{key}: at least 2, got {spec[key]}")
        if spec["over"] == "folds":
            from recexp.split import make_splitter

            n = make_splitter(dict(config.validation or {})).n_splits
            if n < 2:
                raise ConfigError(f"{path}.over: 'folds' needs a k-fold `validation` splitter "
                                  f"(kind kfold or user_kfold), got "
                                  f"{(config.validation or {}).get('kind')!r}")
    try:
        make_pruner(spec)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return spec


def _parse_search(data: Any, config: ExperimentConfig) -> SearchConfig:
    from recexp.metrics import ACCURACY
    from recexp.models import get_model_class

    path = "search"
    keys = [f.name for f in dataclasses.fields(SearchConfig)]
    _check_keys(data, keys, path)
    if "space" not in data:
        raise ConfigError(f"{path}.space: required key is missing")
    cls = get_model_class(config.models[0].model)
    base = dict(config.models[0].params)
    fixed = {f"model.{k}": v for k, v in {**cls().get_params(), **base}.items()}
    space_data = data["space"]
    if not isinstance(space_data, Mapping) or not space_data:
        raise ConfigError(f"{path}.space: expected a non-empty mapping of param -> "
                          "{type, low, high, ...}")
    space: dict[str, SearchParam] = {}
    for name, entry in space_data.items():
        space[name] = _parse_param(str(name), entry, cls=cls, base=base, earlier=space,
                                   path=f"{path}.space.{name}")
    ordered = tuple(space.values())
    _later_reference(ordered, f"{path}.space")
    for p in ordered:
        for key, allowed in p.when.items():
            if key not in space and fixed.get(key) not in allowed:
                warnings.warn(f"{path}.space.{p.name}: never suggested, since {key} is fixed at "
                              f"{fixed.get(key)!r}", stacklevel=3)
    metric = data.get("metric", "ndcg@10")
    name, _, k = str(metric).partition("@")
    if name not in ACCURACY or (name in ("mrr", "auc")) != (k == "") or (
            k and not (k.isdigit() and int(k) > 0)):
        options = [f"{m}@10" for m in ACCURACY if m not in ("mrr", "auc")] + ["mrr", "auc"]
        raise ConfigError(f"{path}.metric: {metric!r} is not a per-user metric"
                          f"{_nearest(metric, options)} (e.g. {', '.join(options)})")
    direction = data.get("direction", "maximize")
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"{path}.direction: 'maximize' or 'minimize', got {direction!r}"
                          f"{_nearest(direction, ('maximize', 'minimize'))}")
    n_trials = _number(data.get("n_trials", 20), f"{path}.n_trials", integer=True)
    if n_trials < 1:
        raise ConfigError(f"{path}.n_trials: at least 1, got {n_trials}")
    sampler = _parse_sampler(data.get("sampler", {"kind": "tpe"}), f"{path}.sampler")
    pruner = _parse_pruner(data.get("pruner", {"kind": "median"}), f"{path}.pruner", config)
    enqueue_data = data.get("enqueue", [])
    if not isinstance(enqueue_data, list):
        raise ConfigError(f"{path}.enqueue: expected a list of param mappings")
    enqueue = []
    for i, entry in enumerate(enqueue_data):
        _check_keys(entry, list(space), f"{path}.enqueue[{i}]")
        for key, value in entry.items():
            _model_check(cls, base, key.split(".", 1)[1], value, f"{path}.enqueue[{i}].{key}")
        enqueue.append(dict(entry))
    hb_data = data.get("heartbeat", {})
    _check_keys(hb_data, [f.name for f in dataclasses.fields(HeartbeatConfig)],
                f"{path}.heartbeat")
    hb = {k: _number(v, f"{path}.heartbeat.{k}", integer=True) for k, v in hb_data.items()}
    heartbeat = HeartbeatConfig(**hb)
    if heartbeat.interval < 1 or heartbeat.grace_period <= heartbeat.interval:
        raise ConfigError(f"{path}.heartbeat: need interval >= 1 and grace_period > interval, "
                          f"got {dataclasses.asdict(heartbeat)}")
    if heartbeat.max_retry < 0:
        raise ConfigError(f"{path}.heartbeat.max_retry: must be >= 0")
    return SearchConfig(space=ordered, metric=str(metric), direction=direction,
                        n_trials=n_trials, sampler=sampler, pruner=pruner,
                        enqueue=tuple(enqueue), heartbeat=heartbeat)


def parse_search_config(data: Mapping[str, Any], *, source: str = "config") -> SweepConfig:
    """Build and check a :class:`SweepConfig` from plain data (a parsed YAML file).

    Raises
    ------
    ConfigError
        Naming ``source``, the key path and, for an unknown name, the nearest valid one.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    data = dict(data)
    if "search" not in data:
        raise ConfigError(f"{source}: search: required section is missing (a search config "
                          "is an experiment config plus `search:`)")
    search_data = data.pop("search")
    experiment = parse_config(data, source=source)
    try:
        if len(experiment.models) != 1:
            labels = ", ".join(m.label for m in experiment.models)
            raise ConfigError(f"models: a search tunes exactly one model, got "
                              f"{len(experiment.models)} ({labels})")
        if experiment.validation is None:
            raise ConfigError("validation: a search needs a validation carve-out (e.g. "
                              "{kind: user_ratio, ratio: 0.1, seed: 7}); trials never see test")
        search = _parse_search(search_data, experiment)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return SweepConfig(experiment=experiment, search=search)


def load_search_config(path: str | Path, *, overrides: Sequence[str] = ()) -> SweepConfig:
    """Read a ``*.search.yaml`` file, apply ``key.path=value`` overrides (``search.*`` too),
    build and check it."""
    data = apply_search_overrides(read_yaml(path), overrides, source=str(path))
    return parse_search_config(data, source=str(path))


def apply_search_overrides(data: Mapping[str, Any], overrides: Sequence[str], *,
                           source: str = "config") -> dict[str, Any]:
    """:func:`recexp.config.apply_overrides`, where keys under ``search.space``,
    ``search.enqueue.N`` and ``when`` are flat param names with a dot of their own:
    ``search.space.model.no_components.high=64`` sets ``high`` of ``model.no_components``.
    """
    def dotted(walked: list[str]) -> bool:
        return (walked[:1] == ["search"] and (walked[-1:] == ["space"]
                                              or walked[-2:-1] == ["enqueue"]
                                              or walked[-1:] == ["when"]))

    return apply_overrides(data, overrides, source=source, dotted=dotted)


# ============================================================================ samplers, pruners
def _signature_names(cls) -> list[str]:
    return [n for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _sampler_class(kind: str):
    return {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "qmc": optuna.samplers.QMCSampler}[kind]


def _pruner_class(kind: str):
    return {"median": optuna.pruners.MedianPruner,
            "percentile": optuna.pruners.PercentilePruner,
            "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
            "hyperband": optuna.pruners.HyperbandPruner,
            "wilcoxon": optuna.pruners.WilcoxonPruner,
            "none": optuna.pruners.NopPruner}[kind]


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def make_sampler(spec: Mapping[str, Any], *, seed: int | None = None):
    """An Optuna sampler from ``{kind, <options>}``; ``seed`` (when given) replaces the spec's."""
    options = {k: v for k, v in spec.items() if k != "kind"}
    if seed is not None:
        options["seed"] = seed
    with _quiet_experimental():
        return _sampler_class(spec.get("kind", "tpe"))(**options)


def make_pruner(spec: Mapping[str, Any]):
    """An Optuna pruner from ``{kind, <options>}`` (wilcoxon's own extras are left out)."""
    kind = spec.get("kind", "none")
    options = {k: v for k, v in spec.items()
               if k != "kind" and not (kind == "wilcoxon" and k in _WILCOXON_EXTRA)}
    with _quiet_experimental():
        return _pruner_class(kind)(**options)


# ============================================================================ storage
def storage_url(storage: str | None, study: str) -> str:
    """The storage a sweep uses: ``storage`` as given (a database URL or a journal file
    path), else ``<project root>/optuna/<study>.journal``."""
    if storage:
        return storage
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)
    return str(tracking.project_root() / "optuna" / f"{slug}.journal")


def _is_rdb(url: str) -> bool:
    return "://" in url and not url.startswith("file:")


def _display_url(url: str) -> str:
    """The storage URL without its password, fit for logs."""
    if not _is_rdb(url):
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # pragma: no cover - unparsable URL: show only the scheme
        return url.split("://", 1)[0] + "://***"


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's ``JournalStorage`` with heartbeats, as ``RDBStorage`` has them.

    Optuna 5's journal storage does not implement ``BaseHeartbeat``. This subclass records a
    running trial's heartbeat as the system attribute ``recexp:heartbeat`` (a Unix time,
    written every ``heartbeat_interval`` seconds by Optuna's own heartbeat thread) and reports
    RUNNING trials without one for ``grace_period`` seconds as stale, so Optuna's
    ``fail_stale_trials`` fails them and runs ``stale_trial_callback`` (a retry). The clocks of
    machines sharing the file must agree to well within the grace period.

    Parameters
    ----------
    backend : optuna.storages.journal.BaseJournalBackend
    heartbeat_interval : int
        Seconds between heartbeats.
    grace_period : int
        Seconds without a heartbeat after which a RUNNING trial is stale.
    stale_trial_callback : callable, optional
        ``(study, frozen_trial)``, run for every trial failed as stale.
    """

    def __init__(self, backend, *, heartbeat_interval: int, grace_period: int,
                 stale_trial_callback=None) -> None:
        super().__init__(backend)
        self._heartbeat_interval = heartbeat_interval
        self._grace_period = grace_period
        self._stale_callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        # Another worker may have failed the trial meanwhile: then there is nothing to beat.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, KeyError):
            self.set_trial_system_attr(trial_id, _HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False,
                                         states=(optuna.trial.TrialState.RUNNING,)):
            beat = trial.system_attrs.get(_HEARTBEAT_ATTR)
            if beat is None and trial.datetime_start is not None:
                beat = trial.datetime_start.timestamp()
            if beat is not None and now - float(beat) > self._grace_period:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._heartbeat_interval

    def get_heartbeat_stale_trial_callback(self):
        return self._stale_callback


def _with_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; use psycopg2 when only it
    is installed (``psycopg2-binary``), so both drivers work with the plain URL."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def make_storage(url: str, *, heartbeat: HeartbeatConfig = HeartbeatConfig()):
    """An Optuna storage with heartbeats and retry of dead trials.

    Parameters
    ----------
    url : str
        A database URL (``postgresql://``, ``mysql://``, ``sqlite:///``) for ``RDBStorage``
        (``postgresql://`` uses psycopg 3 if installed, else psycopg2), else a journal file
        path (parent folders are created).
    heartbeat : HeartbeatConfig
    """
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    with _quiet_experimental():
        retry = RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retry)
        if _is_rdb(url):
            engine = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
            return RDBStorage(_with_driver(url), engine_kwargs=engine,
                              heartbeat_interval=heartbeat.interval,
                              grace_period=heartbeat.grace_period,
                              heartbeat_stale_trial_callback=retry)
        path = Path(url.removeprefix("journal:")).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return HeartbeatJournalStorage(JournalFileBackend(str(path)),
                                       heartbeat_interval=heartbeat.interval,
                                       grace_period=heartbeat.grace_period,
                                       stale_trial_callback=retry)


# ============================================================================ objective
def _flat_model(params: Mapping[str, Any]) -> dict[str, Any]:
    return {f"model.{k}": v for k, v in params.items()}


def _unflat(flat: Mapping[str, Any]) -> dict[str, Any]:
    return {k.split(".", 1)[1]: v for k, v in flat.items() if k.startswith("model.")}


def _user_group(user_ids: np.ndarray, groups: int) -> np.ndarray:
    """A fixed bucket per external user id (the same in every trial and process)."""
    return np.array([zlib.crc32(str(u).encode()) % groups for u in user_ids], dtype=np.int64)


class Objective:
    """What a study optimises: one call is one trial, fitted on train and scored on valid.

    The callable holds the prepared data a trial needs (the training part and the
    validation split, or the validation folds) and never the test part.

    Parameters
    ----------
    prepared : recexp.experiment.Prepared
        With a validation carve-out (``prepared.split.valid``).
    config : SweepConfig
    parent_run_id : str, optional
        MLflow parent run of the invocation; every trial becomes a child run of it.
    study_name : str
    storage : str
        Storage URL as shown in tags (no password).
    worker : int
        Index of the worker process, for tags.
    track : bool
        Log a child run per trial (off: no MLflow at all).
    """

    def __init__(self, prepared, config: SweepConfig, *, parent_run_id: str | None = None,
                 study_name: str = "", storage: str = "", worker: int = 0,
                 track: bool = True) -> None:
        from recexp.experiment import _valid_split

        split = prepared.split
        if split.valid is None:
            raise ValueError("Objective: the split has no validation set")
        self.config = config
        self.search = config.search
        self.train = split.train
        self.valid = _valid_split(split)
        self.base_params = dict(config.model.params)
        self.seed = config.experiment.seeds[0]
        self.threads = config.experiment.threads
        self.parent_run_id = parent_run_id
        self.study_name = study_name
        self.storage = storage
        self.worker = worker
        self.track = track
        self._steps: tracking.StepMetrics | None = None  # the tracked trial's, while it runs
        self.folds = None
        pruner = self.search.pruner
        if self.search.pruner_kind == "wilcoxon" and pruner["over"] == "folds":
            from recexp.split import make_splitter

            splitter = make_splitter(dict(config.experiment.validation))
            self.folds = [(s.train, s) for s in splitter.splits(split.full_train)]
        self._tags: dict[str, str] = {}
        if track:
            self._tags = {**tracking.environment_tags(
                threads=self.threads, reproducible=self.threads == 1),
                "recexp.kind": "trial", "recexp.study": study_name,
                "recexp.storage": storage, "recexp.model": config.model.model,
                "recexp.label": config.model.label, "recexp.seed": str(self.seed),
                "recexp.worker": str(worker), "recexp.host": socket.gethostname(),
                "recexp.pid": str(os.getpid())}

    # ---------------------------------------------------------------- scoring
    @property
    def metric_key(self) -> str:
        from recexp.experiment import _metric_key

        return f"valid.{_metric_key(self.search.metric)}"

    def _evaluate(self, model, split):
        k = self.search.metric_k or 10
        ev = self.config.experiment.evaluation
        return metrics.evaluate(model, split, k=(k,), metrics=(self.search.metric_name,),
                                batch_size=ev.batch_size,
                                relevance_threshold=ev.relevance_threshold, segments=False)

    def params_of(self, trial) -> dict[str, Any]:
        """The model params of ``trial``: the config's, with the trial's suggestions over."""
        fixed = _flat_model({**self._defaults(), **self.base_params})
        chosen = suggest(trial, self.search.space, fixed=fixed)
        return {**self.base_params, **_unflat(chosen)}

    def _defaults(self) -> dict[str, Any]:
        from recexp.models import get_model_class

        return get_model_class(self.config.model.model)().get_params()

    # ---------------------------------------------------------------- the trial
    def __call__(self, trial) -> float:
        params = self.params_of(trial)
        start = time.perf_counter()
        if not self.track:
            return self._run(trial, params)
        import mlflow

        tags = dict(self._tags)
        tags["recexp.trial_number"] = str(trial.number)
        retry_of = trial.storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
        if retry_of is not None:
            tags["recexp.retry_of"] = str(retry_of)
        pruned: BaseException | None = None
        with tracking.tracked_run(f"trial-{trial.number:03d}",
                                  experiment=self.config.experiment.name,
                                  parent_run_id=self.parent_run_id, tags=tags) as run:
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            tracking.log_params({**_flat_model(params), "trial.number": trial.number,
                                 "seed": self.seed})
            try:
                # per-epoch values go to MLflow in batches (see tracking.StepMetrics)
                with tracking.StepMetrics(run.info.run_id) as self._steps:
                    value = self._run(trial, params)
                self._steps = None
            except optuna.TrialPruned as exc:
                pruned = exc
                mlflow.set_tags({"optuna.trial_state": "PRUNED", "pruned": "true"})
            except BaseException:
                mlflow.set_tag("optuna.trial_state", "FAIL")
                raise
            else:
                early = bool(trial.user_attrs.get("pruned", False))
                mlflow.set_tags({"optuna.trial_state": "COMPLETE",
                                 "pruned": str(early).lower()})
                if math.isfinite(value):
                    mlflow.log_metric(f"{self.metric_key}.final", value)
            finally:
                mlflow.log_metric("trial_seconds", time.perf_counter() - start)
                mlflow.log_metric("epochs_trained",
                                  float(trial.user_attrs.get("epochs_trained", 0)))
        if pruned is not None:
            raise pruned
        return value

    def _run(self, trial, params: dict[str, Any]) -> float:
        if self.search.pruner_kind == "wilcoxon":
            return self._run_instances(trial, params)
        return self._run_epochs(trial, params)

    def _fit(self, model, train, valid, *, on_value) -> int:
        """Fit ``model``; after every epoch score ``valid`` and pass the value to
        ``on_value(epoch, value) -> stop``. Returns epochs trained (1 without epochs)."""
        from recexp.experiment import _takes_callback

        if not _takes_callback(model):
            model.fit(train)
            on_value(1, float(self._evaluate(model, valid).summary[self.search.metric]))
            return 1
        trained = 0

        def callback(epoch: int, fitted) -> bool:
            nonlocal trained
            trained = epoch
            value = float(self._evaluate(fitted, valid).summary[self.search.metric])
            return bool(on_value(epoch, value))

        model.fit(train, callback=callback)
        return trained

    def _log(self, key: str, value: float, step: int) -> None:
        if self.track and math.isfinite(value) and self._steps is not None:
            self._steps.log({key: value}, step=step)

    def _run_epochs(self, trial, params: dict[str, Any]) -> float:
        from recexp.experiment import make_model

        model = make_model(self.config.model.model, params, seed=self.seed,
                           threads=self.threads)
        last = [float("nan")]
        stopped = [False]

        def on_value(epoch: int, value: float) -> bool:
            last[0] = value
            self._log(self.metric_key, value, epoch)
            trial.report(value, epoch)
            if trial.should_prune():
                stopped[0] = True
                return True
            return False

        epochs = self._fit(model, self.train, self.valid, on_value=on_value)
        trial.set_user_attr("epochs_trained", epochs)
        if stopped[0] and getattr(model, "epochs", epochs) > epochs:
            trial.set_user_attr("pruned", True)
            raise optuna.TrialPruned(f"pruned at epoch {epochs}: {last[0]:.5f}")
        return last[0]

    def _run_instances(self, trial, params: dict[str, Any]) -> float:
        from recexp.experiment import _metric_key, make_model

        spec = self.search.pruner
        groups = int(spec["groups"])
        repeats = len(self.folds) if self.folds is not None else int(spec["repeats"])
        # Shuffled per trial, as WilcoxonPruner's docs advise, so no repeat is always first.
        order = np.random.default_rng(trial.number).permutation(repeats)
        column = self.search.metric
        values: list[float] = []
        epochs_total = 0
        pruned = False
        for position, rep in enumerate(order):
            rep = int(rep)
            if self.folds is not None:
                train, valid = self.folds[rep]
                seed = self.seed
            else:
                train, valid, seed = self.train, self.valid, self.seed + rep
            model = make_model(self.config.model.model, params, seed=seed,
                               threads=self.threads)
            key = f"valid.rep{rep}.{_metric_key(column)}"
            epochs_total += self._fit(
                model, train, valid,
                on_value=lambda epoch, value, key=key: self._log(key, value, epoch))
            per_user = self._evaluate(model, valid).per_user
            per_user = per_user[per_user["segment"] == "all"]
            bucket = _user_group(per_user[Columns.User].to_numpy(), groups)
            means = pd.Series(per_user[column].to_numpy(float)).groupby(bucket).mean()
            for group, value in means.items():
                if math.isfinite(value):
                    trial.report(float(value), rep * groups + int(group))
                    values.append(float(value))
            if position < repeats - 1 and trial.should_prune():
                pruned = True
                break
        trial.set_user_attr("epochs_trained", epochs_total)
        trial.set_user_attr("pruned", pruned)
        trial.set_user_attr("repeats_done", position + 1)
        return float(np.mean(values)) if values else float("nan")


# ============================================================================ MLflow upkeep
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_stale_runs(study, *, experiment: str, storage: str = "",
                     keep: Sequence[str] = ()) -> list[str]:
    """Set KILLED the MLflow runs of ``study`` left RUNNING by a dead process.

    A trial's child run is stale when its trial is no longer RUNNING in the study (failed by
    heartbeat, or finished without the run closing). A sweep's parent run is stale when it
    was started on this host by a process that no longer exists. Runs of other hosts' live
    invocations are never touched. Returns the run ids set KILLED.
    """
    import mlflow
    from mlflow.tracking import MlflowClient
    from optuna.trial import TrialState

    tracking.configure()
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return []
    client = MlflowClient()
    name = study.study_name.replace("'", "\\'")
    runs = client.search_runs([found.experiment_id],
                              filter_string=f"tags.`recexp.study` = '{name}' and "
                                            "attributes.status = 'RUNNING'",
                              max_results=5000)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    host = socket.gethostname()
    killed = []
    for run in runs:
        tags = run.data.tags
        if run.info.run_id in keep or (storage and tags.get("recexp.storage", storage) != storage):
            continue
        reason = None
        if tags.get("recexp.kind") == "trial":
            number = int(tags.get("recexp.trial_number", -1))
            trial = trials.get(number)
            if trial is None or trial.state != TrialState.RUNNING:
                state = trial.state.name if trial is not None else "missing"
                reason = f"trial {number} is {state} in the study: its process died"
        elif tags.get("recexp.kind") == "sweep":
            pid = tags.get("recexp.pid")
            if tags.get("recexp.host") == host and pid and not _pid_alive(int(pid)):
                reason = f"its process {pid} on {host} is gone"
        if reason is not None:
            client.set_tag(run.info.run_id, "recexp.killed_reason", reason)
            client.set_terminated(run.info.run_id, status="KILLED")
            killed.append(run.info.run_id)
    return killed


def _log_study_plots(study) -> dict[str, str]:
    """Optuna's plots as PNG artifacts of the active run; returns plot -> reason skipped."""
    import mlflow
    from optuna.visualization import matplotlib as ovm

    from recexp import plots

    plt = plots._pyplot()
    skipped: dict[str, str] = {}
    makers = {"optimization_history": ovm.plot_optimization_history,
              "param_importances": ovm.plot_param_importances,
              "parallel_coordinate": ovm.plot_parallel_coordinate,
              "intermediate_values": ovm.plot_intermediate_values}
    for name, make in makers.items():
        try:
            with _quiet_experimental(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = make(study)
            fig = np.ravel(axes)[0].figure if isinstance(axes, np.ndarray) else axes.figure
            for ax in fig.axes:
                legend = ax.get_legend()
                if legend is not None and len(legend.get_texts()) > 12:
                    legend.remove()  # one entry per trial: taller than the figure
            fig.set_size_inches(12 if name == "parallel_coordinate" else 8, 5)
            fig.tight_layout()
            mlflow.log_figure(fig, f"plots/{name}.png")
        except Exception as exc:  # a plot that needs more trials than there are
            skipped[name] = f"{type(exc).__name__}: {exc}"
        finally:
            plt.close("all")
    return skipped


# ============================================================================ final test
@dataclass(frozen=True)
class FinalResult:
    """The tuned and default params, each refitted on train + valid and tested once."""

    tuned_params: dict[str, Any]
    default_params: dict[str, Any]
    tuned: dict[str, float]
    default: dict[str, float]
    per_user: pd.DataFrame
    """``user_id``, ``seed`` means: one row per test user, columns ``tuned`` and ``default``
    (the comparison metric, averaged over the config's seeds)."""
    paired: Any
    """:class:`recexp.stats.PairedTest` of tuned against default."""


def _final(prepared, config: SweepConfig, tuned_params: dict[str, Any]) -> FinalResult:
    from recexp.experiment import make_model
    from recexp.stats import paired_test

    ev = config.experiment.evaluation
    search = config.search
    ks = sorted(set(ev.k) | ({search.metric_k} if search.metric_k else set()))
    names = list(dict.fromkeys([*ev.metrics, search.metric_name]))
    summaries: dict[str, dict[str, float]] = {}
    columns: dict[str, pd.Series] = {}
    for label, params in (("tuned", tuned_params), ("default", dict(config.model.params))):
        runs = []
        per_user = []
        for seed in config.experiment.seeds:
            model = make_model(config.model.model, params, seed=seed,
                               threads=config.experiment.threads)
            model.fit(prepared.split.full_train)
            result = metrics.evaluate(model, prepared.split, k=ks, metrics=names,
                                      batch_size=ev.batch_size, segments=ev.segments,
                                      relevance_threshold=ev.relevance_threshold)
            runs.append(result.summary)
            table = result.per_user[result.per_user["segment"] == "all"]
            per_user.append(table.set_index(Columns.User)[search.metric])
        summaries[label] = {k: float(np.nanmean([r.get(k, np.nan) for r in runs]))
                            for k in runs[0]}
        columns[label] = pd.concat(per_user, axis=1).mean(axis=1)
    table = pd.DataFrame(columns)
    table.index.name = Columns.User
    return FinalResult(tuned_params=tuned_params, default_params=dict(config.model.params),
                       tuned=summaries["tuned"], default=summaries["default"],
                       per_user=table.reset_index(),
                       paired=paired_test(columns["default"], columns["tuned"]))


# ============================================================================ the sweep
@dataclass(frozen=True)
class SweepResult:
    """What one invocation of :func:`sweep` did."""

    study_name: str
    storage: str
    """Storage URL (no password) or journal file."""
    parent_run_id: str | None
    metric: str
    direction: str
    best_value: float | None
    """Best validation value of the whole study (all invocations)."""
    best_params: dict[str, Any]
    """Model params of the best trial (the config's params with the trial's over them)."""
    best_trial: int | None
    states: dict[str, int]
    """Trials of this invocation by final state (COMPLETE, PRUNED, FAIL, ...)."""
    epochs_trained: int
    """Epochs trained by this invocation's trials (sum)."""
    seconds: float
    final: FinalResult | None
    """Tuned vs default on test; ``None`` when ``retrain=False`` or no trial completed."""

    def describe(self) -> str:
        """A few lines for a terminal."""
        lines = [f"study {self.study_name!r} in {self.storage}",
                 "trials this run: " + ", ".join(f"{k.lower()} {v}"
                                                 for k, v in sorted(self.states.items()))
                 + f"; {self.epochs_trained} epochs; {self.seconds:.0f} s"]
        if self.best_trial is not None:
            lines.append(f"best trial {self.best_trial}: valid {self.metric} = "
                         f"{self.best_value:.4f}")
            lines.append("best params: " + json.dumps(self.best_params, sort_keys=True))
        if self.final is not None:
            m, p = self.metric, self.final.paired
            lines.append(f"test {m}: tuned {self.final.tuned[m]:.4f}  default "
                         f"{self.final.default[m]:.4f}  diff {p.diff:+.4f}  "
                         f"paired t p={p.t_pvalue:.3g}  wilcoxon p={p.wilcoxon_pvalue:.3g}  "
                         f"({p.n} users)")
        if self.parent_run_id:
            lines.append(f"MLflow parent run {self.parent_run_id}")
        return "\n".join(lines)

    def load_study(self, *, storage: str | None = None) -> optuna.Study:
        """The Optuna study, read from its storage: for ``optuna.visualization`` plots or
        ``trials_dataframe()``.

        Parameters
        ----------
        storage : str, optional
            The storage URL, needed only when :attr:`storage` is a database URL whose
            password it hides (as ``***``).

        Returns
        -------
        optuna.Study
            As the storage holds it now: every trial of the study, including those of other
            invocations and workers.

        Examples
        --------
        >>> result = sweep_from_file("experiments/ml100k_lightfm.search.yaml")  # doctest: +SKIP
        >>> optuna.visualization.plot_optimization_history(result.load_study())  # doctest: +SKIP
        """
        url = storage or self.storage
        if storage is None and _is_rdb(url) and "***" in url:
            raise ValueError(f"study {self.study_name!r}: {url} hides its password; pass the "
                             "full URL as load_study(storage=...)")
        if not _is_rdb(url):
            path = Path(url.removeprefix("journal:")).expanduser()
            if not path.is_file():  # make_storage would create an empty journal
                raise FileNotFoundError(f"study {self.study_name!r}: no journal file {path}")
        return optuna.load_study(study_name=self.study_name, storage=make_storage(url))


@dataclass(frozen=True)
class _WorkerJob:
    data: dict
    source: str
    storage: str
    study: str
    n_trials: int
    timeout: float | None
    parent_run_id: str | None
    seed: int | None
    index: int


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when its launcher dies (even by SIGKILL), so no orphan
    goes on writing to the study; SIGTERM ends its MLflow run KILLED."""
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _optuna_quiet():
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return previous


def _worker_main(job: _WorkerJob) -> None:
    """Entry point of a worker process: load the study, run its share of trials."""

    from recexp.experiment import prepare

    _die_with_parent()
    _optuna_quiet()
    config = parse_search_config(job.data, source=job.source)
    storage = make_storage(job.storage, heartbeat=config.search.heartbeat)
    study = optuna.load_study(study_name=job.study, storage=storage,
                              sampler=make_sampler(config.search.sampler, seed=job.seed),
                              pruner=make_pruner(config.search.pruner))
    prepared = prepare(config.experiment, progress=False)
    objective = Objective(prepared, config, parent_run_id=job.parent_run_id,
                          study_name=job.study, storage=_display_url(job.storage),
                          worker=job.index)
    try:
        study.optimize(objective, n_trials=job.n_trials, timeout=job.timeout, catch=_CATCH)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _shares(n_trials: int, workers: int) -> list[int]:
    return [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]


def _run_workers(config: SweepConfig, *, source: str, url: str, study, n_trials: int,
                 timeout: float | None, workers: int, parent_run_id: str | None,
                 seed: int | None, bar, before: set[int]) -> list[int]:
    """Run ``workers`` spawned processes on the study; returns their exit codes."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    data = config.to_dict()
    procs = []
    for i, share in enumerate(_shares(n_trials, workers)):
        if share == 0:
            continue
        job = _WorkerJob(data=data, source=source, storage=url, study=study.study_name,
                         n_trials=share, timeout=timeout, parent_run_id=parent_run_id,
                         seed=None if seed is None else seed + i, index=i)
        proc = ctx.Process(target=_worker_main, args=(job,), name=f"recexp-sweep-{i}")
        proc.start()
        procs.append(proc)
    try:
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=2.0 / len(procs))
            if bar is not None:
                _update_bar(bar, study, before)
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=60)
        raise
    if bar is not None:
        _update_bar(bar, study, before)
    return [p.exitcode for p in procs]


def _update_bar(bar, study, before: set[int]) -> None:
    trials = [t for t in study.get_trials(deepcopy=False) if t.number not in before]
    done = sum(t.state.is_finished() for t in trials)
    bar.update(max(0, done - bar.n))
    _bar_postfix(bar, study)


def _bar_postfix(bar, study) -> None:
    with contextlib.suppress(ValueError):
        bar.set_postfix_str(f"best {study.best_value:.4f} (trial {study.best_trial.number})")


def _new_trials(study, before: set[int]):
    return [t for t in study.get_trials(deepcopy=False) if t.number not in before]


def sweep(config: SweepConfig, *, n_trials: int | None = None, timeout: float | None = None,
          workers: int = 1, storage: str | None = None, study: str | None = None,
          seed: int | None = None, progress: bool = True, retrain: bool = True,
          track: bool = True, config_path: str | Path | None = None,
          objective_factory=None) -> SweepResult:
    """Run (or resume) an Optuna study for ``config``, tracked in MLflow.

    Parameters
    ----------
    config : SweepConfig
    n_trials : int, optional
        Trials this invocation runs, split over the workers (default ``search.n_trials``).
    timeout : float, optional
        Seconds after which each worker starts no new trial.
    workers : int
        Processes on the one storage; 1 runs the trials in this process.
    storage : str, optional
        Database URL or journal file (default ``<root>/optuna/<study>.journal``).
    study : str, optional
        Study name (default: the config's ``name``); an existing study is resumed.
    seed : int, optional
        Sampler seed (replaces ``search.sampler.seed``); worker ``i`` uses ``seed + i``.
    progress : bool
        A tqdm bar over trials.
    retrain : bool
        Refit the best and the default params on train + valid and test them once.
    track : bool
        MLflow parent and child runs (off: none, e.g. for benchmarks).
    config_path : path, optional
        The YAML file, logged as an artifact.
    objective_factory : callable, optional
        ``(prepared, config, **kwargs) -> objective`` instead of :class:`Objective` (tests);
        in-process only.

    Returns
    -------
    SweepResult
    """

    from recexp.experiment import config_hash, prepare

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    n_trials = config.search.n_trials if n_trials is None else n_trials
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if seed is not None:
        config = dataclasses.replace(config, search=dataclasses.replace(
            config.search, sampler={**config.search.sampler, "seed": seed}))
    seed = config.search.sampler.get("seed")
    study_name = study or config.experiment.name
    url = storage_url(storage, study_name)
    shown = _display_url(url)
    search = config.search
    exp = config.experiment
    started = time.perf_counter()
    previous_verbosity = _optuna_quiet()
    try:
        the_storage = make_storage(url, heartbeat=search.heartbeat)
        the_study = optuna.create_study(
            study_name=study_name, storage=the_storage, load_if_exists=True,
            direction=search.direction, sampler=make_sampler(search.sampler),
            pruner=make_pruner(search.pruner))
        if the_study.direction.name.lower() != search.direction:
            raise ValueError(f"study {study_name!r} in {shown} is being "
                             f"{the_study.direction.name.lower()}d; the config says "
                             f"{search.direction}: use another --study name")
        chash = config_hash(exp) + "-" + _search_hash(search)
        attrs = the_study.user_attrs
        if "recexp.config_hash" not in attrs:
            the_study.set_user_attr("recexp.config_hash", chash)
            the_study.set_user_attr("recexp.metric", search.metric)
            the_study.set_user_attr("recexp.model", config.model.model)
        elif attrs["recexp.config_hash"] != chash:
            warnings.warn(f"study {study_name!r} was started from a different config; its "
                          "earlier trials may not be comparable", stacklevel=2)
        # A resumed study: fail the trials whose process died, then close their runs.
        with _quiet_experimental():
            optuna.storages.fail_stale_trials(the_study)
        if track:
            close_stale_runs(the_study, experiment=exp.name, storage=shown)
        for params in search.enqueue:
            the_study.enqueue_trial(dict(params), skip_if_exists=True)
        # This invocation's trials: all but those already run (queued ones count as ours).
        before = {t.number for t in the_study.get_trials(deepcopy=False)
                  if t.state != optuna.trial.TrialState.WAITING}
        run_cm = (tracking.tracked_run(f"sweep-{study_name}", experiment=exp.name,
                                       tags=_parent_tags(config, study_name, shown, chash))
                  if track else contextlib.nullcontext())
        with run_cm as parent:
            parent_id = parent.info.run_id if parent is not None else None
            if track:
                _log_parent_start(config, the_study, shown, n_trials, workers, timeout,
                                  config_path)
            prepared = prepare(exp, progress=False)
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=n_trials, desc=f"sweep {study_name}", unit="trial")
            try:
                if workers == 1:
                    factory = objective_factory or Objective
                    objective = factory(prepared, config, parent_run_id=parent_id,
                                        study_name=study_name, storage=shown, track=track)
                    callbacks = []
                    if bar is not None:
                        def tick(st, _trial):
                            bar.update(1)
                            _bar_postfix(bar, st)

                        callbacks.append(tick)
                    the_study.optimize(objective, n_trials=n_trials, timeout=timeout,
                                       catch=_CATCH, callbacks=callbacks)
                    codes = [0]
                else:
                    if not track:
                        raise ValueError("workers > 1 always track their trials in MLflow")
                    codes = _run_workers(config, source=str(config_path or "config"),
                                         url=url, study=the_study, n_trials=n_trials,
                                         timeout=timeout, workers=workers,
                                         parent_run_id=parent_id, seed=seed, bar=bar,
                                         before=before)
            finally:
                if bar is not None:
                    bar.close()
            if track:
                close_stale_runs(the_study, experiment=exp.name, storage=shown,
                                 keep=[parent_id] if parent_id else [])
            result = _finish(config, the_study, prepared, before=before, codes=codes,
                             parent_id=parent_id, shown=shown, retrain=retrain, track=track,
                             started=started)
        return result
    finally:
        optuna.logging.set_verbosity(previous_verbosity)


def _search_hash(search: SearchConfig) -> str:
    import hashlib

    text = json.dumps(search.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _parent_tags(config: SweepConfig, study: str, shown: str, chash: str) -> dict[str, str]:
    exp = config.experiment
    tags = {**tracking.environment_tags(threads=exp.threads, reproducible=exp.threads == 1),
            "recexp.kind": "sweep", "recexp.study": study, "recexp.storage": shown,
            "recexp.config_hash": chash, "recexp.model": config.model.model,
            "recexp.label": config.model.label, "recexp.host": socket.gethostname(),
            "recexp.pid": str(os.getpid()),
            "optuna.sampler": str(config.search.sampler.get("kind")),
            "optuna.pruner": config.search.pruner_kind}
    if exp.description:
        tags["mlflow.note.content"] = exp.description
    return tags


def _log_parent_start(config: SweepConfig, study, shown: str, n_trials: int, workers: int,
                      timeout: float | None, config_path) -> None:
    import mlflow

    search = config.search
    mlflow.log_dict(config.to_dict(), "config.yaml")
    if config_path is not None:
        mlflow.log_artifact(str(config_path), "config")
    tracking.log_params({"study": study.study_name, "storage": shown, "n_trials": n_trials,
                         "workers": workers, "timeout": timeout, "metric": search.metric,
                         "direction": search.direction, "model.name": config.model.model,
                         **{f"sampler.{k}": v for k, v in search.sampler.items()},
                         **{f"pruner.{k}": v for k, v in search.pruner.items()},
                         "data.dataset": config.experiment.data.dataset,
                         **tracking.flatten({"split": dict(config.experiment.split),
                                             "validation": dict(config.experiment.validation)}),
                         **{f"default.{k}": v for k, v in
                            _flat_model(config.model.params).items()}})
    mlflow.log_dict({p.name: p.to_dict() for p in search.space}, "search_space.json")


def _finish(config: SweepConfig, study, prepared, *, before: set[int], codes: list[int],
            parent_id: str | None, shown: str, retrain: bool, track: bool,
            started: float) -> SweepResult:
    from optuna.trial import TrialState

    from recexp.experiment import _metric_key

    new = _new_trials(study, before)
    states: dict[str, int] = {}
    for t in new:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    epochs = int(sum(int(t.user_attrs.get("epochs_trained", 0)) for t in new))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best_trial = best_value = None
    best_params: dict[str, Any] = {}
    if complete:
        best = study.best_trial
        best_trial, best_value = best.number, float(best.value)
        best_params = {**dict(config.model.params), **_unflat(best.params)}
    bad = [c for c in codes if c != 0]
    final = None
    if retrain and best_params:
        final = _final(prepared, config, best_params)
    seconds = time.perf_counter() - started
    result = SweepResult(study_name=study.study_name, storage=shown, parent_run_id=parent_id,
                         metric=config.search.metric, direction=config.search.direction,
                         best_value=best_value, best_params=best_params, best_trial=best_trial,
                         states=states, epochs_trained=epochs, seconds=seconds, final=final)
    if track:
        import mlflow

        key = _metric_key(config.search.metric)
        mlflow.log_metrics({f"trials.{s.lower()}": float(n) for s, n in states.items()})
        mlflow.log_metrics({"trials.study_total": float(len(study.trials)),
                            "epochs_trained": float(epochs), "sweep_seconds": seconds})
        if bad:
            mlflow.set_tag("recexp.worker_exit_codes", json.dumps(codes))
        if best_trial is not None:
            mlflow.log_metric(f"best.valid.{key}", best_value)
            mlflow.log_metric("best.trial", float(best_trial))
            tracking.log_params({f"best.{k}": v for k, v in _flat_model(best_params).items()})
        skipped = _log_study_plots(study)
        if skipped:
            mlflow.log_dict(skipped, "plots/skipped.json")
        with tempfile.TemporaryDirectory() as tmp:
            table = study.trials_dataframe()
            path = Path(tmp) / "trials.csv"
            table.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
            if final is not None:
                _log_final(final, config, Path(tmp))
    if bad and not complete:
        raise RuntimeError(f"sweep {study.study_name!r}: workers exited with codes {codes} "
                           "and no trial completed")
    if bad:
        warnings.warn(f"sweep {study.study_name!r}: workers exited with codes {codes}; the "
                      "result covers the trials that finished", stacklevel=3)
    return result


def _log_final(final: FinalResult, config: SweepConfig, tmp: Path) -> None:
    import mlflow

    from recexp.experiment import _metric_key

    for label, summary in (("tuned", final.tuned), ("default", final.default)):
        mlflow.log_metrics({f"test.{label}.{_metric_key(k)}": v for k, v in summary.items()
                            if math.isfinite(v)})
    key = _metric_key(config.search.metric)
    p = final.paired
    mlflow.log_metrics({f"test.diff.{key}": p.diff, "test.paired_t_pvalue": p.t_pvalue,
                        "test.wilcoxon_pvalue": p.wilcoxon_pvalue, "test.paired_users": p.n})
    path = tmp / "per_user_test.parquet"
    table = final.per_user.copy()
    table[Columns.User] = table[Columns.User].astype(str)
    table.to_parquet(path, index=False)
    mlflow.log_artifact(str(path), "final")
    mlflow.log_dict({"metric": config.search.metric, "tuned_params": final.tuned_params,
                     "default_params": final.default_params,
                     "tuned": final.tuned, "default": final.default,
                     "paired": dataclasses.asdict(p)}, "final/comparison.json")


def with_choices(config: SweepConfig, *, sampler: str | None = None,
                 pruner: str | None = None) -> SweepConfig:
    """``config`` with another sampler and/or pruner kind (the command line's choice).

    The config's options are kept when the kind is the same and dropped otherwise (the
    sampler's seed is kept). Raises :class:`ConfigError` for an unknown kind.
    """
    search = config.search
    changes: dict[str, Any] = {}
    if sampler is not None:
        spec = dict(search.sampler) if search.sampler.get("kind") == sampler else \
            {"kind": sampler, **({"seed": search.sampler["seed"]}
                                 if "seed" in search.sampler else {})}
        changes["sampler"] = _parse_sampler(spec, "--sampler")
    if pruner is not None:
        spec = dict(search.pruner) if search.pruner_kind == pruner else {"kind": pruner}
        changes["pruner"] = _parse_pruner(spec, "--pruner", config.experiment)
    if not changes:
        return config
    return dataclasses.replace(config, search=dataclasses.replace(search, **changes))


def sweep_from_file(path: str | Path, *, n_trials: int | None = None,
                    timeout: float | None = None, workers: int = 1,
                    storage: str | None = None, study: str | None = None,
                    sampler: str | None = None, pruner: str | None = None,
                    seed: int | None = None, overrides: Sequence[str] = (),
                    progress: bool = True, retrain: bool = True) -> SweepResult:
    """Load a search config, apply the command line's choices, and :func:`sweep` it.

    ``sampler`` / ``pruner`` name a kind (``tpe``, ``hyperband``, ...): the config's options
    are kept when the kind is the same, dropped otherwise. ``overrides`` are ``--set
    key.path=value`` strings (``search.*`` included). Raises :class:`ConfigError` before any
    work for a bad config or choice.
    """
    config = with_choices(load_search_config(path, overrides=overrides), sampler=sampler,
                          pruner=pruner)
    return sweep(config, n_trials=n_trials, timeout=timeout, workers=workers, storage=storage,
                 study=study, seed=seed, progress=progress, retrain=retrain, config_path=path)
