"""Configs fail before any work, naming the key path; overrides reach any value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recexp.config import ConfigError, apply_overrides, load_config, parse_config

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))
EXPERIMENTS = [p for p in EXPERIMENTS if not p.name.endswith(".search.yaml")]

BASE = {
    "name": "t",
    "data": {"dataset": "movielens-100k"},
    "split": {"kind": "user_ratio", "ratio": 0.2, "seed": 1},
    "models": [{"model": "most_popular"}, {"name": "lfm", "model": "lightfm",
                                           "params": {"epochs": 3}}],
}


def with_(path: str, value):
    return apply_overrides(BASE, [f"{path}={yaml.safe_dump(value).strip()}"]
                           if not isinstance(value, str) else [f"{path}={value}"])


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path):
    config = load_config(path)
    assert config.seeds and config.models


def test_defaults_and_round_trip():
    config = parse_config(BASE)
    assert config.evaluation.k == (5, 10, 20) and config.threads == 1
    assert parse_config(config.to_dict()) == config


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({**BASE, "seed": [1]}, "seed: unknown key; did you mean 'seeds'?"),
        ({**BASE, "data": {"dataset": "movielens-100k", "preproces": []}},
         "data.preproces: unknown key; did you mean 'preprocess'?"),
        ({**BASE, "models": [{"model": "lightfm", "parms": {}}]},
         "models[0].parms: unknown key; did you mean 'params'?"),
        ({**BASE, "seeds": "zero"}, "seeds: expected a list"),
        ({**BASE, "threads": 0}, "threads: must be positive"),
        ({**BASE, "evaluation": {"k": [10, -1]}},
         "evaluation.k: every k must be a positive integer"),
        ({**BASE, "data": {"dataset": "movielens-10k"}}, "did you mean 'movielens-100k'"),
        ({**BASE, "models": [{"model": "lightfn"}]}, "models[0].model: unknown model 'lightfn'"),
        ({**BASE, "models": [{"model": "lightfm", "params": {"no_component": 3}}]},
         "no_components"),
        ({**BASE, "models": [{"model": "lightfm", "params": {"loss": "warpp"}}]}, "warpp"),
        ({**BASE, "models": [{"model": "random"}, {"model": "random"}]}, "labelled 'random'"),
        ({**BASE, "split": {"kind": "user_ration"}}, "split: unknown split kind 'user_ration'"),
        ({**BASE, "split": {"kind": "user_ratio", "ratio": 1.5}}, "split:"),
        ({**BASE, "data": {"dataset": "movielens-100k", "preprocess": [{"step": "kcore"}]}},
         "data.preprocess:"),
        ({**BASE, "features": {"item": [{"kind": "multihot", "column": "genres"}]}},
         "features.item[0]:"),
        ({**BASE, "evaluation": {"metrics": ["ndgc"]}}, "did you mean 'ndcg'"),
        ({k: v for k, v in BASE.items() if k != "split"}, "split: required key is missing"),
    ],
)
def test_bad_configs_name_the_key(data, words):
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="exp.yaml")
    assert str(info.value).startswith("exp.yaml: ")
    assert words in str(info.value)


def test_overrides_by_path_index_and_label():
    data = apply_overrides(BASE, ["split.ratio=0.3", "models.1.params.epochs=7",
                                  "models.lfm.params.loss=bpr", "seeds=[4, 5]"])
    config = parse_config(data)
    assert config.split["ratio"] == 0.3 and config.seeds == (4, 5)
    assert config.models[1].params == {"epochs": 7, "loss": "bpr"}
    assert BASE["split"]["ratio"] == 0.2  # the input is not modified


def test_bad_overrides():
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides(BASE, ["seeds"])
    with pytest.raises(ConfigError, match="no entry named 'lfn'; did you mean 'lfm'"):
        apply_overrides(BASE, ["models.lfn.params.epochs=3"])
    with pytest.raises(ConfigError, match="only 2 entries"):
        apply_overrides(BASE, ["models.5.params.epochs=3"])


def test_load_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
