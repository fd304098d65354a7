"""Seeded synthetic data with a known right answer, in memory or in the real file formats.

- :func:`movielens_like`: ratings with timestamps, item genres and user attributes, drawn
  from a topic model whose truth (user tastes, item genres, popularity) comes back with them.
- :func:`write_netflix`: Netflix Prize files (``combined_data_*.txt`` or
  ``training_set/mv_*.txt``, ``movie_titles.txt``, ``probe.txt``, ``qualifying.txt``) and
  the tables a correct reader must get back from them.
- :func:`write_criteo`: Criteo Display Advertising Challenge files (raw TSV or the
  DeepCTR-style CSV) whose clicks depend on a few categorical fields, with the true click
  probabilities.

The generative model (shared by the first two): each item has one or two of ``n_genres``
genres and a long-tail popularity (Zipf); each user has a taste ``theta`` over genres
(Dirichlet). A user's interactions are drawn by picking a genre from the taste, then an item
of that genre in proportion to popularity, so the probability that user ``u`` picks item ``i``
is exactly ``P(i | u) = sum_g theta[u, g] * pop[i] * S[i, g] / sum_j pop[j] * S[j, g]``,
where ``S[i, g]`` is the share of genre ``g`` in item ``i`` (1, or 1/2 each for two genres),
up to the redraw of repeated pairs (:meth:`SyntheticRatings.scores`). Ratings rise with how
well the item's genres fit the user's taste (:meth:`SyntheticRatings.rating_mean`).
Everything is vectorised, text included: ten million Netflix ratings take 10-15 seconds of
CPU, a hundred million about two minutes (and 8 GB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recexp.columns import Columns
from recexp.datasets._base import SourceData

__all__ = [
    "CriteoFile",
    "NetflixFiles",
    "SyntheticRatings",
    "movielens_like",
    "write_criteo",
    "write_netflix",
]

GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western")
OCCUPATIONS = ("engineer", "artist", "student", "educator", "healthcare", "writer",
               "programmer", "scientist", "executive", "technician", "librarian", "lawyer")

_RATING_LEVELS = np.array([1.5, 2.5, 3.5, 4.5])  # cut points of the latent rating


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class _Model:
    theta: np.ndarray       # float64 [n_users, n_genres], rows sum to 1
    primary: np.ndarray     # int64 [n_items]: each item's first genre
    secondary: np.ndarray   # int64 [n_items]: its second genre (= primary when it has one)
    popularity: np.ndarray  # float64 [n_items], sums to 1
    user_bias: np.ndarray   # float64 [n_users]
    item_bias: np.ndarray   # float64 [n_items]

    @property
    def genres(self) -> np.ndarray:
        """bool [n_items, n_genres]: the item-genre incidence."""
        out = np.zeros((len(self.primary), self.theta.shape[1]), dtype=bool)
        rows = np.arange(len(self.primary))
        out[rows, self.primary] = True
        out[rows, self.secondary] = True
        return out


def _model(rng: np.random.Generator, n_users: int, n_items: int, n_genres: int,
           concentration: float, zipf: float) -> _Model:
    if not 1 <= n_genres <= n_items:
        raise ValueError(f"n_genres must be in 1..n_items ({n_items}), got {n_genres}")
    primary = rng.integers(0, n_genres, n_items)
    # Every genre needs a member, or a user drawn to it would have nothing to pick.
    primary[rng.permutation(n_items)[:n_genres]] = np.arange(n_genres)
    secondary = np.where(rng.random(n_items) < 0.3, rng.integers(0, n_genres, n_items),
                         primary)
    rank = rng.permutation(n_items) + 1
    popularity = rank.astype(np.float64) ** -zipf
    popularity /= popularity.sum()
    theta = rng.dirichlet(np.full(n_genres, concentration), size=n_users)
    return _Model(theta=theta, primary=primary, secondary=secondary, popularity=popularity,
                  user_bias=rng.normal(0.0, 0.35, n_users),
                  item_bias=rng.normal(0.0, 0.45, n_items))


def _affinity(model: _Model, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """theta[u] . (genres of i, as fractions) times n_genres: 1 is an average fit."""
    n_genres = model.theta.shape[1]
    flat = model.theta.ravel()
    base = users * n_genres
    fit = flat[base + model.primary[items]] + flat[base + model.secondary[items]]
    return fit * (n_genres / 2)


def _rating_mean(model: _Model, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    fit = _affinity(model, users, items)
    return 3.4 + model.user_bias[users] + model.item_bias[items] + 0.9 * np.tanh(fit - 1.0)


def _sample_pairs(rng: np.random.Generator, model: _Model, n: int,
                  activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct (user, item) index pairs, sorted by user then item.

    Users are drawn in proportion to ``activity``, a genre from the user's taste, an item of
    that genre in proportion to popularity; repeated pairs are dropped and drawn again.
    Multinomial counts and permutations instead of a search per draw keep it fast.
    """
    n_users, n_genres = model.theta.shape
    n_items = len(model.popularity)
    if n > n_users * n_items // 2:
        raise ValueError(f"{n:,} interactions would fill over half of the {n_users:,} x "
                         f"{n_items:,} matrix; ask for fewer or for more users/items")
    # An item of two genres is half in each: P(i | g) is proportional to pop[i] * share.
    member_genre = np.concatenate([model.primary, model.secondary])
    member_item = np.tile(np.arange(n_items), 2)
    weight = np.tile(model.popularity, 2) * 0.5
    order = np.argsort(member_genre, kind="stable")
    member_genre, member_item, weight = member_genre[order], member_item[order], weight[order]
    bounds = np.searchsorted(member_genre, np.arange(n_genres + 1))
    p_user = activity / activity.sum()
    keys = np.empty(0, np.int64)
    new_share = 0.95  # of draws that turn out to be new pairs; re-estimated every round
    for _ in range(60):
        need = n - len(keys)
        if need <= 0:
            break
        m = int(need / max(new_share, 0.01) * 1.05) + 64
        per_user = rng.multinomial(m, p_user)
        per_user_genre = rng.multinomial(per_user, model.theta)  # [n_users, n_genres]
        users = np.repeat(np.tile(np.arange(n_users), n_genres), per_user_genre.T.ravel())
        items = np.empty(m, np.int64)
        pos = 0
        for g, count in enumerate(per_user_genre.sum(axis=0)):
            lo, hi = bounds[g], bounds[g + 1]
            p = weight[lo:hi] / weight[lo:hi].sum()
            drawn = np.repeat(member_item[lo:hi], rng.multinomial(count, p))
            items[pos:pos + count] = rng.permutation(drawn)
            pos += count
        before = len(keys)
        keys = _sorted_unique(np.concatenate([keys, users * n_items + items]))
        new_share = (len(keys) - before) / m
    if len(keys) < n:
        raise ValueError(f"could not draw {n:,} distinct pairs; the matrix is too small")
    if len(keys) > n:  # drop the few extra pairs at random
        keys = np.delete(keys, rng.choice(len(keys), size=len(keys) - n, replace=False))
    return keys // n_items, keys % n_items


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    # np.unique hashes integers in numpy >= 2.3, which is far slower than sorting here.
    values = np.sort(values)
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _ratings(rng: np.random.Generator, model: _Model, users: np.ndarray,
             items: np.ndarray) -> np.ndarray:
    latent = _rating_mean(model, users, items)
    latent += 0.6 * rng.standard_normal(len(users), dtype=np.float32)
    return (np.searchsorted(_RATING_LEVELS, latent) + 1).astype(np.int8)


# ---------------------------------------------------------------------------- in memory
@dataclass(frozen=True, eq=False)
class SyntheticRatings:
    """A synthetic ratings dataset and the truth it was drawn from.

    Users are ``1..n_users`` and items ``1..n_items`` (external ids); row ``k`` of every
    truth array belongs to id ``k + 1``.

    Attributes
    ----------
    interactions : DataFrame
        ``user_id`` (int64), ``item_id`` (int64), ``rating`` (float32, 1..5),
        ``timestamp`` (datetime64[s]); each (user, item) pair once, sorted by user and time.
    items : DataFrame
        ``item_id``, ``title``, ``year`` (Int64), ``genres`` (``|``-joined names).
    users : DataFrame
        ``user_id``, ``age``, ``gender``, ``occupation``. The occupation follows the user's
        favourite genre (``OCCUPATIONS[favourite % 12]``) for a share ``attribute_signal``
        of users, so user attributes carry real signal for cold users.
    theta : float64 array of shape [n_users, n_genres]
        Each user's taste over genres (rows sum to 1).
    genres : bool array of shape [n_items, n_genres]
        Each item's genres (one or two).
    popularity : float64 array of shape [n_items]
        Long-tail (Zipf) item popularity; sums to 1.
    genre_names : tuple of str
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    theta: np.ndarray
    genres: np.ndarray
    popularity: np.ndarray
    genre_names: tuple[str, ...]
    _model: _Model = field(repr=False)

    def __repr__(self) -> str:
        n_users, n_genres = self.theta.shape
        return (f"SyntheticRatings(users={n_users:,}, items={len(self.popularity):,}, "
                f"interactions={len(self.interactions):,}, genres={n_genres})")

    @property
    def favourite_genre(self) -> np.ndarray:
        """int64 array of shape [n_users]: each user's most liked genre."""
        return self.theta.argmax(axis=1)

    def scores(self, users: np.ndarray | None = None) -> np.ndarray:
        """The true ``P(item | user)`` of the generative model.

        Parameters
        ----------
        users : int array of shape [n], optional
            External user ids (default: all users, in id order).

        Returns
        -------
        float64 array of shape [n, n_items]
            Column ``j`` is item ``j + 1``; each row sums to 1. Ranking items by it is the best
            possible recommender for this data (before excluding seen items).
        """
        rows = self._rows(users)
        n_items, n_genres = len(self.popularity), self.theta.shape[1]
        # An item of two genres is half in each, exactly as the sampler draws it.
        share = np.zeros((n_items, n_genres))
        np.add.at(share, (np.arange(n_items), self._model.primary), 0.5)
        np.add.at(share, (np.arange(n_items), self._model.secondary), 0.5)
        per_genre = share * self.popularity[:, None]
        per_genre /= per_genre.sum(axis=0, keepdims=True)
        return self.theta[rows] @ per_genre.T

    def relevant(self, *, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """The true top ``k`` items of every user, by :meth:`scores`.

        Returns a table ``user_id``, ``item_id``, ``rank`` (1-based) with ``k`` rows per user,
        leaving out items the user interacted with when ``exclude_seen``.
        """
        n_users, n_items = len(self.theta), len(self.popularity)
        out_users, out_items = [], []
        seen_u = self.interactions[Columns.User].to_numpy() - 1
        by_user = np.argsort(seen_u, kind="stable")
        seen_u = seen_u[by_user]
        seen_i = self.interactions[Columns.Item].to_numpy()[by_user] - 1
        for start in range(0, n_users, 1024):
            ids = np.arange(start, min(start + 1024, n_users))
            s = self.scores(ids + 1)
            if exclude_seen:
                lo, hi = np.searchsorted(seen_u, [start, start + len(ids)])
                s[seen_u[lo:hi] - start, seen_i[lo:hi]] = -np.inf
            kk = min(k, n_items)
            top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), 1,
                                                     kind="stable"), 1)
            out_users.append(np.repeat(ids + 1, kk))
            out_items.append(top.ravel() + 1)
        kk = min(k, n_items)
        return pd.DataFrame({
            Columns.User: np.concatenate(out_users).astype(np.int64),
            Columns.Item: np.concatenate(out_items).astype(np.int64),
            Columns.Rank: np.tile(np.arange(1, kk + 1), n_users).astype(np.int64),
        })

    def rating_mean(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The noise-free latent rating of (user, item) pairs, before rounding to 1..5.

        ``users`` and ``items`` are external ids of equal shape [n]; returns float64 [n].
        The observed rating is this plus N(0, 0.6) noise, cut at 1.5, 2.5, 3.5, 4.5.
        """
        return _rating_mean(self._model, self._rows(users), np.asarray(items) - 1)

    def to_source_data(self) -> SourceData:
        """The tables as :class:`~recexp.datasets._base.SourceData` named ``"synthetic"``."""
        return SourceData(name="synthetic", interactions=self.interactions, users=self.users,
                          items=self.items)

    def _rows(self, users: np.ndarray | None) -> np.ndarray:
        if users is None:
            return np.arange(len(self.theta))
        rows = np.asarray(users, dtype=np.int64) - 1
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self.theta)):
            bad = int(np.asarray(users)[(rows < 0) | (rows >= len(self.theta))][0])
            raise KeyError(f"unknown user id {bad}; users are 1..{len(self.theta)}")
        return rows


def _day_range(start: str, end: str) -> tuple[int, int]:
    lo = int(np.datetime64(start, "D").astype(np.int64))
    hi = int(np.datetime64(end, "D").astype(np.int64))
    if hi <= lo:
        raise ValueError(f"end {end!r} must come after start {start!r}")
    return lo, hi


def movielens_like(
    *,
    n_users: int = 500,
    n_items: int = 1000,
    n_ratings: int = 20_000,
    n_genres: int = 8,
    seed: int = 0,
    concentration: float = 0.3,
    zipf: float = 0.9,
    attribute_signal: float = 0.8,
    start: str = "1998-01-01",
    end: str = "2005-12-31",
) -> SyntheticRatings:
    """A MovieLens-like dataset drawn from a known topic model (see the module docstring).

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        Sizes; every (user, item) pair occurs at most once.
    n_genres : int
        Latent genres; the first 18 take MovieLens's genre names.
    seed : int
        Same seed, same data, to the bit.
    concentration : float
        Dirichlet parameter of user tastes: small values give users one or two genres.
    zipf : float
        Exponent of item popularity ``rank ** -zipf``: larger is a longer tail.
    attribute_signal : float
        Share of users whose occupation follows their favourite genre.
    start, end : str
        Dates the timestamps fall between.

    Returns
    -------
    SyntheticRatings
        The tables and the truth: :meth:`~SyntheticRatings.scores`,
        :meth:`~SyntheticRatings.relevant`, :meth:`~SyntheticRatings.rating_mean`.

    >>> data = movielens_like(n_users=50, n_items=80, n_ratings=1000, seed=1)
    >>> len(data.interactions), data.theta.shape
    (1000, (50, 8))
    """
    for name, value in (("n_users", n_users), ("n_items", n_items), ("n_ratings", n_ratings)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    rng = np.random.default_rng(seed)
    model = _model(rng, n_users, n_items, n_genres, concentration, zipf)
    activity = rng.lognormal(0.0, 0.8, n_users)
    users, items = _sample_pairs(rng, model, n_ratings, activity)
    ratings = _ratings(rng, model, users, items)
    lo, hi = _day_range(start, end)
    joined = rng.integers(lo * 86400, hi * 86400, n_users)
    seconds = joined[users] + (rng.random(len(users)) * (hi * 86400 - joined[users])).astype(
        np.int64)
    order = np.lexsort((seconds, users))
    interactions = pd.DataFrame({
        Columns.User: users[order] + 1,
        Columns.Item: items[order] + 1,
        Columns.Rating: ratings[order].astype(np.float32),
        Columns.Datetime: seconds[order].astype("datetime64[s]"),
    })
    names = tuple(GENRES[g] if g < len(GENRES) else f"Genre{g}" for g in range(n_genres))
    name_arr = np.asarray(names, dtype=object)
    genres = model.genres
    items_table = pd.DataFrame({
        Columns.Item: np.arange(1, n_items + 1, dtype=np.int64),
        "title": pd.Series([f"Item {i}" for i in range(1, n_items + 1)], dtype="str"),
        "year": pd.array(rng.integers(1930, 2006, n_items), dtype="Int64"),
        "genres": pd.Series(["|".join(name_arr[row]) for row in genres], dtype="str"),
    })
    favourite = model.theta.argmax(axis=1)
    follows = rng.random(n_users) < attribute_signal
    occupation = np.where(follows, favourite % len(OCCUPATIONS),
                          rng.integers(0, len(OCCUPATIONS), n_users))
    users_table = pd.DataFrame({
        Columns.User: np.arange(1, n_users + 1, dtype=np.int64),
        "age": rng.integers(18, 71, n_users).astype(np.int64),
        "gender": pd.Series(np.where(rng.random(n_users) < 0.5, "F", "M"), dtype="str"),
        "occupation": pd.Series(np.asarray(OCCUPATIONS)[occupation], dtype="str"),
    })
    return SyntheticRatings(interactions=interactions, items=items_table, users=users_table,
                            theta=model.theta, genres=genres,
                            popularity=model.popularity, genre_names=names, _model=model)


# ---------------------------------------------------------------------------- Netflix
_WORDS = ("Night", "River", "Star", "Love", "War", "City", "Dream", "Ghost", "King", "Road",
          "Summer", "Fire", "Secret", "Island", "Shadow", "Storm", "Heart", "Game", "Blue",
          "Last", "Dark", "Winter", "Golden", "Silent", "Wild", "Lost", "Broken", "Little")


@dataclass(frozen=True, eq=False)
class NetflixFiles:
    """What :func:`write_netflix` wrote, and what a correct reader must read back.

    Attributes
    ----------
    folder : Path
    ratings_files : tuple of Path
        ``combined_data_*.txt`` or ``training_set/mv_*.txt``, in reading order.
    titles_file, probe_file, qualifying_file : Path or None
    ratings : DataFrame
        ``user_id`` (int64), ``item_id`` (int64), ``rating`` (float32), ``timestamp``
        (datetime64[s]) in file order.
    titles : DataFrame
        ``item_id`` (int64), ``year`` (Int64, missing for ``NULL``), ``title`` (str).
    probe : DataFrame or None
        ``user_id``, ``item_id`` in file order: a sample of the ratings.
    qualifying : DataFrame or None
        ``user_id``, ``item_id``, ``timestamp`` in file order: pairs that are not ratings.
    """

    folder: Path
    ratings_files: tuple[Path, ...]
    titles_file: Path
    probe_file: Path | None
    qualifying_file: Path | None
    ratings: pd.DataFrame
    titles: pd.DataFrame
    probe: pd.DataFrame | None
    qualifying: pd.DataFrame | None


def _titles(rng: np.random.Generator, n_movies: int) -> pd.DataFrame:
    words = np.asarray(_WORDS, dtype=object)
    a = words[rng.integers(0, len(words), n_movies)]
    b = words[rng.integers(0, len(words), n_movies)]
    kind = rng.random(n_movies)
    titles = []
    for k in range(n_movies):
        if kind[k] < 0.06:
            titles.append(f"{a[k]}, {b[k]} and Me")  # a comma inside the title
        elif kind[k] < 0.08:
            titles.append(f"Caf\u00e9 {a[k]}")  # latin-1 only
        elif kind[k] < 0.09:
            titles.append(f'The "{a[k]}" Tapes: Vol. {k % 9 + 1}, Part {k % 3 + 1}')
        else:
            titles.append(f"The {a[k]} {b[k]}")
    years = rng.integers(1915, 2006, n_movies).astype(object)
    # Like the real file: a handful of movies with an unknown (NULL) year.
    years[rng.choice(n_movies, size=max(1, n_movies // 2500), replace=False)] = None
    return pd.DataFrame({
        Columns.Item: np.arange(1, n_movies + 1, dtype=np.int64),
        "year": pd.array(list(years), dtype="Int64"),
        "title": pd.Series(titles, dtype="str"),
    })


def _write_titles(path: Path, titles: pd.DataFrame) -> None:
    year = titles["year"].astype("string").fillna("NULL").astype(object).to_numpy()
    lines = [f"{i},{y},{t}" for i, y, t in zip(titles[Columns.Item].to_numpy(), year,
                                               titles["title"].to_numpy(), strict=True)]
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


# ---------------------------------------------------------------------------- text in numpy
@dataclass(frozen=True, eq=False)
class _Vocab:
    """The text of every value a field takes, indexed by the value's code."""

    lengths: np.ndarray  # int64 [n_values]: bytes of each text
    widths: np.ndarray  # the distinct lengths
    by_width: dict[int, np.ndarray]  # width -> the texts' first `width` bytes, as void scalars

    @classmethod
    def of(cls, text: np.ndarray) -> _Vocab:
        text = np.asarray(text, dtype="S")
        chars = np.frombuffer(text.tobytes(), np.uint8).reshape(len(text), text.itemsize)
        lengths = np.char.str_len(text).astype(np.int64)
        widths = np.flatnonzero(np.bincount(lengths))
        by_width = {int(w): np.ascontiguousarray(chars[:, :w]).view(f"V{w}").ravel()
                    for w in widths if w}
        return cls(lengths, widths, by_width)


def _put(out: np.ndarray, pos: np.ndarray, vocab: _Vocab, codes: np.ndarray) -> np.ndarray:
    """Write ``vocab`` text of ``codes`` at byte offsets ``pos``; return the offsets after it.

    Rows go in groups of equal text length; each group is one fancy assignment into a view of
    ``out`` whose elements are ``length``-byte windows starting at every byte, so each text
    is one small copy (twice as fast as a scatter per character).
    """
    lengths = vocab.lengths[codes]
    for width, text in vocab.by_width.items():
        if len(vocab.widths) == 1:
            p, c = pos, codes
        else:
            rows = np.flatnonzero(lengths == width)
            p, c = pos[rows], codes[rows]
        if len(p):
            windows = np.ndarray(shape=(len(out) - width + 1,), dtype=f"V{width}", buffer=out,
                                 strides=(1,))
            windows[p] = text[c]
    return pos + lengths


def _render_rows(fields: list[tuple[_Vocab, np.ndarray]], sep: str) -> np.ndarray:
    """Rows of ``fields`` joined by ``sep``, one per line: uint8 [n_bytes]."""
    n_rows = len(fields[0][1])
    lengths = np.full(n_rows, len(fields), np.int64)  # the separators and the newline
    for vocab, codes in fields:
        lengths += vocab.lengths[codes]
    ends = np.cumsum(lengths)
    out = np.empty(int(ends[-1]) if n_rows else 0, np.uint8)
    pos = ends - lengths
    for j, (vocab, codes) in enumerate(fields):
        pos = _put(out, pos, vocab, codes)
        out[pos] = ord(sep) if j < len(fields) - 1 else ord("\n")
        pos += 1
    return out


def _render(heads: np.ndarray, counts: np.ndarray, head_vocab: _Vocab,
            fields: list[tuple[_Vocab, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of ``movie:`` lines, each followed by its ``counts`` rows of ``fields``
    joined by commas (uint8 [n_bytes]), and where each ``movie:`` line starts (int64
    [n_heads]). All numpy: no Python object per line."""
    n_rows, n_heads = len(fields[0][1]), len(heads)
    row_len = np.full(n_rows, len(fields), np.int64)  # the commas and the newline
    for vocab, codes in fields:
        row_len += vocab.lengths[codes]
    is_head = np.zeros(n_rows + n_heads, dtype=bool)
    is_head[np.cumsum(counts) - counts + np.arange(n_heads)] = True
    lengths = np.empty(n_rows + n_heads, np.int64)
    lengths[is_head] = head_vocab.lengths[heads] + 2  # ":\n"
    lengths[~is_head] = row_len
    ends = np.cumsum(lengths)
    starts = ends - lengths
    out = np.empty(int(ends[-1]) if len(ends) else 0, np.uint8)
    head_starts = starts[is_head]
    pos = _put(out, head_starts, head_vocab, heads)
    out[pos] = ord(":")
    out[pos + 1] = ord("\n")
    pos = starts[~is_head]
    for j, (vocab, codes) in enumerate(fields):
        pos = _put(out, pos, vocab, codes)
        out[pos] = ord(",") if j < len(fields) - 1 else ord("\n")
        pos += 1
    return out, head_starts


def _write_blocked(files: list[tuple[Path, np.ndarray]], movie: np.ndarray,
                   fields: list[tuple[_Vocab, np.ndarray]], *,
                   block: int = 2_000_000) -> None:
    """Write rows grouped by (sorted) ``movie`` under ``movie:`` lines.

    ``files``: each output file and the movie ids it holds (contiguous, ascending, not
    empty). ``fields``: each field as (text of every distinct value, code of each row):
    looking text up by code is many times faster than formatting every number. The text is
    made for about ``block`` rows at a time, across small files or within a big one.
    """
    all_ids = np.concatenate([ids for _, ids in files])
    file_of = np.repeat(np.arange(len(files)), [len(ids) for _, ids in files])
    head_vocab = _Vocab.of(np.arange(int(all_ids.max()) + 1))
    bounds = np.searchsorted(movie, np.arange(int(all_ids.max()) + 2))  # movie m: [m, m + 1)
    ends = bounds[all_ids + 1]
    current, fh = -1, None
    try:
        k = 0
        while k < len(all_ids):
            # As many whole movies as fit in about `block` rows (at least one).
            lo_row = bounds[all_ids[k]]
            j = max(k + 1, int(np.searchsorted(ends, lo_row + block, side="right")))
            ids = all_ids[k:j]
            counts = ends[k:j] - bounds[ids]
            rows = [(vocab, codes[lo_row:ends[j - 1]]) for vocab, codes in fields]
            text, head_starts = _render(ids, counts, head_vocab, rows)
            owner = file_of[k:j]
            cuts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1, len(ids)]
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                if owner[a] != current:
                    if fh is not None:
                        fh.close()
                    current = int(owner[a])
                    fh = open(files[current][0], "wb")  # noqa: SIM115 (closed below)
                stop = head_starts[b] if b < len(ids) else len(text)
                fh.write(text[head_starts[a]:stop].data)
            k = j
    finally:
        if fh is not None:
            fh.close()


def write_netflix(
    directory: str | Path,
    *,
    n_ratings: int,
    n_users: int,
    n_movies: int,
    seed: int = 0,
    layout: Literal["combined", "per_movie"] = "combined",
    n_files: int = 4,
    probe_fraction: float = 0.01,
    n_qualifying: int | None = None,
    n_genres: int = 12,
) -> NetflixFiles:
    """Write synthetic Netflix Prize files in the original formats.

    Parameters
    ----------
    directory : str or Path
        Created if needed. Gets ``combined_data_1..n_files.txt`` (``layout="combined"``) or
        ``training_set/mv_0000001.txt`` .. (``"per_movie"``, one file per movie), plus
        ``movie_titles.txt`` (latin-1, some titles with commas, quotes and ``é``, a few
        ``NULL`` years), ``probe.txt`` and ``qualifying.txt``.
    n_ratings, n_users, n_movies : int
        Sizes. Movies are ``1..n_movies``; customer ids are ``n_users`` distinct numbers
        scattered over ``1..max(2,649,429, 6 * n_users)`` like the real ones. Every movie has a
        ``MovieID:`` line even with no ratings.
    seed : int
    layout : {"combined", "per_movie"}
    n_files : int
        Number of ``combined_data_*.txt`` files (movies split into contiguous runs).
    probe_fraction : float
        Share of ratings listed in ``probe.txt`` (0 writes no probe file).
    n_qualifying : int, optional
        Pairs in ``qualifying.txt`` (default: as many as the probe; 0 writes none).
    n_genres : int
        Latent genres of the generating model.

    Returns
    -------
    NetflixFiles
        The paths and the exact tables a reader must return.

    Ten million ratings take 10-15 s of CPU (the text is made in numpy, 2M rows at a time);
    the per-movie layout adds the cost of creating one file per movie.
    """
    if layout not in ("combined", "per_movie"):
        raise ValueError(f"layout must be 'combined' or 'per_movie', got {layout!r}")
    if n_files < 1:
        raise ValueError(f"n_files must be at least 1, got {n_files}")
    if not 0 <= probe_fraction < 1:
        raise ValueError(f"probe_fraction must be in [0, 1), got {probe_fraction}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    model = _model(rng, n_users, n_movies, n_genres, concentration=0.4, zipf=1.0)
    activity = rng.lognormal(0.0, 1.0, n_users)
    users, movies = _sample_pairs(rng, model, n_ratings, activity)
    # File order: by movie, and in random order within a movie (the real order is arbitrary).
    shuffle = rng.permutation(len(movies))
    narrow = movies[shuffle].astype(np.int16 if n_movies < 2**15 else np.int32)
    order = shuffle[np.argsort(narrow, kind="stable")]  # a radix sort for int16
    del shuffle, narrow
    users, movies = users[order], movies[order]
    del order
    ratings = _ratings(rng, model, users, movies)
    customer = np.sort(rng.choice(max(2_649_429, 6 * n_users), size=n_users,
                                  replace=False)).astype(np.int32) + 1
    lo, hi = _day_range("1999-11-11", "2005-12-31")
    released = rng.integers(lo, hi, n_movies)
    since = released[movies]
    days = since + (rng.random(len(movies)) * (hi + 1 - since)).astype(np.int64)
    del since
    movie_ids = movies.astype(np.int64) + 1
    user_ids = customer[users]
    user_text = _Vocab.of(customer)
    day_text = _Vocab.of(np.arange(lo, hi + 1).astype("datetime64[D]").astype("S10"))
    rating_text = _Vocab.of(np.arange(6))
    truth = pd.DataFrame({
        Columns.User: user_ids.astype(np.int64),
        Columns.Item: movie_ids,
        Columns.Rating: ratings.astype(np.float32),
        Columns.Datetime: (days * 86400).astype("datetime64[s]"),
    }, copy=False)
    all_ids = np.arange(1, n_movies + 1)
    if layout == "combined":
        # Contiguous runs of movies with about equal numbers of ratings, like Kaggle's four.
        per_movie_counts = np.bincount(movie_ids, minlength=n_movies + 1)[1:]
        share = np.cumsum(per_movie_counts) / max(1, len(movie_ids))
        cut = np.searchsorted(share, np.arange(1, n_files) / n_files) + 1
        groups = [g for g in np.split(all_ids, np.minimum(cut, n_movies)) if len(g)]
        files = [(folder / f"combined_data_{k + 1}.txt", g) for k, g in enumerate(groups)]
    else:
        (folder / "training_set").mkdir(exist_ok=True)
        files = [(folder / "training_set" / f"mv_{m:07d}.txt", np.array([m]))
                 for m in all_ids]
    _write_blocked(files, movie_ids, [(user_text, users), (rating_text, ratings),
                                      (day_text, days - lo)])

    titles = _titles(rng, n_movies)
    _write_titles(folder / "movie_titles.txt", titles)

    probe = probe_file = None
    n_probe = int(round(probe_fraction * len(truth)))
    if n_probe:
        rows = np.sort(rng.choice(len(truth), size=n_probe, replace=False))
        probe = truth.iloc[rows][[Columns.User, Columns.Item]].reset_index(drop=True)
        probe_file = folder / "probe.txt"
        _write_blocked([(probe_file, _sorted_unique(movie_ids[rows]))], movie_ids[rows],
                       [(user_text, users[rows])])
    qualifying = qualifying_file = None
    n_qual = n_probe if n_qualifying is None else n_qualifying
    if n_qual:
        q_users, q_movies = _unrated_pairs(rng, users, movies, n_users, n_movies, n_qual)
        q_days = rng.integers(lo + (hi - lo) * 3 // 4, hi + 1, n_qual)
        q_order = np.lexsort((q_users, q_movies))
        q_users, q_movies, q_days = q_users[q_order], q_movies[q_order], q_days[q_order]
        qualifying = pd.DataFrame({
            Columns.User: customer[q_users].astype(np.int64),
            Columns.Item: q_movies + 1,
            Columns.Datetime: (q_days * 86400).astype("datetime64[s]"),
        })
        qualifying_file = folder / "qualifying.txt"
        q_ids = q_movies + 1
        _write_blocked([(qualifying_file, _sorted_unique(q_ids))], q_ids,
                       [(user_text, q_users), (day_text, q_days - lo)])
    return NetflixFiles(folder=folder, ratings_files=tuple(p for p, _ in files),
                        titles_file=folder / "movie_titles.txt", probe_file=probe_file,
                        qualifying_file=qualifying_file, ratings=truth, titles=titles,
                        probe=probe, qualifying=qualifying)


def _unrated_pairs(rng: np.random.Generator, users: np.ndarray, movies: np.ndarray,
                   n_users: int, n_movies: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct (user, movie) index pairs that are not among the ratings."""
    if n > n_users * n_movies - len(users):
        raise ValueError(f"cannot find {n:,} unrated pairs")
    rated = np.sort(users.astype(np.int64) * n_movies + movies)
    out = np.empty(0, np.int64)
    while len(out) < n:
        draw = rng.integers(0, n_users * n_movies, 2 * (n - len(out)) + 100)
        draw = draw[~np.isin(draw, rated, assume_unique=True)]
        out = _sorted_unique(np.concatenate([out, draw]))
    out = rng.permutation(out)[:n]
    return out // n_movies, out % n_movies


# ---------------------------------------------------------------------------- Criteo
_INT_MISSING = (0.45, 0.0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.01, 0.04, 0.45, 0.04, 0.76, 0.22)
_CAT_MISSING = (0.0, 0.0, 0.03, 0.03, 0.0, 0.12, 0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.0, 0.0,
                0.0, 0.03, 0.0, 0.0, 0.44, 0.44, 0.03, 0.76, 0.0, 0.03, 0.44, 0.44)
_CAT_VOCAB = (1400, 550, 100_000, 50_000, 300, 24, 12_000, 600, 3, 60_000, 5000, 90_000,
              3000, 27, 14_000, 80_000, 10, 5000, 2000, 4, 90_000, 17, 15, 40_000, 100, 30_000)
_INT_CAP = 2**20  # integer features stop here (keeps the table of their texts small)
_MISSING = -(2**62)
INFORMATIVE = ("C1", "C6", "C9", "C14", "C17")
"""The categorical fields the synthetic clicks depend on (with I1 and I5)."""


@dataclass(frozen=True, eq=False)
class CriteoFile:
    """What :func:`write_criteo` wrote.

    Attributes
    ----------
    path : Path
    label : int8 array of shape [n_rows]
        The clicks, in file order.
    probability : float64 array of shape [n_rows]
        The true click probability of each row; the best possible model predicts it.
    informative : tuple of str
        Fields the clicks depend on: ``INFORMATIVE`` categoricals plus ``I1`` and ``I5``.
    """

    path: Path
    label: np.ndarray
    probability: np.ndarray
    informative: tuple[str, ...]


def _hex_vocab(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` distinct random 32-bit hashes as 8 lowercase hex digits (dtype S8)."""
    values = _sorted_unique(rng.integers(0, 2**32, size + size // 10 + 16, dtype=np.uint64))
    values = rng.permutation(values)[:size].astype(">u4")
    digits = np.frombuffer(b"0123456789abcdef", np.uint8)
    raw = values.view(np.uint8).reshape(-1, 4)
    chars = np.empty((len(values), 8), np.uint8)
    chars[:, 0::2] = digits[raw >> 4]
    chars[:, 1::2] = digits[raw & 15]
    return chars.reshape(-1).view("S8")


def _power_law(rng: np.random.Generator, size: int, n: int, exponent: float = 1.1
               ) -> np.ndarray:
    """``n`` codes in ``0..size-1`` with frequency falling like ``(code + 1) ** -exponent``
    (the continuous inverse CDF, floored): a few values are most rows, as in the real logs."""
    top = (size + 1.0) ** (1.0 - exponent)
    x = (1.0 + rng.random(n) * (top - 1.0)) ** (1.0 / (1.0 - exponent))
    return np.minimum(x.astype(np.int64) - 1, size - 1)


def write_criteo(
    path: str | Path,
    *,
    n_rows: int,
    seed: int = 0,
    fmt: Literal["tsv", "csv"] = "tsv",
    ctr: float = 0.25,
    block: int = 500_000,
) -> CriteoFile:
    """Write a Criteo Display Advertising Challenge file with learnable clicks.

    Parameters
    ----------
    path : str or Path
    n_rows : int
    seed : int
    fmt : {"tsv", "csv"}
        ``"tsv"``: the raw Kaggle ``train.txt`` layout: 40 tab-separated fields ``label``,
        ``I1``..``I13`` (integers), ``C1``..``C26`` (8 hex digits), empty when missing, no
        header. ``"csv"``: the DeepCTR sample layout: header ``label,I1,..,I13,C1,..,C26``,
        commas, and integers written as floats (``260.0``) in every integer column that can be
        missing, i.e. all but ``I2`` (pandas writes a column with NaN so).
    ctr : float
        Target share of clicks (the real data has about 0.26).
    block : int
        Rows generated and written at a time.

    Returns
    -------
    CriteoFile
        The labels and the true click probabilities. The log-odds of a click are a sum of
        one random weight per value of each ``INFORMATIVE`` field (missing counts as a value)
        plus ``0.3 * log1p(I1) - 0.2 * log1p(I5)`` (missing as 0) and a bias set for ``ctr``.
    """
    if fmt not in ("tsv", "csv"):
        raise ValueError(f"fmt must be 'tsv' or 'csv', got {fmt!r}")
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    path = Path(path)
    rng = np.random.default_rng(seed)
    vocab_sizes = [max(2, min(v, n_rows // 4 + 2)) for v in _CAT_VOCAB]
    hashes = [_hex_vocab(rng, v) for v in vocab_sizes]
    # Every field's text by code; the last entry, "", is the missing value.
    cat_text = [_Vocab.of(np.r_[h, [b""]]) for h in hashes]
    label_text = _Vocab.of(np.array([b"0", b"1"]))
    informative = [int(name[1:]) - 1 for name in INFORMATIVE]
    weights = {c: rng.normal(0.0, 1.0, vocab_sizes[c] + 1) for c in informative}
    int_scale = rng.uniform(0.5, 3.0, 13)

    def draw(m: int, r: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray],
                                                      np.ndarray]:
        ints = []
        for j in range(13):
            values = np.floor(np.minimum(r.lognormal(int_scale[j], 1.5, m), _INT_CAP))
            values = values.astype(np.int64)
            if j == 1:
                values -= 1  # I2 reaches -1 in the real data
            values = np.where(r.random(m) < _INT_MISSING[j], _MISSING, values)
            ints.append(values)
        cats = []
        for c in range(26):
            codes = _power_law(r, vocab_sizes[c], m)
            codes = np.where(r.random(m) < _CAT_MISSING[c], -1, codes)
            cats.append(codes)
        logit = np.zeros(m)
        for c in informative:
            logit += weights[c][cats[c]]  # code -1 (missing) takes the last weight
        i1 = np.where(ints[0] == _MISSING, 0, ints[0])
        i5 = np.where(ints[4] == _MISSING, 0, ints[4])
        logit += 0.3 * np.log1p(i1) - 0.2 * np.log1p(i5)
        return ints, cats, logit

    # The bias that gives the asked-for click rate, found on a calibration sample.
    _, _, sample_logit = draw(min(n_rows, 200_000), np.random.default_rng([seed, 1]))
    lo_b, hi_b = -20.0, 20.0
    for _ in range(60):
        mid = (lo_b + hi_b) / 2
        if (1 / (1 + np.exp(-(sample_logit + mid)))).mean() < ctr:
            lo_b = mid
        else:
            hi_b = mid
    bias = (lo_b + hi_b) / 2

    labels = np.empty(n_rows, np.int8)
    probs = np.empty(n_rows, np.float64)
    float_cols = [j for j in range(13) if _INT_MISSING[j] > 0]
    sep = "\t" if fmt == "tsv" else ","
    with open(path, "wb") as fh:
        if fmt == "csv":
            header = ["label"] + [f"I{j}" for j in range(1, 14)] + [f"C{j}" for j in
                                                                     range(1, 27)]
            fh.write((",".join(header) + "\n").encode("ascii"))
        for start in range(0, n_rows, block):
            m = min(block, n_rows - start)
            ints, cats, logit = draw(m, rng)
            p = 1 / (1 + np.exp(-(logit + bias)))
            y = (rng.random(m) < p).astype(np.int8)
            labels[start:start + m] = y
            probs[start:start + m] = p
            # The text of every integer up to the block's largest, then "" for missing.
            top = max(int(v[v != _MISSING].max(initial=0)) for v in ints)
            ints_as_text = np.arange(-1, top + 1).astype("S")
            int_text = _Vocab.of(np.r_[ints_as_text, [b""]])
            float_text = (_Vocab.of(np.r_[np.char.add(ints_as_text, b".0"), [b""]])
                          if fmt == "csv" else int_text)
            fields = [(label_text, y)]
            for j, values in enumerate(ints):
                codes = np.where(values == _MISSING, len(ints_as_text), values + 1)
                fields.append((float_text if fmt == "csv" and j in float_cols else int_text,
                               codes))
            for c, codes in enumerate(cats):
                fields.append((cat_text[c], np.where(codes < 0, len(hashes[c]), codes)))
            fh.write(_render_rows(fields, sep).data)
    return CriteoFile(path=path, label=labels, probability=probs,
                      informative=(*INFORMATIVE, "I1", "I5"))
