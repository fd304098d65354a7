"""Experiment configs: frozen dataclasses that YAML files map onto, checked before any work.

A config file is plain YAML; every key is a field below. An unknown key, a wrong type or an
impossible value is a :class:`ConfigError` naming the key path (``models[1].params.loss``) and,
for an unknown key, the nearest valid name. ``--set key.path=value`` overrides any value; list
entries are addressed by position (``models.0.params.epochs=5``) or, for models, by name
(``models.lightfm.params.epochs=5``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "FeaturesConfig",
    "ModelConfig",
    "apply_overrides",
    "load_config",
    "parse_config",
]


TASKS = ("ranking", "ctr")
"""What an experiment can be about (``task:``)."""


class ConfigError(ValueError):
    """A config that cannot be run; the message names the file and key path."""


@dataclass(frozen=True)
class DataConfig:
    """Which data, read how, cleaned how."""

    dataset: str
    """Registry name of the dataset (``recexp data list``), e.g. ``movielens-100k``."""
    path: str | None = None
    """Read the files from this folder instead of locating them."""
    on_bad_lines: str = "error"
    """``error``: stop at the first bad line; ``skip``: skip bad lines and log how many."""
    preprocess: tuple[dict, ...] = ()
    """Steps run in order by :func:`recexp.preprocess.preprocess`, e.g.
    ``[{step: to_implicit, threshold: 4}, {step: k_core, user_k: 5, item_k: 5}]``."""
    options: dict = field(default_factory=dict)
    """Extra keyword arguments for the dataset's loader."""


@dataclass(frozen=True)
class FeaturesConfig:
    """Side features for users and items (see :mod:`recexp.features`)."""

    user: tuple[dict, ...] = ()
    """Builders over the user attribute table, e.g. ``[{kind: multi_hot, column: occupation}]``."""
    item: tuple[dict, ...] = ()
    """Builders over the item attribute table, e.g. ``[{kind: multi_hot, column: genres,
    sep: "|"}]``."""
    identity: bool = True
    """Also give every user and item its own indicator feature (LightFM's default)."""
    normalize: bool = False
    """Scale each feature row to sum to 1."""


@dataclass(frozen=True)
class ModelConfig:
    """One model to train and evaluate."""

    model: str
    """Registered model name, e.g. ``lightfm``, ``most_popular``, ``ease``."""
    name: str | None = None
    """Label of the run (defaults to ``model``); must be unique in the experiment."""
    params: dict = field(default_factory=dict)
    """The model's constructor parameters (flat, JSON values)."""

    @property
    def label(self) -> str:
        return self.name or self.model


@dataclass(frozen=True)
class EvaluationConfig:
    """How test performance is measured."""

    k: tuple[int, ...] = (5, 10, 20)
    """List lengths for the @k metrics."""
    metrics: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "auc",
                                "coverage", "novelty", "popularity")
    """Metric names (see :mod:`recexp.metrics`)."""
    batch_size: int = 2048
    """Users scored at once; bounds memory at ``batch_size * n_items * 4`` bytes."""
    segments: bool = True
    """Also report every metric per test segment (warm, cold users, cold items)."""
    relevance_threshold: float | None = None
    """Test interactions count as relevant only with a rating at or above this."""
    calibration_bins: int = 10
    """Task ``ctr``: equal-count buckets of the predicted probability for the calibration
    table and plot."""


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole experiment: data, split, features, models, evaluation, seeds."""

    name: str
    """MLflow experiment name; every invocation is one parent run in it."""
    data: DataConfig
    """The dataset and its preprocessing."""
    split: dict
    """The test split, e.g. ``{kind: user_ratio, ratio: 0.2, seed: 42}``
    (see :mod:`recexp.split`); for task ``ctr`` a split of the impressions,
    ``{kind: random | ordered, ratio: 0.2, seed: 42}`` (see :mod:`recexp.clicks`)."""
    models: tuple[ModelConfig, ...]
    """Models to compare; each (model, seed) is one child run."""
    task: str = "ranking"
    """``ranking``: recommenders ranked over the catalogue (:mod:`recexp.models`);
    ``ctr``: click models predicting the click probability of impressions
    (:mod:`recexp.models.ctr`, :mod:`recexp.clicks`)."""
    features: FeaturesConfig = FeaturesConfig()
    """Side features; none by default."""
    validation: dict | None = None
    """A validation carve-out from train (same form as ``split``) for per-epoch curves."""
    evaluation: EvaluationConfig = EvaluationConfig()
    """Metrics and list lengths."""
    seeds: tuple[int, ...] = (0,)
    """Model seeds; several seeds give intervals across seeds."""
    threads: int = 1
    """Threads per model; 1 makes LightFM bit-for-bit reproducible."""
    description: str = ""
    """Free text, logged with the parent run."""

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (the same structure as the YAML)."""
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------- building
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _build(tp: Any, value: Any, path: str) -> Any:
    """Turn plain YAML data into ``tp``, checking keys and types."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _build(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path or 'config'}: expected a mapping, got {value!r}")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        for key in value:
            if key not in fields:
                near = difflib.get_close_matches(str(key), fields, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ConfigError(f"{_join(path, key)}: unknown key{hint} "
                                  f"(valid: {', '.join(fields)})")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = _build(hints[name], value[name], _join(path, name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{_join(path, name)}: required key is missing")
        return tp(**kwargs)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            if inner in (int, str) and isinstance(value, inner):
                value = [value]
            else:
                raise ConfigError(f"{path}: expected a list, got {value!r}")
        return tuple(_build(inner, v, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: cannot read a value of type {_type_name(tp)}")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def parse_config(data: Mapping[str, Any], *, source: str = "config") -> ExperimentConfig:
    """Build and check an :class:`ExperimentConfig` from plain data (a parsed YAML file)."""
    try:
        config = _build(ExperimentConfig, data, "")
        _check(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file; any problem is a :class:`ConfigError`
    naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return dict(data)


def load_config(path: str | Path, *, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read a YAML experiment file, apply ``key.path=value`` overrides, build and check it."""
    data = apply_overrides(read_yaml(path), overrides, source=str(path))
    return parse_config(data, source=str(path))


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], *,
                    source: str = "config",
                    dotted: Callable[[list[str]], bool] | None = None) -> dict[str, Any]:
    """A copy of ``data`` with each ``key.path=value`` applied (value parsed as YAML).

    A key that itself holds a dot (a flat param name such as ``model.no_components``) is
    matched whole when the mapping already has it, or wherever ``dotted(path_so_far)`` is
    true (used by sweep configs, whose search space is keyed by flat param names).
    """
    result = _plain(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        parts = key.strip().split(".")
        node: Any = result
        walked: list[str] = []
        i = 0
        while i < len(parts):
            part = parts[i]
            pair = ".".join(parts[i:i + 2])
            if i + 1 < len(parts) and ((dotted is not None and dotted(walked))
                                       or (isinstance(node, dict) and pair in node)):
                part, i = pair, i + 1
            i += 1
            walked.append(part)
            last = i == len(parts)
            where = ".".join(walked)
            if isinstance(node, list):
                index = _list_index(node, part, where, source)
                if last:
                    node[index] = value
                else:
                    node = node[index]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"{source}: --set {key}: {'.'.join(walked[:-1])} is not a "
                                  "mapping or list")
    return result


def _list_index(node: list, part: str, where: str, source: str) -> int:
    if part.isdigit():
        index = int(part)
        if index >= len(node):
            raise ConfigError(f"{source}: --set {where}: only {len(node)} entries")
        return index
    labels = [(e.get("name") or e.get("model")) if isinstance(e, Mapping) else None
              for e in node]
    if part in labels:
        return labels.index(part)
    near = difflib.get_close_matches(part, [lbl for lbl in labels if lbl], n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise ConfigError(f"{source}: --set {where}: no entry named {part!r}{hint}")


# ---------------------------------------------------------------------- semantic checks
def _check(config: ExperimentConfig) -> None:
    """Impossible values fail here, before any data is read."""
    from recexp import datasets
    from recexp.models import get_model_class

    if not config.name.strip():
        raise ConfigError("name: must not be empty")
    try:
        datasets.info(config.data.dataset)
    except KeyError as exc:
        raise ConfigError(f"data.dataset: {exc.args[0]}") from None
    if config.data.on_bad_lines not in ("error", "skip"):
        raise ConfigError(f"data.on_bad_lines: must be 'error' or 'skip', "
                          f"got {config.data.on_bad_lines!r}")
    if config.task not in TASKS:
        near = difflib.get_close_matches(config.task, TASKS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"task: unknown task {config.task!r}{hint} (valid: "
                          f"{', '.join(TASKS)})")
    data_task = datasets.info(config.data.dataset).task
    if config.task == "ctr" and data_task != "ctr":
        click_sets = [n for n in datasets.names() if datasets.info(n).task == "ctr"]
        raise ConfigError(f"data.dataset: {config.data.dataset!r} has no impressions to "
                          f"predict clicks on (its task is {data_task!r}); task 'ctr' needs "
                          f"one of: {', '.join(click_sets)}")
    if not config.models:
        raise ConfigError("models: at least one model is needed")
    labels = [m.label for m in config.models]
    for label in labels:
        if labels.count(label) > 1:
            raise ConfigError(f"models: two models are labelled {label!r}; give one a `name`")
    if config.task == "ctr":
        from recexp.models.ctr import get_click_model as get_class
    else:
        get_class = get_model_class
    for i, model in enumerate(config.models):
        try:
            cls = get_class(model.model)
        except KeyError as exc:
            other = _other_task(model.model, config.task)
            hint = f" ({model.model!r} is a model of task {other!r})" if other else ""
            raise ConfigError(f"models[{i}].model: {exc.args[0]}{hint}") from None
        try:
            cls.from_params(dict(model.params)).check_params()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"models[{i}].params: {exc}") from None
    ev = config.evaluation
    if not ev.k or any(k <= 0 for k in ev.k):
        raise ConfigError(f"evaluation.k: every k must be a positive integer, got {list(ev.k)}")
    if ev.batch_size <= 0:
        raise ConfigError(f"evaluation.batch_size: must be positive, got {ev.batch_size}")
    if not config.seeds:
        raise ConfigError("seeds: at least one seed is needed")
    if config.threads <= 0:
        raise ConfigError(f"threads: must be positive, got {config.threads}")
    if ev.calibration_bins < 1:
        raise ConfigError(f"evaluation.calibration_bins: must be >= 1, got "
                          f"{ev.calibration_bins}")
    if config.task == "ctr":
        _check_clicks(config)
    else:
        _check_parts(config)


def _other_task(name: str, task: str) -> str | None:
    """The task whose registry knows model ``name``, when it is not ``task``."""
    from recexp.models import get_model_class
    from recexp.models.ctr import get_click_model

    for other, get in (("ranking", get_model_class), ("ctr", get_click_model)):
        if other != task:
            try:
                get(name)
            except KeyError:
                continue
            return other
    return None


def _check_clicks(config: ExperimentConfig) -> None:
    """Task ``ctr``: the ranking-only parts must be left out, the splits must be row splits."""
    from recexp.clicks import check_row_split

    default = ExperimentConfig(name="-", data=config.data, split={}, models=())
    unused = [("data.preprocess", config.data.preprocess != ()),
              ("features", config.features != default.features),
              ("evaluation.k", config.evaluation.k != default.evaluation.k),
              ("evaluation.metrics", config.evaluation.metrics != default.evaluation.metrics),
              ("evaluation.segments", config.evaluation.segments != default.evaluation.segments),
              ("evaluation.relevance_threshold",
               config.evaluation.relevance_threshold is not None)]
    for where, given in unused:
        if given:
            raise ConfigError(f"{where}: not used by task 'ctr' (click models read every "
                              "impression's hashed features and always report roc_auc, "
                              "log_loss, ctr and mean_prediction); remove it")
    for where, spec in (("split", config.split), ("validation", config.validation)):
        if spec is None:
            continue
        try:
            check_row_split(dict(spec))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _check_parts(config: ExperimentConfig) -> None:
    """Hand each part to the module that owns it, so its own checks run now, not mid-run."""
    from recexp.features import make_builder
    from recexp.metrics import _check_metrics
    from recexp.preprocess import Pipeline
    from recexp.split import make_splitter

    parts = [("split", lambda: make_splitter(dict(config.split)))]
    if config.validation is not None:
        parts.append(("validation", lambda: make_splitter(dict(config.validation))))
    parts.append(("data.preprocess", lambda: Pipeline(list(config.data.preprocess))))
    for side in ("user", "item"):
        for i, entry in enumerate(getattr(config.features, side)):
            parts.append((f"features.{side}[{i}]",
                          lambda entry=entry: make_builder(dict(entry))))
    parts.append(("evaluation.metrics", lambda: _check_metrics(config.evaluation.metrics)))
    for where, build in parts:
        try:
            build()
        except (TypeError, ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise ConfigError(f"{where}: {message}") from None
