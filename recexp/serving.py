"""Recommendation service: a fitted model bundled with what serving needs, saved without pickle,
logged as an MLflow pyfunc model and served over REST by ``mlflow models serve``.

A :class:`RecommenderBundle` holds

- the fitted :class:`~recexp.models.base.Recommender` (its own JSON + ``.npz`` format, with the
  user and item id maps and the training interactions for ``exclude_seen``);
- a :class:`UserFeatureEncoder` when the model scores users from user features (LightFM with
  ``use_features`` ``"both"`` or ``"user"``): the fitted feature builders' state as JSON (the
  categories of a multi-hot, the edges of buckets, a TF-IDF vocabulary and idf) and where each
  feature sits in the model's user feature matrix, so a new user's raw attributes become a
  feature row;
- item popularity (training interactions per item), the fallback for users nobody knows;
- the experiment config (secrets removed) and the pseudonymisation settings, if user ids were
  pseudonymised for training: the environment variable that holds the key and the number of
  digits, **never the key**.

Requests are tables with a ``user_id`` column (strings: the ids as the client knows them) and,
for hybrid models, optional raw attribute columns (``occupation``, ``age``, ...). Each user
gets up to ``k`` rows ``user_id, item_id, score, rank, fallback, reason``:

=====================  ========  =============================================================
reason                 fallback  the user ...
=====================  ========  =============================================================
``known_user``         False     is in the training id map: the model's own top-k (the same
                                 list as in-process :meth:`Recommender.recommend`)
``user_features``      False     is unknown; scored from the given attributes alone (LightFM:
                                 the sum of their feature embeddings and biases)
``no_features``        True      is unknown and came without attributes: most popular items
``unknown_features``   True      is unknown and none of the given attribute values was seen in
                                 training: most popular items
=====================  ========  =============================================================

Bad requests raise :class:`RequestError` (a ``ValueError``) in process; through MLflow they
become ``MlflowException`` with ``INVALID_PARAMETER_VALUE``, which the scoring server answers
with HTTP 400 and the message. A service that cannot work (the pseudonymisation key is not set)
raises :class:`ServiceConfigError` when it is loaded, so a server fails at start-up, not per
request.

**The request table is checked by recexp alone**, in process, through ``mlflow.pyfunc`` and
over REST. The logged signature declares the output columns and the params ``k`` and
``exclude_seen``, but *no input columns*: MLflow enforces a declared input schema before
``predict`` runs, and that enforcement drops the columns the schema does not name (with a log
warning; no signature form or setting makes it refuse them, and a type-hinted ``predict`` would
narrow the REST protocol to ``{"inputs": ...}``). Without an input schema the request reaches
:meth:`RecommenderBundle.recommend` whole: an undeclared column is a 400 naming it and the
accepted ones, a missing ``user_id`` a 400 with a hint, and attribute values are typed there
(numbers written as text are read as numbers). The request columns and their types are in the
model's metadata (``recexp_inputs``). One consequence: a CSV body is typed by pandas, so ids
that look like numbers lose leading zeros; send such ids as JSON strings.

**Error bodies do not quote the request.** User ids are sensitive here (pseudonymised for
training), and MLflow's scoring server prefixes the message of every error raised during
prediction with the request table (``Failed to predict data '<table>'``). Refusals raised by
this module keep their message as written, and the messages name rows and columns, never id
values. MLflow's own refusals, made before recexp code runs, still quote what they got: a
wrongly typed param (``"k": "five"``) is prefixed with the request table, and a body that is
not JSON is echoed; nothing in a model can reach those.

The pyfunc model is logged *from code* (MLflow's models-from-code): the logged
``recexp_service.py`` imports :func:`make_pyfunc_model` from this module, and the fitted state
travels as the bundle folder in the model's artifacts. Nothing is pickled, and MLflow 3 refuses
to unpickle models by default anyway. Serving needs ``recexp`` importable, which
``--env-manager local`` in the project's environment provides.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.models.base import Recommender, iter_batches, top_k

__all__ = [
    "MAX_K",
    "MAX_USERS",
    "REASONS",
    "Pseudonym",
    "RecommenderBundle",
    "RequestError",
    "ServerProcess",
    "ServiceConfigError",
    "UserFeatureEncoder",
    "log_pyfunc",
    "make_pyfunc_model",
    "recommend_cli",
    "save_pyfunc",
    "serve",
    "server_command",
    "start_server",
]

MAX_K = 1000
"""Longest list a service returns (``k`` above it, or above the catalogue size, is refused)."""
MAX_USERS = 10_000
"""Most users one request may ask for."""
REASONS = ("known_user", "user_features", "no_features", "unknown_features")
"""Values of the ``reason`` column (see the module docstring)."""

_FORMAT = 1
_BUNDLE_JSON = "bundle.json"
_ARRAYS = "arrays.npz"
_MODEL_DIR = "model"
_CODE_FILE = "recexp_service.py"
_SECRET_WORDS = frozenset({"key", "secret", "password", "passwd", "token", "credential",
                           "credentials", "apikey"})
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
# The models-from-code entry point logged with every model: MLflow runs it to get the
# PythonModel, whose load_context reads the bundle from the model's artifacts.
_SERVICE_CODE = '''"""recexp recommendation service: MLflow models-from-code entry point."""
from mlflow.models import set_model

from recexp.serving import make_pyfunc_model

set_model(make_pyfunc_model())
'''


class RequestError(ValueError):
    """A request the service cannot answer: the message says what was wrong and where."""


class ServiceConfigError(RuntimeError):
    """The service is misconfigured (not the client's fault), e.g. the key is not set."""


# ---------------------------------------------------------------------------------- privacy
@dataclass(frozen=True)
class Pseudonym:
    """How user ids were pseudonymised for training: where the key lives, never the key.

    Attributes
    ----------
    key_env : str
        Environment variable that holds the HMAC key (the same as at training).
    digits : int
        Hex digits kept of each pseudonym.
    """

    key_env: str = "RECEXP_PSEUDONYM_KEY"
    digits: int = 16

    @classmethod
    def from_steps(cls, steps: Sequence[Mapping[str, Any]] | None) -> Pseudonym | None:
        """The settings of the ``pseudonymize`` preprocessing step that renamed ``user_id``.

        ``steps`` are preprocessing steps as in a config (``{"step": "pseudonymize", ...}``);
        None when no step pseudonymised user ids.
        """
        from recexp.preprocess import DEFAULT_KEY_ENV, PSEUDONYM_DIGITS

        found = None
        for step in steps or ():
            if step.get("step") != "pseudonymize":
                continue
            columns = step.get("columns", (Columns.User,))
            columns = (columns,) if isinstance(columns, str) else tuple(columns)
            if Columns.User in columns:
                if found is not None:
                    raise ValueError("user_id is pseudonymised twice in the preprocessing "
                                     "steps; a service cannot invert a double hash")
                found = cls(key_env=step.get("key_env", DEFAULT_KEY_ENV),
                            digits=int(step.get("digits", PSEUDONYM_DIGITS)))
        return found

    def key(self) -> bytes:
        """The key from the environment; :class:`ServiceConfigError` naming the variable when
        it is unset or empty (the message never contains a key)."""
        value = os.environ.get(self.key_env)
        if not value:
            state = "is empty" if value == "" else "is not set"
            raise ServiceConfigError(
                f"this model was trained on pseudonymised user ids: the environment variable "
                f"{self.key_env} {state}. Set it to the pseudonymisation key used for training "
                "(the key is never stored with the model)")
        return value.encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        return {"key_env": self.key_env, "digits": self.digits}


def _names_a_secret(key: object) -> bool:
    """``key``, ``api_token``, ``db.password``: the last word names a secret (``key_env`` and
    ``token_pattern`` do not)."""
    words = [w for w in _WORD_SPLIT.split(str(key).lower()) if w]
    return bool(words) and words[-1] in _SECRET_WORDS


def _redacted(tree: Any) -> Any:
    """``tree`` (plain JSON data) without entries whose key names a secret."""
    if isinstance(tree, Mapping):
        return {str(k): _redacted(v) for k, v in tree.items() if not _names_a_secret(k)}
    if isinstance(tree, (list, tuple)):
        return [_redacted(v) for v in tree]
    return _jsonable(tree)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _refuse_secrets(text: str, pseudonym: Pseudonym | None) -> None:
    """Raise if ``text`` (about to be written) contains the value of a key variable."""
    from recexp.preprocess import DEFAULT_KEY_ENV

    names = {DEFAULT_KEY_ENV} | ({pseudonym.key_env} if pseudonym else set())
    for name in sorted(names):
        value = os.environ.get(name)
        if value and len(value) >= 4 and value in text:
            raise ValueError(f"refusing to save: the bundle would contain the value of "
                             f"${name} (a secret); remove it from the config")


# ---------------------------------------------------------------------------------- features
def _input_type(builder) -> str:
    return "double" if builder.kind == "bucket" else "string"


def _builder_to_json(builder) -> dict[str, Any]:
    """A fitted builder as plain data: options plus the learned state (no pickle)."""
    from recexp.features import Buckets, Hashed, MultiHot, TfIdf

    state: dict[str, Any] = {"n_features": int(builder.n_features_)}
    if isinstance(builder, MultiHot):
        state["categories"] = [str(c) for c in builder.categories_]
    elif isinstance(builder, Buckets):
        state["edges"] = [float(e) for e in builder.edges_]
    elif isinstance(builder, TfIdf):
        vec = builder.vectorizer_
        state["vocabulary"] = {str(t): int(i) for t, i in vec.vocabulary_.items()}
        state["idf"] = [float(x) for x in vec.idf_]
    elif not isinstance(builder, Hashed):
        raise TypeError(f"cannot save a {type(builder).__name__} feature builder")
    if not isinstance(builder, Hashed):
        state["feature_names"] = [str(n) for n in builder.feature_names_]
    return {"kind": builder.kind, "params": _jsonable(builder.get_params()), "state": state}


def _builder_from_json(entry: Mapping[str, Any]):
    """The fitted builder :func:`_builder_to_json` describes."""
    from sklearn.feature_extraction import FeatureHasher

    from recexp.features import make_builder

    builder = make_builder({"kind": entry["kind"], **entry["params"]})
    state = entry["state"]
    builder.n_features_ = int(state["n_features"])
    if "feature_names" in state:
        builder.feature_names_ = np.asarray(state["feature_names"], dtype=object)
    kind = entry["kind"]
    if kind == "multi_hot":
        builder.categories_ = np.asarray(state["categories"], dtype=object)
    elif kind == "bucket":
        builder.edges_ = np.asarray(state["edges"], dtype=np.float64)
    elif kind == "tfidf":
        # The builder's own options; vocabulary and idf are the learned state.
        vec = builder.new_vectorizer()
        vec.vocabulary_ = {t: int(i) for t, i in state["vocabulary"].items()}
        vec.idf_ = np.asarray(state["idf"], dtype=np.float64)
        builder.vectorizer_ = vec
    elif kind == "hash":
        builder.hasher_ = FeatureHasher(n_features=builder.n_features, input_type="string",
                                        alternate_sign=builder.alternate_sign, dtype=np.float32)
    else:
        raise ValueError(f"unknown feature builder kind {kind!r} in the bundle")
    return builder


class UserFeatureEncoder:
    """Raw user attributes -> rows of a model's user feature matrix, for users never seen.

    The builders are the fitted :mod:`recexp.features` builders of the experiment's user side;
    ``maps[b]`` sends builder ``b``'s output column to the model's feature column (``-1``: a
    feature no training user had, which the model has no embedding for).

    The rows are laid out as :class:`~recexp.dataset.Dataset` lays out a *cold* user's row
    (known, no interactions) and LightFM scores it: side features only (a new user has no
    identity feature), and with ``normalize`` each value divided by the row's L1 norm counting
    the identity feature's 1 when ``identity`` is on, as the Dataset normalises the full row
    before the model drops a cold user's identity entry. So a new user with the attributes of a
    known cold user is scored exactly like that user.

    Parameters
    ----------
    builders : list of fitted FeatureBuilder
    maps : list of np.int32 arrays, one of shape [builder.n_features_] per builder
    n_features : int
        Columns of the model's user feature matrix (identity columns included).
    identity, normalize : bool
        The Dataset's ``identity_features`` and ``normalize_features``.
    """

    def __init__(self, builders: list, maps: list[np.ndarray], *, n_features: int,
                 identity: bool, normalize: bool) -> None:
        if len(builders) != len(maps):
            raise ValueError("one column map per builder")
        self.builders = builders
        self.maps = [np.asarray(m, dtype=np.int32) for m in maps]
        self.n_features = int(n_features)
        self.identity = bool(identity)
        self.normalize = bool(normalize)

    # ------------------------------------------------------------------ building
    @classmethod
    def fit(cls, spec: Sequence[Mapping[str, Any]], users: pd.DataFrame,
            dataset: Dataset) -> UserFeatureEncoder:
        """Fit the user-side builders of ``spec`` on ``users`` and line them up with ``dataset``.

        Parameters
        ----------
        spec : list of builder specs
            The ``user`` entries of the feature spec the Dataset was built with.
        users : DataFrame
            The users attribute table the Dataset's features were built from (the same rows:
            builders learn categories, bins and vocabularies from it).
        dataset : Dataset
            The training Dataset (or its parent: they share the features).

        Raises
        ------
        ValueError
            The Dataset has no user side features, or a feature of the Dataset is not produced
            by these builders on this table (another table or spec than at training).
        """
        from recexp.features import make_builder

        if dataset.user_side is None:
            raise ValueError("the Dataset has no user side features to encode")
        builders = [make_builder(entry, where=f"user feature {k}")
                    for k, entry in enumerate(spec)]
        for k, builder in enumerate(builders):
            try:
                builder.fit(users)
            except ValueError as err:
                raise ValueError(f"users table, user feature {k} ({builder.kind} on "
                                 f"{builder.column!r}): {err}") from err
        side_names = np.asarray(dataset.user_side.names, dtype=object)
        n_features = len(dataset.user_feature_names)
        offset = n_features - len(side_names)
        column_of = pd.Index(side_names)
        maps, covered = [], np.zeros(len(side_names), dtype=bool)
        for builder in builders:
            if builder.kind == "hash":
                stem = builder.prefix + ":"
                mapping = np.full(builder.n_features_, -1, dtype=np.int32)
                for pos, name in enumerate(side_names):
                    if name.startswith(stem) and name[len(stem):].isdigit():
                        col = int(name[len(stem):])
                        if col < builder.n_features_:
                            mapping[col] = offset + pos
                            covered[pos] = True
            else:
                found = column_of.get_indexer(builder.get_feature_names_out())
                covered[found[found >= 0]] = True
                mapping = np.where(found >= 0, found + offset, -1).astype(np.int32)
            maps.append(mapping)
        if not covered.all():
            missing = side_names[~covered][:5].tolist()
            raise ValueError(
                f"{int((~covered).sum())} user feature(s) of the Dataset are not produced by the "
                f"feature spec on this users table, e.g. {missing}; give the same spec and the "
                "same users table the Dataset was built from")
        return cls(builders, maps, n_features=n_features,
                   identity=bool(dataset.identity_features),
                   normalize=bool(dataset.normalize_features))

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {"builders": [_builder_to_json(b) for b in self.builders],
                "n_features": self.n_features, "identity": self.identity,
                "normalize": self.normalize}

    def arrays(self) -> dict[str, np.ndarray]:
        """The column maps, stored sparsely (a hashing builder has 2**20 columns)."""
        out = {}
        for b, mapping in enumerate(self.maps):
            src = np.flatnonzero(mapping >= 0).astype(np.int32)
            out[f"features/{b}/src"] = src
            out[f"features/{b}/dst"] = mapping[src]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
                  ) -> UserFeatureEncoder:
        builders = [_builder_from_json(e) for e in data["builders"]]
        maps = []
        for b, builder in enumerate(builders):
            mapping = np.full(builder.n_features_, -1, dtype=np.int32)
            mapping[arrays[f"features/{b}/src"]] = arrays[f"features/{b}/dst"]
            maps.append(mapping)
        return cls(builders, maps, n_features=data["n_features"], identity=data["identity"],
                   normalize=data["normalize"])

    # ------------------------------------------------------------------ use
    @property
    def input_columns(self) -> dict[str, str]:
        """Raw attribute column -> MLflow type (``"double"`` for buckets, else ``"string"``)."""
        out: dict[str, str] = {}
        for builder in self.builders:
            for column in builder.columns:
                kind = _input_type(builder)
                # A column read by a bucket and by a categorical builder: numbers as text work
                # for both, text does not work for buckets.
                out[column] = "string" if out.get(column, kind) != kind else kind
        return out

    def transform(self, table: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray]:
        """Feature rows of raw attribute rows.

        Parameters
        ----------
        table : DataFrame
            Any subset of :attr:`input_columns` (an absent column counts as missing).

        Returns
        -------
        rows : float32 csr_matrix of shape [len(table), n_features]
        given : bool array of shape [len(table)]
            Whether the row had any attribute value at all.

        Raises
        ------
        RequestError
            A value a builder cannot read (e.g. text in a numeric column).
        """
        n = len(table)
        columns = list(self.input_columns)
        present = [c for c in columns if c in table.columns]
        given = (table[present].notna().to_numpy().any(axis=1) if present
                 else np.zeros(n, dtype=bool))
        full = pd.DataFrame({c: (table[c].to_numpy(copy=True) if c in table.columns
                                 else np.full(n, None, dtype=object)) for c in columns})
        rows_parts, cols_parts, vals_parts = [], [], []
        for builder, mapping in zip(self.builders, self.maps, strict=True):
            try:
                block = sp.csr_matrix(builder.transform(full))
            except ValueError as err:
                raise RequestError(f"user features: {err}") from None
            coo = block.tocoo()
            cols = mapping[coo.col]
            keep = cols >= 0
            rows_parts.append(coo.row[keep])
            cols_parts.append(cols[keep])
            vals_parts.append(coo.data[keep].astype(np.float32))
        rows = np.concatenate(rows_parts) if rows_parts else np.empty(0, np.int64)
        cols = np.concatenate(cols_parts) if cols_parts else np.empty(0, np.int32)
        vals = np.concatenate(vals_parts) if vals_parts else np.empty(0, np.float32)
        vals[~given[rows]] = 0.0  # a row without any attribute is not encoded at all
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n, self.n_features),
                               dtype=np.float32)
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
        if self.normalize and matrix.nnz:
            matrix = self._normalized(matrix)
        return matrix, given

    def _normalized(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        # Dataset._normalize_l1 on the row with its identity entry (1.0, stored first), summed
        # in float64 in storage order, then each float32 value divided: the same numbers.
        row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        weights = np.abs(matrix.data).astype(np.float64)
        if self.identity:
            n = matrix.shape[0]
            row_of = np.concatenate([np.arange(n), row_of])
            weights = np.concatenate([np.ones(n), weights])
        norms = np.bincount(row_of, weights=weights, minlength=matrix.shape[0])
        norms[norms == 0] = 1.0
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
        out = matrix.copy()
        out.data = (matrix.data / norms[rows]).astype(np.float32)
        return out


# ---------------------------------------------------------------------------------- scoring
def _uses_user_features(model: Recommender) -> bool:
    from recexp.models.lightfm import LightFMRecommender

    return isinstance(model, LightFMRecommender) and model.use_features in ("both", "user")


def _feature_scorer(model: Recommender):
    """``scores(rows)`` for feature rows of unseen users, or None if the model cannot.

    LightFM: the user representation is ``[rows @ user_embeddings, rows @ user_biases, 1]``,
    the layout of ``user_repr_``, times the cached item representations, exactly as the model
    scores a known cold user.
    """
    if not _uses_user_features(model):
        return None
    lfm = model.lightfm_
    embeddings = np.asarray(lfm.user_embeddings, dtype=np.float32)
    biases = np.asarray(lfm.user_biases, dtype=np.float32)
    items = model.item_repr_
    d = embeddings.shape[1]

    def scores(rows: sp.csr_matrix) -> np.ndarray:
        rep = np.empty((rows.shape[0], d + 2), dtype=np.float32)
        rep[:, :d] = np.asarray(rows @ embeddings, dtype=np.float32)
        rep[:, d] = np.asarray(rows @ biases, dtype=np.float32)
        rep[:, d + 1] = 1.0
        return rep @ items.T

    return scores


def _recexp_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("recexp")
    except metadata.PackageNotFoundError:
        return "unknown"


def _nearest(word: str, options: Sequence[str]) -> str:
    near = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


class RecommenderBundle:
    """A fitted recommender with everything a service needs; saved as JSON + ``.npz``.

    Build one with :meth:`from_training`; :meth:`save` / :meth:`load` a folder;
    :meth:`recommend` answers requests. Loading caches what every request needs (the model's
    item representations, popularity order, the id lookup), so a request costs one matrix
    product per batch of users.

    Parameters
    ----------
    model : Recommender
        Fitted, and saveable (``model.save``).
    encoder : UserFeatureEncoder, optional
        For a model that scores users from user features.
    popularity : np.float32 array of shape [n_items], optional
        Training interactions per item; counted from ``model.seen_`` when left out.
    config : dict, optional
        The experiment config (plain data); entries naming secrets are dropped.
    pseudonym : Pseudonym, optional
        Set when the model's user ids are pseudonyms: requests carry raw ids, hashed here.
    max_k, max_users : int
        Request limits.
    """

    def __init__(self, model: Recommender, *, encoder: UserFeatureEncoder | None = None,
                 popularity: np.ndarray | None = None, config: Mapping | None = None,
                 pseudonym: Pseudonym | None = None, max_k: int = MAX_K,
                 max_users: int = MAX_USERS) -> None:
        if not model.is_fitted:
            raise ValueError(f"{type(model).__name__} is not fitted")
        self.model = model
        self.encoder = encoder
        self.config = _redacted(dict(config or {}))
        self.pseudonym = pseudonym
        self.max_k = int(max_k)
        self.max_users = int(max_users)
        n_items = model.n_items
        if popularity is None:
            popularity = np.bincount(model.seen_.indices, minlength=n_items)
        self.popularity = np.asarray(popularity, dtype=np.float32)
        if self.popularity.shape != (n_items,):
            raise ValueError(f"popularity has shape {self.popularity.shape}, "
                             f"expected ({n_items},)")
        # Ties go to the lower item index, as in top_k: the fallback list is MostPopular's.
        self._popular = np.argsort(-self.popularity, kind="stable").astype(np.int32)
        self._scorer = _feature_scorer(model) if encoder is not None else None
        if encoder is not None and self._scorer is None:
            raise ValueError(f"{type(model).__name__} does not score users from user features; "
                             "build the bundle without an encoder")
        if encoder is not None:
            expected = model.lightfm_.user_embeddings.shape[0]
            if encoder.n_features != expected:
                raise ValueError(f"the encoder makes {encoder.n_features} user feature columns "
                                 f"but the model has {expected}: another Dataset than the "
                                 "model's")
        # A dict: a request of a few ids costs microseconds, not a pandas Index's overhead.
        self._lookup = {str(v): i for i, v in enumerate(model.users_.ids.tolist())}
        if len(self._lookup) != len(model.users_):
            raise ValueError("two user ids of the model have the same string form")
        self._key: bytes | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_training(cls, model: Recommender, source: Any = None, *,
                      config: Any = None, feature_spec: Sequence[Mapping] | None = None,
                      users: pd.DataFrame | None = None, pseudonym: Pseudonym | None = None,
                      max_k: int = MAX_K, max_users: int = MAX_USERS) -> RecommenderBundle:
        """The bundle of a model fitted in an experiment.

        Parameters
        ----------
        model : Recommender
            Fitted on (a split of) ``source``'s Dataset.
        source : Dataset or experiment.Prepared, optional
            The training Dataset, or anything with a ``.dataset`` (and optionally a
            ``.user_table``: the users attribute table), such as
            :class:`recexp.experiment.Prepared`. Needed only for a model that scores users
            from user features.
        config : ExperimentConfig or dict, optional
            Stored (secrets dropped); its ``features.user`` spec and its ``pseudonymize``
            preprocessing step are used when ``feature_spec`` / ``pseudonym`` are not given.
        feature_spec : list of builder specs, optional
            The user side of the feature spec.
        users : DataFrame, optional
            The users attribute table the features were built from (default
            ``source.user_table``).
        pseudonym : Pseudonym, optional
            Pseudonymisation of user ids at training.

        Raises
        ------
        ValueError
            A hybrid model whose user features cannot be rebuilt from what was given.
        """
        cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
        dataset = getattr(source, "dataset", source)
        if users is None and isinstance(getattr(source, "user_table", None), pd.DataFrame):
            users = source.user_table
        if feature_spec is None:
            feature_spec = list((cfg.get("features") or {}).get("user") or [])
        if pseudonym is None:
            pseudonym = Pseudonym.from_steps((cfg.get("data") or {}).get("preprocess"))
        encoder = None
        if _uses_user_features(model) and dataset is not None and dataset.user_side is not None:
            if not feature_spec:
                raise ValueError(
                    "the model scores users from user features, but no user feature spec was "
                    "given (feature_spec=... or config.features.user): new users could not be "
                    "encoded")
            if users is None:
                raise ValueError(
                    "the model scores users from user features: pass the users attribute table "
                    "the features were built from (users=...), so new users' attributes can be "
                    "encoded the same way")
            if model.lightfm_.user_embeddings.shape[0] != len(dataset.user_feature_names):
                raise ValueError("the model was not trained on this Dataset's user features")
            encoder = UserFeatureEncoder.fit(feature_spec, users, dataset)
        return cls(model, encoder=encoder, config=cfg, pseudonym=pseudonym, max_k=max_k,
                   max_users=max_users)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the bundle to folder ``path``: ``bundle.json``, ``arrays.npz``, ``model/``."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / _MODEL_DIR)
        meta = {"format": _FORMAT, "recexp_version": _recexp_version(),
                "model": {"name": self.model.name,
                          "class": f"{type(self.model).__module__}."
                                   f"{type(self.model).__qualname__}"},
                "n_users": len(self.model.users_), "n_items": self.model.n_items,
                "limits": {"max_k": self.max_k, "max_users": self.max_users},
                "pseudonym": None if self.pseudonym is None else self.pseudonym.to_json(),
                "features": None if self.encoder is None else self.encoder.to_json(),
                "config": self.config}
        text = json.dumps(meta, indent=2, sort_keys=True)
        _refuse_secrets(text, self.pseudonym)
        arrays = {"popularity": self.popularity}
        if self.encoder is not None:
            arrays.update(self.encoder.arrays())
        np.savez(folder / _ARRAYS, **arrays)
        (folder / _BUNDLE_JSON).write_text(text)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> RecommenderBundle:
        """Read a bundle written by :meth:`save` (``allow_pickle=False`` throughout)."""
        folder = Path(path)
        meta = json.loads((folder / _BUNDLE_JSON).read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{folder}: unsupported bundle format {meta.get('format')!r}")
        # Importing the model's module registers its class, even where `recexp.models` comes
        # out as a namespace package (a stale editable install); only recexp's own modules.
        module = str(meta["model"]["class"]).rpartition(".")[0]
        if module.startswith("recexp."):
            importlib.import_module(module)
        model = Recommender.load(folder / _MODEL_DIR)
        with np.load(folder / _ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        encoder = (None if meta["features"] is None
                   else UserFeatureEncoder.from_json(meta["features"], arrays))
        pseudonym = None if meta["pseudonym"] is None else Pseudonym(**meta["pseudonym"])
        limits = meta.get("limits", {})
        return cls(model, encoder=encoder, popularity=arrays["popularity"],
                   config=meta.get("config"), pseudonym=pseudonym,
                   max_k=limits.get("max_k", MAX_K), max_users=limits.get("max_users", MAX_USERS))

    # ------------------------------------------------------------------ requests
    @property
    def input_columns(self) -> dict[str, str]:
        """Request columns and their MLflow types: ``user_id`` then the raw attributes."""
        out = {Columns.User: "string"}
        if self.encoder is not None:
            out.update(self.encoder.input_columns)
        return out

    def check_ready(self) -> None:
        """Raise :class:`ServiceConfigError` if requests cannot be answered (no key)."""
        if self.pseudonym is not None:
            self._key = self.pseudonym.key()

    def signature(self):
        """The MLflow ``ModelSignature``: output columns and params ``k`` and ``exclude_seen``.

        No input schema: MLflow would drop undeclared request columns before :meth:`recommend`
        could refuse them (see the module docstring); :attr:`input_columns` describes the
        request instead, and is logged in the model's metadata as ``recexp_inputs``.
        """
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

        item_kind = "long" if np.issubdtype(self.model.items_.ids.dtype, np.integer) else "string"
        outputs = [ColSpec("string", Columns.User), ColSpec(item_kind, Columns.Item),
                   ColSpec("float", Columns.Score), ColSpec("integer", Columns.Rank),
                   ColSpec("boolean", "fallback"), ColSpec("string", "reason")]
        params = [ParamSpec("k", "long", 10), ParamSpec("exclude_seen", "boolean", True)]
        return ModelSignature(outputs=Schema(outputs), params=ParamSchema(params))

    def _request(self, requests: Any) -> tuple[pd.DataFrame | None, list]:
        """The request table (None for a plain list of ids), attributes typed, and its raw user
        id values."""
        if isinstance(requests, (pd.Series, np.ndarray, list, tuple)):
            values = list(requests)
            frame = None
        elif isinstance(requests, pd.DataFrame):
            frame = requests
            self._check_size(len(frame))
            if frame.columns.has_duplicates:
                twice = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
                raise RequestError(f"request column(s) {twice} appear more than once")
            if Columns.User not in frame.columns:
                near = difflib.get_close_matches(Columns.User, list(map(str, frame.columns)),
                                                 n=1)
                hint = f" (should {near[0]!r} be 'user_id'?)" if near else ""
                raise RequestError(f"the request has no 'user_id' column{hint}; columns are "
                                   f"{list(frame.columns)}")
            valid = self.input_columns
            unknown = [c for c in frame.columns if c not in valid]
            if unknown:
                hints = ", ".join(f"{c!r}{_nearest(str(c), list(valid))}" for c in unknown)
                raise RequestError(f"unknown request column(s) {hints}; this model takes "
                                   f"{', '.join(valid)}")
            frame = _typed_attributes(frame, valid)
            values = frame[Columns.User].tolist()  # rows are used by position from here
        else:
            raise RequestError("a request is a table with a 'user_id' column (or a list of "
                               f"user ids), got {type(requests).__name__}")
        self._check_size(len(values))
        return frame, values

    def _check_size(self, n_users: int) -> None:
        if n_users > self.max_users:
            raise RequestError(f"{n_users:,} users in one request; the limit is "
                               f"{self.max_users:,}")

    @staticmethod
    def _raw_ids(values: list) -> np.ndarray:
        """Each id as text; RequestError naming the row of the first missing, empty or non-id
        value (never the value: ids are not quoted back)."""
        for row, value in enumerate(values):
            # First, so that ints with a null (a float column in pandas) say what is wrong.
            if value is None or value is pd.NA or (isinstance(value, float) and value != value):
                raise RequestError(f"user_id is missing in row {row}")
        ids = []
        for row, value in enumerate(values):
            if isinstance(value, str):
                text = value
            elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
                text = str(value)
            else:
                raise RequestError(f"user_id must be text (ids as strings; integers are read "
                                   f"as text), got {type(value).__name__} in row {row}")
            if not text:
                raise RequestError(f"user_id is empty in row {row}")
            ids.append(text)
        return np.asarray(ids, dtype=object)

    def _check_k(self, k: Any) -> int:
        n_items = self.model.n_items
        limit = min(self.max_k, n_items)
        if (isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer))
                or not 1 <= k <= limit):
            raise RequestError(f"k must be an integer from 1 to {limit} (the catalogue has "
                               f"{n_items:,} items; lists are capped at {self.max_k:,}), "
                               f"got {k!r}")
        return int(k)

    def _keys(self, raw: np.ndarray) -> np.ndarray:
        """The ids as the model knows them: the raw ids, or their keyed pseudonyms."""
        if self.pseudonym is None:
            return raw
        from recexp.preprocess import pseudonymize_ids

        if self._key is None:
            self.check_ready()
        return pseudonymize_ids(raw, key=self._key, digits=self.pseudonym.digits)

    def recommend(self, requests: pd.DataFrame | Sequence, *, k: int = 10,
                  exclude_seen: bool = True, batch_size: int = 2048) -> pd.DataFrame:
        """Top-``k`` items for each requested user, known or not.

        Parameters
        ----------
        requests : DataFrame or sequence of ids
            ``user_id`` (ids as text; integers are accepted and read as text) and, for a hybrid
            model, any of the raw attribute columns of :attr:`input_columns`, typed as it says
            (numbers written as text are read; a missing value counts as not given). Any other
            column is refused.
        k : int
            List length, 1 to ``min(max_k, n_items)``.
        exclude_seen : bool
            Leave out a known user's training items.
        batch_size : int
            Users scored at once (memory ``batch_size * n_items * 4`` bytes).

        Returns
        -------
        DataFrame
            ``user_id`` (as given), ``item_id``, ``score`` (float32: the model's score, or on
            fallback rows the item's count of training interactions), ``rank`` (int32, 1 =
            best), ``fallback`` (bool) and ``reason`` (one of :data:`REASONS`); users in request
            order, fewer than ``k`` rows for a user only when fewer items remain.

        Raises
        ------
        RequestError
            A bad request; the message says what and where (rows and columns: it never quotes
            a user id).
        ServiceConfigError
            The ids must be pseudonymised and the key is not set.
        """
        frame, values = self._request(requests)
        k = self._check_k(k)
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise RequestError(f"exclude_seen must be true or false, got {exclude_seen!r}")
        raw = self._raw_ids(values)
        n = len(raw)
        lookup = self._lookup.get
        index = np.fromiter((lookup(key, -1) for key in self._keys(raw)), dtype=np.int32,
                            count=n)
        items = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        reason = np.full(n, "known_user", dtype=object)
        known = np.flatnonzero(index >= 0)
        seen = self.model.seen_ if exclude_seen else None
        for pos in iter_batches(len(known), batch_size):
            rows, users = known[pos], index[known[pos]]
            items[rows], scores[rows] = top_k(self.model.score(users), k, exclude=seen,
                                              rows=users)
        unknown = np.flatnonzero(index < 0)
        popular = unknown
        reason[unknown] = "no_features"
        if unknown.size and self.encoder is not None and frame is not None \
                and len(frame.columns) > 1:
            features, given = self.encoder.transform(frame.iloc[unknown])
            usable = features.getnnz(axis=1) > 0
            reason[unknown[given & ~usable]] = "unknown_features"
            reason[unknown[usable]] = "user_features"
            scored = np.flatnonzero(usable)
            for pos in iter_batches(len(scored), batch_size):
                rows = unknown[scored[pos]]
                items[rows], scores[rows] = top_k(self._scorer(features[scored[pos]]), k)
            popular = unknown[~usable]
        if popular.size:
            items[popular] = self._popular[:k]
            scores[popular] = self.popularity[self._popular[:k]]
        fallback = np.isin(reason, ("no_features", "unknown_features"))
        keep = (items >= 0).ravel()
        flat = items.ravel()[keep]
        return pd.DataFrame({
            Columns.User: pd.Series(np.repeat(raw, k)[keep], dtype="str"),
            Columns.Item: self.model.items_.to_external(flat),
            Columns.Score: scores.ravel()[keep],
            Columns.Rank: np.tile(np.arange(1, k + 1, dtype=np.int32), n)[keep],
            "fallback": np.repeat(fallback, k)[keep],
            "reason": pd.Series(np.repeat(reason, k)[keep], dtype="str"),
        })

    def __repr__(self) -> str:
        return (f"RecommenderBundle({type(self.model).__name__}, users={len(self.model.users_):,}"
                f", items={self.model.n_items:,}, features={self.encoder is not None}, "
                f"pseudonymised={self.pseudonym is not None})")


# ---------------------------------------------------------------------------------- MLflow
@functools.cache
def _pyfunc_class() -> type:
    # Defined on first use so that importing recexp.serving does not import MLflow.
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

    class Refusal(MlflowException):
        """An ``MlflowException`` whose message stays as written.

        MLflow's scoring server rewrites the message of any ``MlflowException`` raised in
        ``predict`` to ``Failed to predict data '<the request table>'. Error: <message>``
        before answering, which would send the user ids back in the error body; this message
        keeps its first value (set by ``MlflowException.__init__``).
        """

        @property
        def message(self) -> str:
            return self._message

        @message.setter
        def message(self, value: str) -> None:
            if not hasattr(self, "_message"):
                self._message = value

    class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
        """MLflow pyfunc face of a :class:`RecommenderBundle` stored in the model's artifacts."""

        def load_context(self, context) -> None:
            self.bundle = RecommenderBundle.load(context.artifacts["bundle"])
            self.bundle.check_ready()

        # The DataFrame hint keeps MLflow from validating against the hint. With no input
        # schema MLflow passes requests as parsed: a DataFrame (dataframe_split/_records, CSV),
        # or a dict of columns or list of records or ids (inputs/instances).
        def predict(self, context, model_input: pd.DataFrame,
                    params: dict[str, Any] | None = None) -> pd.DataFrame:
            params = dict(params or {})
            try:
                return self.bundle.recommend(_request_table(model_input),
                                             k=params.get("k", 10),
                                             exclude_seen=params.get("exclude_seen", True))
            except RequestError as err:
                # The scoring server answers INVALID_PARAMETER_VALUE with HTTP 400.
                raise Refusal(str(err), error_code=INVALID_PARAMETER_VALUE) from None
            except ServiceConfigError as err:
                raise Refusal(str(err), error_code=INTERNAL_ERROR) from None
            except Exception as err:
                # A bug, not a bad request: the trace goes to the server's log, the client
                # gets a 500 that names the error's type and neither the trace nor the request.
                import logging

                logging.getLogger("recexp.serving").exception("recommend failed")
                raise Refusal(f"internal error ({type(err).__name__}); the service log has "
                              "the details", error_code=INTERNAL_ERROR) from None

    return RecommenderPyfunc


def _request_table(model_input: Any) -> Any:
    """A pyfunc input as :meth:`RecommenderBundle.recommend` takes it: a dict of columns or a
    list of records becomes a DataFrame; a DataFrame or a list of ids stays as it is."""
    if isinstance(model_input, Mapping):
        columns = {str(name): _values(value) for name, value in model_input.items()}
        if all(np.ndim(value) == 0 for value in columns.values()):
            columns = {name: [value] for name, value in columns.items()}  # one record
        try:
            return pd.DataFrame(columns)
        except ValueError:
            raise RequestError("the request's columns must all have one value per "
                               "user") from None
    if isinstance(model_input, (list, tuple, np.ndarray)) and len(model_input) \
            and all(isinstance(record, Mapping) for record in model_input):
        return pd.DataFrame.from_records(
            [{str(name): _scalar(value) for name, value in record.items()}
             for record in model_input])
    return model_input


def _scalar(value: Any) -> Any:
    # MLflow's JSON parsing wraps single values in 0-d arrays (`inputs`, `instances`).
    return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value


def _values(column: Any) -> Any:
    column = _scalar(column)
    if isinstance(column, np.ndarray) and column.dtype == object:
        return [_scalar(value) for value in column]
    return column


def make_pyfunc_model():
    """A new, unloaded MLflow ``PythonModel`` that serves the bundle in its artifacts.

    Called by the ``recexp_service.py`` logged with each model (models-from-code).
    """
    return _pyfunc_class()()


def _requirements(model: Recommender) -> list[str]:
    """Pinned pip requirements of the serving code path (recexp itself must be importable)."""
    from importlib import metadata

    names = ["mlflow", "numpy", "scipy", "pandas", "pyarrow", "scikit-learn"]
    if _uses_user_features(model) or model.name == "lightfm":
        names.append("rectools-lightfm")
    out = []
    for name in names:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


def _bundle_of(model: Recommender | RecommenderBundle, source: Any,
               kwargs: dict[str, Any]) -> RecommenderBundle:
    if isinstance(model, RecommenderBundle):
        return model
    return RecommenderBundle.from_training(model, source, **kwargs)


def _pyfunc_arguments(bundle: RecommenderBundle, tmp: Path,
                      pip_requirements: list[str] | None) -> dict[str, Any]:
    folder = bundle.save(tmp / "bundle")
    code = tmp / _CODE_FILE
    code.write_text(_SERVICE_CODE)
    metadata = {"recexp_bundle_format": _FORMAT, "recexp_model": bundle.model.name,
                "recexp_inputs": bundle.input_columns,  # user_id required, the rest optional
                "pseudonymised_user_ids": bundle.pseudonym is not None}
    if bundle.pseudonym is not None:
        metadata["pseudonym_key_env"] = bundle.pseudonym.key_env  # the name, not the value
    return {"python_model": str(code), "artifacts": {"bundle": str(folder)},
            "signature": bundle.signature(), "metadata": metadata,
            "pip_requirements": pip_requirements or _requirements(bundle.model)}


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    with warnings.catch_warnings():
        # Signature and example are given explicitly; MLflow's nudges about type hints and
        # input examples do not apply (an example would put user ids in the artifact).
        warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow\..*")
        yield


def log_pyfunc(model: Recommender | RecommenderBundle, source: Any = None, *,
               artifact_path: str = "model", config: Any = None,
               feature_spec: Sequence[Mapping] | None = None,
               users: pd.DataFrame | None = None, pseudonym: Pseudonym | None = None,
               registered_model_name: str | None = None,
               pip_requirements: list[str] | None = None):
    """Log a fitted model as an MLflow pyfunc recommendation service in the active run.

    Parameters
    ----------
    model : Recommender or RecommenderBundle
        A fitted, saveable model (or a ready bundle; then the other arguments are unused).
    source, config, feature_spec, users, pseudonym
        As for :meth:`RecommenderBundle.from_training`; in an experiment, ``source`` is the
        ``Prepared`` data and ``config`` the ``ExperimentConfig``.
    artifact_path : str
        The logged model's name (``runs:/<run_id>/<artifact_path>`` loads it).
    registered_model_name : str, optional
        Also register it in the model registry under this name.
    pip_requirements : list of str, optional
        Defaults to the pinned libraries the service imports.

    Returns
    -------
    mlflow.models.model.ModelInfo
        ``model_uri`` (``models:/<model_id>``) and the rest of MLflow's record.

    Raises
    ------
    NotImplementedError
        The model cannot be saved.
    """
    import mlflow

    bundle = _bundle_of(model, source, {"config": config, "feature_spec": feature_spec,
                                        "users": users, "pseudonym": pseudonym})
    with tempfile.TemporaryDirectory() as tmp:
        arguments = _pyfunc_arguments(bundle, Path(tmp), pip_requirements)
        with _quiet_mlflow():
            return mlflow.pyfunc.log_model(name=artifact_path,
                                           registered_model_name=registered_model_name,
                                           **arguments)


def save_pyfunc(model: Recommender | RecommenderBundle, path: str | Path, source: Any = None,
                **kwargs: Any) -> Path:
    """Write the pyfunc model to a local folder (no tracking store); see :func:`log_pyfunc`.

    ``kwargs``: ``config``, ``feature_spec``, ``users``, ``pseudonym``, ``pip_requirements``.
    The folder serves with ``mlflow models serve -m <path>`` or :func:`serve`.
    """
    import mlflow

    pip = kwargs.pop("pip_requirements", None)
    bundle = _bundle_of(model, source, kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        arguments = _pyfunc_arguments(bundle, Path(tmp), pip)
        with _quiet_mlflow():
            mlflow.pyfunc.save_model(path=str(path), **arguments)
    return Path(path)


# ---------------------------------------------------------------------------------- server
def server_command(model_uri: str, *, host: str = "127.0.0.1", port: int = 5000,
                   workers: int = 1) -> tuple[list[str], dict[str, str]]:
    """The ``mlflow models serve`` command line and environment :func:`start_server` runs.

    ``--env-manager local`` serves from this Python environment, whose ``bin/`` is put first on
    ``PATH`` (MLflow starts ``uvicorn`` by name). ``MLFLOW_TRACKING_URI`` defaults to the
    project's store so ``runs:/`` and ``models:/`` URIs resolve.
    """
    from recexp import tracking

    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an integer from 1 to 65535, got {port!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)  # not resolved: a venv's python is a symlink
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("MLFLOW_TRACKING_URI", tracking.tracking_uri())
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_uri),
            "--env-manager", "local", "-h", host, "-p", str(port), "-w", str(workers)]
    return argv, env


@dataclass
class ServerProcess:
    """A running ``mlflow models serve``: its process (group leader), URL and log file."""

    process: subprocess.Popen
    url: str
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 300.0, interval: float = 0.5) -> None:
        """Poll ``/ping`` until the model answers; raise if the server exits or never does."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(f"the model server exited with code {code} before it was "
                                   f"ready{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the model server at {self.url} was not ready after "
                                   f"{timeout:.0f} s{self._log_tail()}")
            time.sleep(interval)

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return "; log tail:\n" + "\n".join(lines)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to the server's process group (started by us, led by :attr:`pid`), SIGKILL
        after ``timeout`` seconds; returns the exit code."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout)
        # uvicorn may outlive its parent briefly; its group shares the leader's id.
        self._signal(signal.SIGKILL, quiet=True)
        return self.process.returncode

    def _signal(self, sig: int, quiet: bool = False) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            if not quiet:
                raise

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(model_uri: str, *, host: str = "127.0.0.1", port: int = 5000,
                 workers: int = 1, log_path: str | Path | None = None) -> ServerProcess:
    """Start ``mlflow models serve`` in the background, in its own process group.

    Output goes to ``log_path`` (a file, so a full pipe never blocks the server), or to this
    process's terminal. Call :meth:`ServerProcess.wait_ready`, and :meth:`ServerProcess.stop`
    (or use it as a context manager).
    """
    argv, env = server_command(model_uri, host=host, port=port, workers=workers)
    out = None
    if log_path is not None:
        log_path = Path(log_path)
        out = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        process = subprocess.Popen(argv, env=env, stdout=out,
                                   stderr=subprocess.STDOUT if out else None,
                                   start_new_session=True)
    finally:
        if out is not None:
            out.close()
    url_host = f"[{host}]" if ":" in host else host
    return ServerProcess(process, f"http://{url_host}:{port}", log_path)


def serve(model_uri: str, *, host: str = "127.0.0.1", port: int = 5000,
          workers: int = 1) -> int:
    """Serve a logged model over REST until the server exits or Ctrl-C; returns its exit code.

    Wraps ``mlflow models serve -m URI --env-manager local -h HOST -p PORT`` with this
    environment's ``bin/`` first on ``PATH``. ``POST /invocations`` takes
    ``{"dataframe_split" | "dataframe_records": ..., "params": {"k": 10, "exclude_seen": true}}``
    (or ``inputs``/``instances``, or a CSV body); a bad request is an HTTP 400 whose message says
    what was wrong. ``GET /ping`` answers when the model is loaded. The default host keeps it on
    this machine.
    """
    server = start_server(model_uri, host=host, port=port, workers=workers)
    try:
        return server.process.wait()
    except KeyboardInterrupt:
        server.stop()
        return 130


# ---------------------------------------------------------------------------------- CLI
def recommend_cli(model_uri: str, users: Sequence[str], k: int = 10, *,
                  exclude_seen: bool = True,
                  features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recommendations from a logged model, in process (what ``recexp recommend`` prints).

    Parameters
    ----------
    model_uri : str
        ``runs:/<run_id>/model``, ``models:/<model_id>``, a pyfunc folder, or a bundle folder
        (one with ``bundle.json``: read directly, without MLflow).
    users : sequence of str
        Raw user ids.
    k, exclude_seen
        As for :meth:`RecommenderBundle.recommend`.
    features : DataFrame, optional
        Raw attribute columns, one row per user (hybrid models).

    Raises
    ------
    RequestError
        A bad request (the message says what).
    """
    frame = pd.DataFrame({Columns.User: [str(u) for u in users]})
    if features is not None:
        if len(features) != len(frame):
            raise RequestError(f"{len(features)} feature rows for {len(frame)} users")
        frame = pd.concat([frame, features.reset_index(drop=True)], axis=1)
    local = Path(model_uri)
    if (local / _BUNDLE_JSON).is_file():
        bundle = RecommenderBundle.load(local)
        bundle.check_ready()
        return bundle.recommend(frame, k=k, exclude_seen=exclude_seen)
    import mlflow
    from mlflow.exceptions import MlflowException

    from recexp import tracking

    tracking.configure()
    model = mlflow.pyfunc.load_model(model_uri)
    schema = model.metadata.get_input_schema()
    if schema is None:  # the service checks and types the request itself
        types = {}
    else:  # a model logged with an input schema: MLflow drops other columns, so say it here
        types = {name: str(kind) for name, kind in
                 zip(schema.input_names(), schema.input_types(), strict=True)}
        unknown = [c for c in frame.columns if c not in types]
        if unknown:
            hints = ", ".join(f"{c!r}{_nearest(str(c), list(types))}" for c in unknown)
            raise RequestError(f"unknown request column(s) {hints}; this model takes "
                               f"{', '.join(types)}")
    try:
        frame = _typed_attributes(frame, types)
        return model.predict(frame, params={"k": k, "exclude_seen": exclude_seen})
    except MlflowException as err:
        if err.get_http_status_code() == 400:
            raise RequestError(err.message) from None
        raise


def _typed_attributes(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """``frame`` with its attribute columns as ``types`` (MLflow type names) says.

    ``"double"`` columns become float64 (NaN where missing; numbers written as text are read);
    ``"string"`` columns hold text or None (integers are read as text). ``user_id`` and columns
    not in ``types`` are left alone. Values arrive untyped from JSON, CSV and the command line.

    Raises
    ------
    RequestError
        Naming the column and row of the first value that is neither.
    """
    columns = [c for c in frame.columns if c != Columns.User and c in types]
    if not columns:
        return frame
    out = frame.copy()
    for column in columns:
        out[column] = _typed_column(frame[column], str(column), str(types[column]))
    return out


def _typed_column(series: pd.Series, column: str, kind: str) -> pd.Series:
    numeric = "double" in kind or "float" in kind
    dtype = series.dtype
    if numeric and pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return pd.Series(series.to_numpy(dtype=np.float64, na_value=np.nan),
                         index=series.index, name=series.name)
    if not numeric and isinstance(dtype, pd.StringDtype):
        return series.astype(object).where(series.notna(), None)
    values = series.to_numpy(dtype=object, copy=True)
    for row, value in enumerate(values):
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            values[row] = np.nan if numeric else None
            continue
        bad = isinstance(value, (bool, np.bool_))
        if numeric and not bad:
            if isinstance(value, (int, float, np.integer, np.floating)):
                values[row] = float(value)
            elif isinstance(value, str):
                try:
                    values[row] = float(value)
                except ValueError:
                    raise RequestError(f"{column} must be a number, got {value!r} in row "
                                       f"{row}") from None
            else:
                bad = True
        elif not bad:
            if isinstance(value, (int, np.integer)):
                values[row] = str(value)
            elif not isinstance(value, str):
                bad = True
        if bad:
            wanted = "a number" if numeric else "text"
            raise RequestError(f"{column} must be {wanted}, got {type(value).__name__} in "
                               f"row {row}")
    return pd.Series(values, index=series.index, name=series.name,
                     dtype=np.float64 if numeric else object)
