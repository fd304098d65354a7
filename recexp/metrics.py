"""Ranking, beyond-accuracy and click metrics, each with one written definition.

The protocol (:func:`evaluate`)
-------------------------------
For every test user ``u``:

* **Candidates** are all items except those ``u`` interacted with in the training data
  (``split.train``); with ``exclude_seen=False`` all items.
* **Ranking**: candidates sorted by the model's score, highest first; **ties go to the lower
  internal item index**, the same rule as :func:`recexp.models.top_k` and ``recommend``, so a
  ranking is a pure function of the scores. (LightFM's own evaluation ranks a relevant item
  behind every item with a higher *or equal* score, the worst position among ties; with
  continuous scores there are no ties and the two agree to float rounding, which the tests
  check.) ``pos(i)`` is item ``i``'s 1-based position.
* **Relevant items** ``R_u``: ``u``'s test interactions (with ``rating >= relevance_threshold``
  when a threshold is given). Users with ``R_u`` empty are left out of every average (their
  count is reported as ``users``).
* Summary values are plain means over users.

The metrics, for ``u`` and list length ``k`` (``hits_k = |{i in R_u : pos(i) <= k}|``):

* ``precision@k`` = ``hits_k / k`` (always divided by ``k``).
* ``recall@k`` = ``hits_k / |R_u|``.
* ``hit_rate@k`` = 1 if ``hits_k > 0`` else 0.
* ``ndcg@k`` = ``DCG_k / IDCG_k`` with ``DCG_k = sum_{i in R_u, pos(i) <= k} g(i) / log2(pos(i)+1)``
  and ``IDCG_k`` the same sum for the best possible order of ``R_u``. Binary gain ``g = 1``;
  with ``graded=True`` the gain is the test rating (linear, no ``2^r - 1``).
* ``map@k`` = ``(1 / min(k, |R_u|)) * sum_{i in R_u, pos(i) <= k} P(pos(i))`` where ``P(p)`` is
  the precision of the first ``p`` positions.
* ``mrr`` = ``1 / min_{i in R_u} pos(i)`` over the full ranking (no cut-off).
* ``auc`` = the fraction of (relevant, non-relevant candidate) pairs ranked relevant-first,
  over the full ranking; undefined (NaN, left out of the mean) when every candidate is
  relevant.

Beyond accuracy, over the top-``k`` lists of all evaluated users:

* ``coverage@k`` = distinct recommended items / ``n_items``.
* ``novelty@k`` = mean over lists of the mean self-information ``-log2 p(i)``, with
  ``p(i) = (train_users(i) + 1) / (train_users + 1)`` (add-one so unseen items stay finite).
* ``popularity@k`` = mean over lists of the mean number of training interactions of the items.
* ``diversity@k`` = mean over lists of the mean pairwise ``1 - cosine`` between the items'
  side features (needs item features; NaN without).

Click prediction: ``roc_auc`` and ``log_loss`` through scikit-learn, and :func:`calibration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recexp._threads import one_blas_thread
from recexp.columns import Columns
from recexp.models.base import Recommender, iter_batches, top_k

__all__ = [
    "ACCURACY",
    "BEYOND",
    "Evaluation",
    "calibration",
    "click_metrics",
    "evaluate",
]

ACCURACY = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr", "auc")
"""Per-user ranking metrics (``mrr`` and ``auc`` have no ``@k``)."""
BEYOND = ("coverage", "novelty", "popularity", "diversity")
"""Metrics of the recommendation lists as a whole."""
_AT_K = {"precision", "recall", "ndcg", "map", "hit_rate"}
_CHUNK = 1 << 20  # comparisons done at once when ranking relevant items (bytes of bools)
_SORT_CHUNK = 1 << 20  # bytes of scores sorted at once (~L2: the search that follows hits cache)


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured.

    Attributes
    ----------
    summary : dict of str -> float
        ``"ndcg@10"``, ``"auc"``, ``"coverage@10"``, ... over all test users, and
        ``"<segment>/ndcg@10"`` per test segment; ``"users"`` counts evaluated users.
        Goes straight to ``mlflow.log_metrics``.
    per_user : DataFrame
        One row per (segment, user): ``segment``, ``user_id``, ``n_relevant`` and one column
        per per-user metric. Feeds significance tests.
    recommended : np.int32 array of shape [n_test_users, max(k)]
        Internal item indices of every evaluated user's list (``-1`` padding).
    """

    summary: dict[str, float]
    per_user: pd.DataFrame
    recommended: np.ndarray


_SMALL_PRODUCT = 1 << 22
"""Scores per batch (users x items) up to which a batch is scored with one BLAS thread: on
products this small OpenBLAS's second thread costs more than it brings (it spins idle after
each product, charged to this process; ML-100K: 36 ms of CPU per evaluate with two threads,
16-19 ms with one), while larger products gain from it."""


def _names(metrics: Sequence[str], ks: Sequence[int]) -> list[str]:
    out = []
    for m in metrics:
        if m in _AT_K:
            out += [f"{m}@{k}" for k in ks]
        elif m in ("mrr", "auc"):
            out.append(m)
    return out


def _check_metrics(metrics: Sequence[str]) -> None:
    known = set(ACCURACY) | set(BEYOND)
    unknown = [m for m in metrics if m not in known]
    if unknown:
        import difflib

        hints = [m + (f" (did you mean {near[0]!r}?)"
                      if (near := difflib.get_close_matches(m, known, n=1)) else "")
                 for m in unknown]
        raise ValueError(f"unknown metric(s): {', '.join(hints)}; known: "
                         f"{', '.join(sorted(known))}")


def _same_ids(a, b) -> bool:
    """Two id maps agree: the same object (subsets of one Dataset), or equal ids in order
    (a model loaded from disk); equal sizes alone are not enough."""
    return a is b or np.array_equal(a.ids, b.ids)


def _row_entries(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the entries of some rows of a CSR matrix are: ``(local, at)``, for every entry
    the position of its row in ``rows`` and its position in ``indices``/``data``.

    What ``matrix[rows]`` finds, without building the sliced matrix.
    """
    starts = indptr[rows].astype(np.int64)
    sizes = indptr[rows + 1] - starts
    local = np.repeat(np.arange(len(rows), dtype=np.int64), sizes)
    at = np.arange(len(local), dtype=np.int64) + np.repeat(starts - (np.cumsum(sizes) - sizes),
                                                           sizes)
    return local, at


def _positions(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """1-based position of item ``cols[j]`` in row ``rows[j]`` of ``scores`` (ties: lower index).

    ``scores`` (float32) already holds ``-inf`` for excluded items, which therefore never rank
    above a candidate.

    Two exact ways, chosen per row by its number ``m`` of relevant items: counting the items
    above each relevant one costs ``m * n_items`` comparisons (:func:`_positions_counted`);
    sorting the row once costs ``~n_items * log(n_items)`` whatever ``m``
    (:func:`_positions_sorted`). Rows with at least ``_sort_from(n_items)`` relevant items
    are sorted.
    """
    if scores.dtype != np.float32:
        raise TypeError(f"_positions needs float32 scores, got {scores.dtype}")
    out = np.empty(len(rows), dtype=np.int64)
    if len(rows) == 0:
        return out
    counts = np.bincount(rows, minlength=scores.shape[0])
    sort_rows = counts >= _sort_from(scores.shape[1])
    if sort_rows.sum() >= 0.9 * np.count_nonzero(counts):
        # nearly all: then all, so the rows (consecutive, in evaluate) are copied at memory
        # speed; gathering scattered rows costs ~3x as much, more than counting the few saves
        return _positions_sorted(scores, rows, cols)
    by_sort = sort_rows[rows]
    if not by_sort.any():
        return _positions_counted(scores, rows, cols)
    out[by_sort] = _positions_sorted(scores, rows[by_sort], cols[by_sort])
    rest = ~by_sort
    out[rest] = _positions_counted(scores, rows[rest], cols[rest])
    return out


def _sort_from(n_items: int) -> int:
    """Relevant items in a row from which sorting the row is cheaper than counting.

    Measured (numpy 2.4, AVX2, one core, random scores, half of each row under its lowest
    relevant score): sorting a row costs as much as counting for ~2 relevant items at 1,682
    items, ~7 at 10,000 and ~10 at 50,000. Counting pays ~2 ns an item for the row's keys
    plus 0.2-0.7 ns an item per relevant item; sorting ~4-5 ns an item.
    """
    return min(12, max(2, n_items // 1200))


def _positions_sorted(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """:func:`_positions` by sorting a copy of each row once.

    With the row sorted ascending, ``p`` = the number of items scoring ``<=`` the relevant
    item's score ``v`` (a binary search, done for all relevant items of a block at once;
    items below the row's lowest relevant score are first all set to one value under it), and
    ``n_items - p`` items score above it. When no other item scores exactly ``v``
    (``-0.0 == +0.0``, as in :func:`_order_keys`) that is the whole answer; the items with
    such a tie are passed to :func:`_positions_counted`, which applies the tie rule. Rows are
    copied and sorted in blocks of at most ``_SORT_CHUNK`` bytes into one buffer per call.
    """
    n_rows, n_items = scores.shape
    out = np.empty(len(rows), dtype=np.int64)
    values = scores[rows, cols]
    if len(rows) > 1 and (rows[1:] < rows[:-1]).any():
        order = np.argsort(rows, kind="stable")
    else:
        order = None  # the usual case (entries of a CSR matrix): already grouped by row
    r_sorted = rows if order is None else rows[order]
    v_sorted = values if order is None else values[order]
    starts = np.flatnonzero(np.r_[True, r_sorted[1:] != r_sorted[:-1]])
    row_list = r_sorted[starts]
    bounds = np.r_[starts, len(rows)]
    # Items below a row's lowest relevant score are all counted the same way (below every
    # relevant item), so they are raised to the float just under it before the sort: one
    # value repeated sorts much faster, and it cannot tie with a relevant item.
    floor = np.nextafter(np.minimum.reduceat(v_sorted, starts), np.float32(-np.inf))
    cap = min(max(1, _SORT_CHUNK // (4 * n_items)), len(row_list))
    buffer = np.empty((cap, n_items), dtype=np.float32)
    above = np.empty(len(rows), dtype=np.int64)
    tied = np.zeros(len(rows), dtype=bool)
    for i in range(0, len(row_list), cap):
        chunk = row_list[i:i + cap]
        block = buffer[:len(chunk)]
        if chunk[-1] - chunk[0] == len(chunk) - 1:  # consecutive rows: no gather
            np.copyto(block, scores[chunk[0]:chunk[-1] + 1])
        else:
            np.take(scores, chunk, axis=0, out=block)
        np.maximum(block, floor[i:i + len(chunk), None], out=block)
        block.sort(axis=1)
        flat = block.reshape(-1)
        e0, e1 = bounds[i], bounds[i + len(chunk)]
        v = v_sorted[e0:e1]
        base = np.repeat(np.arange(len(chunk), dtype=np.intp) * n_items,
                         np.diff(bounds[i:i + len(chunk) + 1]))
        # Branchless binary search, all relevant items at once (every row has n_items
        # entries): the first item > v lies in [lo, lo + size] throughout.
        lo, size = base.copy(), n_items
        while size > 1:
            half = size // 2
            probe = lo + half
            lo = np.where(np.take(flat, probe) <= v, probe, lo)
            size -= half
        # p = items <= v; v is in its row, so p >= 1 and the item at base + p - 1 is v
        p = lo - base + (np.take(flat, lo) <= v)
        above[e0:e1] = n_items - p
        # no other item ties v unless the one before it in sorted order equals v
        tied[e0:e1] = (p >= 2) & (np.take(flat, base + p - 2, mode="clip") == v)
    pos = above + 1
    if tied.any():
        where = np.flatnonzero(tied)
        pos[where] = _positions_counted(scores, r_sorted[where],
                                        (cols if order is None else cols[order])[where])
    if order is None:
        return pos
    out[order] = pos
    return out


def _positions_counted(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """:func:`_positions` by counting, for each relevant item, the items above it.

    Every score becomes an int64 key that orders exactly like ``(score, -index)``, so
    ``pos = 1 + #{items whose key is greater}``: one comparison per (relevant item, item),
    ties included. Rows are taken in blocks, each row's relevant keys side by side (rows
    sorted by their number of relevant items, so the padding stays small), and the
    comparisons are counted as bits (``packbits`` + ``bitwise_count``). Work buffers are
    allocated once per call and bounded by ``_CHUNK``, not by the batch (fresh multi-MB
    arrays for every block were measured to cost more, in page faults, than the work).
    """
    n_rows, n_items = scores.shape
    out = np.empty(len(rows), dtype=np.int64)
    if len(rows) == 0:
        return out
    shift = max(int(n_items - 1).bit_length(), 1)
    # lower index wins a tie: it gets the larger low bits
    tiebreak = np.arange(n_items - 1, -1, -1, dtype=np.int64)
    counts = np.bincount(rows, minlength=n_rows)
    order = np.lexsort((rows, -counts[rows]))  # rows with most relevant items first
    r_sorted, c_sorted = rows[order], cols[order]
    starts = np.flatnonzero(np.r_[True, r_sorted[1:] != r_sorted[:-1]])
    row_list = r_sorted[starts]
    m_list = counts[row_list]  # non-increasing
    slot = np.arange(len(rows)) - np.repeat(starts, m_list)
    ends = np.r_[starts[1:], len(rows)]
    padding = np.iinfo(np.int64).max  # no key is greater: a padded slot counts nothing
    # rows turned into keys at once (8 bytes a key), and the buffers for them; the key rows
    # are padded to whole 64-bit words of comparison bits with keys nothing is below
    cap = min(max(1, _CHUNK // (8 * n_items)), len(row_list))
    width_pad = -(-n_items // 64) * 64
    floats = np.empty((cap, n_items), dtype=np.float32)
    flip = np.empty((cap, n_items), dtype=np.int32)
    keys = np.full((cap, width_pad), np.iinfo(np.int64).min, dtype=np.int64)
    greater = np.empty(max(_CHUNK, width_pad), dtype=bool)
    i = 0
    while i < len(row_list):
        width = int(m_list[i])
        j = min(i + max(1, min(cap, _CHUNK // (width * width_pad))), len(row_list))
        b, e0, e1 = j - i, starts[i], ends[j - 1]
        block = keys[:b]
        _order_keys(scores, row_list[i:j], shift, tiebreak, floats=floats[:b],
                    flip=flip[:b], keys=block[:, :n_items])
        local = np.repeat(np.arange(b), m_list[i:j])
        wanted = np.full((b, width), padding, dtype=np.int64)
        wanted[local, slot[e0:e1]] = block[local, c_sorted[e0:e1]]
        above = np.empty((b, width), dtype=np.int64)
        step = max(1, _CHUNK // (b * width_pad))  # < width only for one huge row
        for s in range(0, width, step):
            t = min(step, width - s)
            cmp = greater[:b * t * width_pad].reshape(b, t, width_pad)
            # order="C": iterate along the items (numpy may otherwise pick the short axis)
            np.greater(block[:, None, :], wanted[:, s:s + t, None], out=cmp, order="C")
            words = np.packbits(cmp, axis=-1).view(np.uint64)
            above[:, s:s + t] = np.bitwise_count(words).sum(axis=-1, dtype=np.int64)
        out[order[e0:e1]] = above[local, slot[e0:e1]] + 1
        i = j
    return out


def _order_keys(scores: np.ndarray, rows: np.ndarray, shift: int, tiebreak: np.ndarray, *,
                floats: np.ndarray, flip: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """int64 keys of ``scores[rows]`` (float32) that sort like ``(score, -index)``.

    A float's bits read as a signed integer order the positive floats correctly and the
    negative ones backwards (sign and magnitude): flipping a negative float's 31 magnitude
    bits turns them around. ``-0.0`` is first made ``+0.0`` (adding ``0.0`` does that) so
    equal floats get equal keys. The score goes in the high bits, the tie-break in the low
    ``shift`` bits. Written into the given buffers, in place: no temporary arrays.
    """
    if (np.diff(rows) == 1).all():  # consecutive rows (the usual case): no gather
        np.add(scores[rows[0]:rows[-1] + 1], np.float32(0.0), out=floats)
    else:
        np.take(scores, rows, axis=0, out=floats)
        floats += np.float32(0.0)
    bits = floats.view(np.int32)
    np.right_shift(bits, 31, out=flip)  # -1 for a negative float, else 0
    flip &= 0x7FFFFFFF
    bits ^= flip
    keys[...] = bits
    keys <<= shift
    keys |= tiebreak
    return keys


def _group_rank(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """0-based rank of each entry within its group, ordered by ``key`` ascending."""
    order = np.lexsort((key, group))
    g = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    sizes = np.diff(np.r_[starts, len(g)])
    rank_sorted = np.arange(len(g)) - np.repeat(starts, sizes)
    rank = np.empty(len(g), dtype=np.int64)
    rank[order] = rank_sorted
    return rank


def _user_metrics(n_users: int, user: np.ndarray, pos: np.ndarray, gain: np.ndarray | None,
                  n_candidates: np.ndarray, ks: Sequence[int], names: Sequence[str]
                  ) -> dict[str, np.ndarray]:
    """Per-user metrics from the positions of relevant items (see the module docstring).

    ``gain`` None means 1 for every item. Only what ``names`` asks for is computed (the
    within-user ranks, two sorts, only for NDCG and MAP).
    """
    wanted = {name.partition("@")[0] for name in names}
    n_rel = np.bincount(user, minlength=n_users).astype(np.float64)
    out: dict[str, np.ndarray] = {}
    if "map" in wanted:
        # j-th relevant item in ranking order (1-based)
        order_in_user = _group_rank(user, pos) + 1
    if "ndcg" in wanted:
        if gain is None:
            gain = np.ones(len(pos))
        discount = 1.0 / np.log2(pos + 1.0)
        # ideal order: gains sorted descending within each user
        ideal_rank = _group_rank(user, -gain) + 1
        ideal_discount = 1.0 / np.log2(ideal_rank + 1.0)
    for k in ks:
        inside = pos <= k
        hits = np.bincount(user[inside], minlength=n_users).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if f"precision@{k}" in names:
                out[f"precision@{k}"] = hits / k
            if f"recall@{k}" in names:
                out[f"recall@{k}"] = hits / n_rel
            if f"hit_rate@{k}" in names:
                out[f"hit_rate@{k}"] = (hits > 0).astype(np.float64)
            if f"ndcg@{k}" in names:
                dcg = np.bincount(user[inside], weights=(gain * discount)[inside],
                                  minlength=n_users)
                ideal = ideal_rank <= k
                idcg = np.bincount(user[ideal], weights=(gain * ideal_discount)[ideal],
                                   minlength=n_users)
                out[f"ndcg@{k}"] = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0.0)
            if f"map@{k}" in names:
                prec = order_in_user / pos
                ap = np.bincount(user[inside], weights=prec[inside], minlength=n_users)
                out[f"map@{k}"] = ap / np.minimum(k, n_rel)
    if "mrr" in names:
        best = np.full(n_users, np.iinfo(np.int64).max)
        np.minimum.at(best, user, pos)
        with np.errstate(divide="ignore"):
            out["mrr"] = np.where(n_rel > 0, 1.0 / best, np.nan)
    if "auc" in names:
        # negatives ranked above the j-th relevant item (in ranking order): pos_j - j; summed
        # over a user's m relevant items, sum(pos) - m (m + 1) / 2 (whole numbers: exact)
        neg_above = (np.bincount(user, weights=pos.astype(np.float64), minlength=n_users)
                     - n_rel * (n_rel + 1.0) / 2.0)
        n_neg = n_candidates - n_rel
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = 1.0 - neg_above / (n_rel * n_neg)
        out["auc"] = np.where(n_neg > 0, auc, np.nan)
    return out


def evaluate(model: Recommender, split, *, k: Sequence[int] | int = (5, 10, 20),
             metrics: Sequence[str] = ACCURACY + ("coverage", "novelty", "popularity"),
             batch_size: int = 2048, exclude_seen: bool = True,
             relevance_threshold: float | None = None, graded: bool = False,
             segments: bool = True, progress: bool = False) -> Evaluation:
    """Evaluate a fitted model on a split's test interactions (full catalogue ranking).

    Parameters
    ----------
    model : Recommender
        Fitted on ``split.train`` (or on train with validation removed: anything whose id
        maps are the split's).
    split : recexp.split.Split
        ``split.train`` gives the seen items to exclude; ``split.test`` the relevant items;
        ``split.segments`` (mapping name -> bool mask over test interactions) the segments.
    k : int or sequence of int
        List lengths for the ``@k`` metrics.
    metrics : sequence of str
        Names from :data:`ACCURACY` and :data:`BEYOND`.
    batch_size : int
        Users scored at once; peak memory is about ``batch_size * n_items * 4`` bytes times a
        small constant.
    exclude_seen : bool
        Remove training items from the candidates.
    relevance_threshold : float, optional
        Only test interactions with ``rating >= threshold`` are relevant.
    graded : bool
        NDCG gain is the test rating instead of 1.
    segments : bool
        Also compute every per-user metric per test segment.
    progress : bool
        Show a progress bar over user batches.

    Returns
    -------
    Evaluation
    """
    ks = sorted({int(k)} if np.isscalar(k) else {int(x) for x in k})
    if not ks or ks[0] <= 0:
        raise ValueError(f"k must be positive integers, got {k!r}")
    _check_metrics(metrics)
    # Seen items are what the evaluated model was fitted on: train plus valid, if any.
    train, test = getattr(split, "full_train", split.train), split.test
    if model.items_ is None:
        raise ValueError("evaluate: the model is not fitted")
    if not (_same_ids(model.items_, test.items) and _same_ids(model.users_, test.users)):
        differ = ("other user/item ids" if (len(model.users_), len(model.items_))
                  == (test.n_users, test.n_items) else "other sizes")
        raise ValueError(
            f"evaluate: the model knows {len(model.users_)} users x {len(model.items_)} items "
            f"but the split has {test.n_users} x {test.n_items} ({differ}): fit it on this "
            "split's train")
    n_items = test.n_items
    names = _names(metrics, ks)
    # None: every test interaction is relevant, every gain is 1
    relevant: np.ndarray | None = None
    gains_all: np.ndarray | None = None
    if relevance_threshold is not None or graded:
        if test.rating is None:
            raise ValueError("relevance_threshold and graded need ratings in the test data")
        if relevance_threshold is not None:
            relevant = test.rating >= relevance_threshold
        if graded:
            gains_all = test.rating.astype(np.float64)
    seg_masks: dict[str, np.ndarray | None] = {"all": relevant}
    if segments and getattr(split, "segments", None):
        for name, mask in split.segments.items():
            mask = np.asarray(mask, dtype=bool)
            if mask.any():
                seg_masks[name] = mask if relevant is None else relevant & mask
    # Test interactions grouped by user, items ascending within a user: every per-user sum
    # below runs in this order, and a batch of users is a contiguous run of entries. `idx`
    # keeps each entry's interaction index so segment masks and ratings follow it; without
    # those, the test matrix's CSR layout (cached by the Dataset) is this order already.
    if relevant is None and gains_all is None and len(seg_masks) == 1:
        idx = None
        layout = test.binary
        user = np.repeat(np.arange(test.n_users, dtype=test.user_idx.dtype),
                         np.diff(layout.indptr))
        entry_items = layout.indices
    else:
        key = test.user_idx.astype(np.int64) * n_items + test.item_idx
        idx = (np.arange(len(key)) if (key[1:] > key[:-1]).all()
               else np.argsort(key))  # the keys are distinct: any sort gives this order
        user = test.user_idx[idx]
        entry_items = test.item_idx[idx]
    per_user = np.bincount(user, minlength=test.n_users)
    test_users = np.flatnonzero(per_user > 0).astype(np.int32)
    first_entry = np.r_[0, np.cumsum(per_user[test_users])]
    pos = np.empty(len(user), dtype=np.int64)
    seen = train.binary if exclude_seen else None
    n_seen = (np.diff(seen.indptr) if seen is not None
              else np.zeros(test.n_users, dtype=np.int64))
    kmax = ks[-1]
    want_lists = any(m in BEYOND for m in metrics)
    lists = np.full((len(test_users), kmax), -1, dtype=np.int32) if want_lists else \
        np.empty((0, kmax), dtype=np.int32)
    batches = iter_batches(len(test_users), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(list(batches), desc="evaluate", unit="batch")
    for where in batches:
        rows = test_users[where]
        if len(rows) * n_items <= _SMALL_PRODUCT:
            with one_blas_thread():
                scores = model.score(rows)
        else:
            scores = model.score(rows)
        if scores.size and np.isnan(scores.min()):  # min is NaN iff some score is
            bad = rows[np.isnan(scores).any(axis=1)]
            raise ValueError(
                f"evaluate: the model scores NaN for {len(bad)} user(s) of this batch, e.g. "
                f"user {test.users.to_external(bad[:1])[0]!r} (a diverged fit?); NaN has no "
                "rank, so no metric can be computed")
        if seen is not None:
            local, at = _row_entries(seen.indptr, rows)
            scores[local, seen.indices[at]] = -np.inf
        e0, e1 = first_entry[where[0]], first_entry[where[-1] + 1]
        local = np.repeat(np.arange(len(rows)), per_user[rows])
        pos[e0:e1] = _positions(scores, local, entry_items[e0:e1])
        if want_lists:
            # top_k caps k at n_items: a narrower block keeps the -1 padding
            items = top_k(scores, kmax)[0]
            lists[where, :items.shape[1]] = items
        del scores  # else the next batch is scored while this one is still held: 2x the peak
    n_candidates = (n_items - n_seen).astype(np.float64)

    summary: dict[str, float] = {}
    frames = []
    for seg, mask in seg_masks.items():
        if mask is None:
            seg_user, seg_pos = user, pos
            seg_gain = None if gains_all is None else gains_all[idx]
        else:
            keep = mask[idx]
            seg_user, seg_pos = user[keep], pos[keep]
            seg_gain = None if gains_all is None else gains_all[idx[keep]]
        values = _user_metrics(test.n_users, seg_user, seg_pos, seg_gain, n_candidates, ks,
                               names)
        n_rel = np.bincount(seg_user, minlength=test.n_users)
        evaluated = np.flatnonzero(n_rel > 0)
        if seg == "all":
            has_relevant = n_rel[test_users] > 0
        prefix = "" if seg == "all" else f"{seg}/"
        summary[f"{prefix}users"] = float(len(evaluated))
        columns = {"segment": seg, Columns.User: test.users.to_external(evaluated),
                   "n_relevant": n_rel[evaluated]}
        for name in names:
            col = values[name][evaluated]
            columns[name] = col
            summary[f"{prefix}{name}"] = float(np.nanmean(col)) if len(col) else float("nan")
        # one constructor call: inserting columns one by one costs ~1 ms each in pandas
        frames.append(pd.DataFrame(columns))
    if want_lists:
        # the lists of evaluated users only: a user without relevant items is left out
        summary.update(_beyond(lists[has_relevant], train, ks, metrics))
    per_user = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    return Evaluation(summary=summary, per_user=per_user, recommended=lists)


def _beyond(lists: np.ndarray, train, ks: Sequence[int], metrics: Sequence[str]
            ) -> dict[str, float]:
    n_items = train.n_items
    binary = train.binary
    item_users = np.bincount(binary.indices, minlength=n_items).astype(np.float64)
    n_train_users = float((np.diff(binary.indptr) > 0).sum())
    info = -np.log2((item_users + 1.0) / (n_train_users + 1.0))
    features = None
    if "diversity" in metrics and train.item_side is not None:
        f = sp.csr_matrix(train.item_side.matrix, dtype=np.float64)
        norms = np.sqrt(np.asarray(f.multiply(f).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        features = sp.diags(1.0 / norms) @ f
    out: dict[str, float] = {}
    for k in ks:
        top = lists[:, :k]
        valid = top >= 0
        safe = np.where(valid, top, 0)
        counts = valid.sum(axis=1)
        nonempty = counts > 0
        if "coverage" in metrics:
            out[f"coverage@{k}"] = float(np.unique(top[valid]).size / n_items)
        if "novelty" in metrics:
            per = np.where(valid, info[safe], 0.0).sum(axis=1)
            out[f"novelty@{k}"] = float(np.mean(per[nonempty] / counts[nonempty]))
        if "popularity" in metrics:
            per = np.where(valid, item_users[safe], 0.0).sum(axis=1)
            out[f"popularity@{k}"] = float(np.mean(per[nonempty] / counts[nonempty]))
        if "diversity" in metrics:
            out[f"diversity@{k}"] = (_diversity(top, features) if features is not None
                                     else float("nan"))
    return out


def _diversity(top: np.ndarray, features: sp.csr_matrix) -> float:
    """Mean over lists of at least two items of the mean pairwise ``1 - cosine``.

    ``features`` has unit rows (or zero rows). For a list's rows ``x_1..x_n`` the sum of
    the cosines of all ordered pairs ``i != j`` is ``|x_1 + ... + x_n|^2 - sum_i |x_i|^2``, so
    one sparse product (lists x items) @ (items x features) gives every list's sum at once.
    A list's mean lies in [0, 2]; it is clipped there against float rounding (a list of
    items with identical features otherwise came out as -2e-16).
    """
    valid = top >= 0
    sizes = valid.sum(axis=1)
    keep = sizes >= 2
    if not keep.any():
        return float("nan")
    top, valid, sizes = top[keep], valid[keep], sizes[keep]
    indptr = np.r_[0, np.cumsum(sizes)]
    members = sp.csr_matrix((np.ones(int(indptr[-1])), top[valid], indptr),
                            shape=(len(top), features.shape[0]))
    summed = members @ features
    pair_sum = (np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
                - members @ np.asarray(features.multiply(features).sum(axis=1)).ravel())
    n = sizes.astype(np.float64)
    values = np.clip(1.0 - pair_sum / (n * (n - 1.0)), 0.0, 2.0)
    return float(np.mean(values))


def click_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """``roc_auc`` and ``log_loss`` (natural log, probabilities clipped to [1e-7, 1-1e-7]),
    plus ``ctr`` (observed) and ``mean_prediction``.

    Parameters
    ----------
    labels : np.ndarray of shape [n]
        1 clicked, 0 not.
    probabilities : np.ndarray of shape [n]
        Predicted click probabilities.
    """
    from sklearn.metrics import log_loss, roc_auc_score

    y = np.asarray(labels)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in shape")
    out = {"log_loss": float(log_loss(y, p, labels=[0, 1])), "ctr": float(y.mean()),
           "mean_prediction": float(p.mean())}
    out["roc_auc"] = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return out


def calibration(labels: np.ndarray, probabilities: np.ndarray, *, bins: int = 10
                ) -> pd.DataFrame:
    """Predicted vs observed click rate in ``bins`` equal-count buckets of the prediction.

    Returns a DataFrame with ``bucket, rows, mean_prediction, observed_ctr``.
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    bucket = np.empty(len(p), dtype=np.int64)
    bucket[order] = np.minimum(np.arange(len(p)) * bins // max(len(p), 1), bins - 1)
    frame = pd.DataFrame({"bucket": bucket, "p": p, "y": y})
    grouped = frame.groupby("bucket")
    return pd.DataFrame({"rows": grouped.size(), "mean_prediction": grouped["p"].mean(),
                         "observed_ctr": grouped["y"].mean()}).reset_index()
