"""Tests of recexp.datasets.criteo: both layouts, keys, hashing, chunking and bad input.

Known-answer rows are written here; the real samples (marked ``realdata``) are checked against
their published counts and against a plain-Python reading of the same text. The hashed matrix
is checked against a scalar re-implementation of the documented hash.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp

from recexp.columns import Columns
from recexp.datasets import BadInputError, DataNotFoundError, fetch, info, load
from recexp.datasets.criteo import (
    CAT_FIELDS,
    FIELDS,
    INT_FIELDS,
    CriteoData,
    hash_rows,
    iter_criteo,
    load_criteo,
    read_criteo,
    stream_criteo,
    token_names,
)

TSV_SAMPLES = ("paddlerec_part-0.txt", "paddlerec_dnn_sample_train.txt")
CSV_SAMPLE = "criteo_sample.txt"
CSV_HEADER = ",".join([Columns.Label, *FIELDS])


# ---------------------------------------------------------------------------- synthetic rows
def _values(i: int) -> list[str]:
    """Row ``i`` of a known-answer file: label, 13 ints, 26 hex values, some missing."""
    label = str(i % 3 == 0 and 1 or 0)
    ints = ["" if (i + k) % 5 == 0 else str((i * 7 + k * 3) % 40 - 2) for k in range(13)]
    cats = ["" if (i + k) % 7 == 0 else f"{(i * 2654435761 + k * 40503) % 2**32:08x}"
            for k in range(26)]
    return [label, *ints, *cats]


def _tsv(n: int, *, edit: dict[int, str] | None = None) -> str:
    lines = ["\t".join(_values(i)) for i in range(n)]
    for lineno, text in (edit or {}).items():
        lines[lineno - 1] = text
    return "\n".join(lines) + "\n"


def _csv(n: int, *, edit: dict[int, str] | None = None) -> str:
    rows = []
    for i in range(n):
        v = _values(i)
        ints = [x if x == "" else f"{int(x)}.0" for x in v[1:14]]
        rows.append(",".join([v[0], *ints, *v[14:]]))
    lines = [CSV_HEADER, *rows]
    for lineno, text in (edit or {}).items():
        lines[lineno - 1] = text
    return "\n".join(lines) + "\n"


def _with(values: list[str], field: str, value: str) -> list[str]:
    out = list(values)
    out[[Columns.Label, *FIELDS].index(field)] = value
    return out


def _write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# ---------------------------------------------------------------------------- reading
def test_known_rows_read_as_written(tmp_path):
    path = _write(tmp_path, "t.txt", _tsv(30))
    frame, report = read_criteo(path)
    assert report.rows == 30 and report.skipped == 0
    assert list(frame.columns) == [Columns.Label, *FIELDS]
    for i in (0, 4, 7, 29):
        values = _values(i)
        assert frame[Columns.Label].iloc[i] == int(values[0])
        for k, name in enumerate(INT_FIELDS):
            raw = values[1 + k]
            got = frame[name].iloc[i]
            assert (pd.isna(got) if raw == "" else got == int(raw)), (i, name)
        for k, name in enumerate(CAT_FIELDS):
            raw = values[14 + k]
            got = frame[name].iloc[i]
            assert (pd.isna(got) if raw == "" else got == raw), (i, name)


def test_csv_and_tsv_layouts_give_the_same_table(tmp_path):
    tsv, _ = read_criteo(_write(tmp_path, "t.txt", _tsv(40)))
    csv, _ = read_criteo(_write(tmp_path, "c.txt", _csv(40)), fmt="csv")
    assert list(tsv.dtypes) == list(csv.dtypes)
    pd.testing.assert_frame_equal(tsv, csv)


def test_negative_and_float_written_integers(tmp_path):
    row = _with(_with(_values(1), "I2", "-3"), "I5", "17668")
    csv_row = _with(_with(_values(1), "I2", "-3.0"), "I5", "17668.00")
    csv_row[1:14] = [x if x == "" or "." in x else f"{x}.0" for x in csv_row[1:14]]
    tsv, _ = read_criteo(_write(tmp_path, "t.txt", "\t".join(row) + "\n"))
    csv, _ = read_criteo(_write(tmp_path, "c.txt", CSV_HEADER + "\n" + ",".join(csv_row) + "\n"),
                         fmt="csv")
    assert tsv["I2"].iloc[0] == -3 and csv["I2"].iloc[0] == -3
    assert tsv["I5"].iloc[0] == 17668 and csv["I5"].iloc[0] == 17668


def test_chunked_reading_equals_whole_file(tmp_path):
    path = _write(tmp_path, "t.txt", _tsv(300))
    whole, _ = read_criteo(path)
    chunks = list(iter_criteo(path, block_size=8192))
    assert len(chunks) > 5  # the small block size really splits the file
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_chunked_reading_equals_whole_file_csv(tmp_path):
    path = _write(tmp_path, "c.txt", _csv(200))
    whole, _ = read_criteo(path, fmt="csv")
    chunks = list(iter_criteo(path, fmt="csv", block_size=6000))
    assert len(chunks) > 5
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


def test_unknown_layout_is_refused(tmp_path):
    path = _write(tmp_path, "t.txt", _tsv(3))
    with pytest.raises(ValueError, match="unknown Criteo layout"):
        read_criteo(path, fmt="parquet")


# ---------------------------------------------------------------------------- tokens and hashing
def test_integer_tokens_follow_the_documented_bins(tmp_path):
    values = ["-2", "0", "1", "2", "3", "100", "", "7", "8", "20", "1000000", "54", "2"]
    row = [str(0), *values, *_values(0)[14:]]
    frame, _ = read_criteo(_write(tmp_path, "t.txt", "\t".join(row) + "\n"))
    names = token_names(frame, fields=INT_FIELDS).iloc[0].tolist()
    expected = []
    for name, text in zip(INT_FIELDS, values, strict=True):
        if text == "":
            expected.append(f"{name}=NA")
        elif int(text) <= 2:
            expected.append(f"{name}={int(text)}")
        else:
            expected.append(f"{name}=bin{math.floor(math.log(int(text)) ** 2)}")
    assert names == expected
    assert expected[5] == "I6=bin21"  # floor(ln(100)^2) = floor(21.2)


def test_categorical_tokens_and_missing(tmp_path):
    frame, _ = read_criteo(_write(tmp_path, "t.txt", _tsv(10)))
    names = token_names(frame, fields=CAT_FIELDS)
    for i in range(10):
        for k, name in enumerate(CAT_FIELDS):
            raw = _values(i)[14 + k]
            assert names[name].iloc[i] == f"{name}={raw or 'NA'}"


def test_tokens_of_arrow_nulls_that_hold_bytes():
    # Arrow lets a null slot keep bytes; those must neither shift nor leak into other rows.
    offsets = pa.py_buffer(np.array([0, 8, 16, 24], np.int64).tobytes())
    arr = pa.LargeStringArray.from_buffers(3, offsets, pa.py_buffer(b"0000000aXXXXXXXX0000000b"),
                                           pa.py_buffer(bytes([0b101])))
    frame = pd.DataFrame({"C1": pd.arrays.ArrowStringArray(arr)})
    assert token_names(frame, fields=("C1",))["C1"].tolist() == ["C1=0000000a", "C1=NA",
                                                                  "C1=0000000b"]
    sliced = pd.DataFrame({"C1": pd.arrays.ArrowStringArray(arr.slice(1))})
    assert token_names(sliced, fields=("C1",))["C1"].tolist() == ["C1=NA", "C1=0000000b"]


def _scalar_bucket(name: str, token_code: int, *, seed: int, n_hash: int) -> int:
    """The documented hash, one token at a time in Python integers (the oracle)."""
    mask = (1 << 64) - 1
    salt = int.from_bytes(hashlib.blake2b(f"recexp.criteo/{seed}/{name}".encode(),
                                          digest_size=8).digest(), "little")
    x = ((token_code ^ salt) + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) % n_hash


def _scalar_code(name: str, value) -> int:
    if pd.isna(value):
        return 1 << 62
    if name in CAT_FIELDS:
        return int(value, 16)
    v = int(value)
    if v > 2:
        return (1 << 32) + math.floor(math.log(v) ** 2)
    return v & ((1 << 64) - 1)


def test_hash_rows_matches_a_scalar_oracle(tmp_path):
    frame, _ = read_criteo(_write(tmp_path, "t.txt", _tsv(25)))
    n_hash = 97  # small, so collisions within a row happen and must add up
    matrix = hash_rows(frame, n_hash=n_hash, seed=3)
    assert isinstance(matrix, sp.csr_matrix) and matrix.dtype == np.float32
    assert matrix.shape == (25, n_hash)
    expected = np.zeros((25, n_hash), dtype=np.float32)
    for i in range(25):
        for name in FIELDS:
            code = _scalar_code(name, frame[name].iloc[i])
            expected[i, _scalar_bucket(name, code, seed=3, n_hash=n_hash)] += 1.0
    np.testing.assert_array_equal(matrix.toarray(), expected)
    np.testing.assert_array_equal(np.asarray(matrix.sum(axis=1)).ravel(), len(FIELDS))


def test_hashing_is_deterministic_and_seeded(tmp_path):
    frame, _ = read_criteo(_write(tmp_path, "t.txt", _tsv(20)))
    a = hash_rows(frame, n_hash=1 << 16)
    b = hash_rows(frame.copy(), n_hash=1 << 16)
    c = hash_rows(frame, n_hash=1 << 16, seed=1)
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0
    # Same values give the same row, whatever the row's position.
    doubled = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)
    d = hash_rows(doubled, n_hash=1 << 16)
    assert (d[20] != d[3]).nnz == 0


def test_hash_rows_refuses_bad_arguments(tmp_path):
    frame, _ = read_criteo(_write(tmp_path, "t.txt", _tsv(3)))
    with pytest.raises(ValueError, match="did you mean 'C12'"):
        hash_rows(frame, fields=("C1", "C12x"))
    with pytest.raises(ValueError, match="n_hash"):
        hash_rows(frame, n_hash=0)
    bad = frame.assign(C3=frame["C3"].str.upper())
    with pytest.raises(ValueError, match="C3"):
        hash_rows(bad, fields=("C3",))


# ---------------------------------------------------------------------------- keys and tables
def test_user_and_item_keys_from_chosen_fields(tmp_path):
    path = _write(tmp_path, "t.txt", _tsv(30))
    raw, _ = read_criteo(path)
    data = load_criteo(path, user=("C2", "C3"), item=("C5",), n_hash=None)
    inter = data.interactions
    assert list(inter.columns) == [Columns.User, Columns.Item, Columns.Label]
    assert data.row_features is None
    for i in range(30):
        c2, c3, c5 = raw["C2"].iloc[i], raw["C3"].iloc[i], raw["C5"].iloc[i]
        if pd.isna(c2) or pd.isna(c3):
            assert pd.isna(inter[Columns.User].iloc[i])
        else:
            assert inter[Columns.User].iloc[i] == f"{c2}|{c3}"
        assert (pd.isna(inter[Columns.Item].iloc[i]) if pd.isna(c5)
                else inter[Columns.Item].iloc[i] == c5)
    np.testing.assert_array_equal(inter[Columns.Label].to_numpy(), raw[Columns.Label].to_numpy())
    assert inter[Columns.User].isna().any()  # the known rows do have missing key parts


def test_hashed_ids_are_deterministic_and_match_string_ids(tmp_path):
    path = _write(tmp_path, "t.txt", _tsv(60) + _tsv(60))  # every key twice
    text = load_criteo(path, user=("C2", "C3"), item=("C5",), n_hash=None).interactions
    hashed = load_criteo(path, user=("C2", "C3"), item=("C5",), n_hash=None,
                         hash_ids=True).interactions
    again = load_criteo(path, user=("C2", "C3"), item=("C5",), n_hash=None, hash_ids=True,
                        block_size=4096).interactions
    seeded = load_criteo(path, user=("C2", "C3"), item=("C5",), n_hash=None, hash_ids=True,
                         seed=9).interactions
    assert str(hashed[Columns.User].dtype) == "Int64"
    pd.testing.assert_frame_equal(hashed, again)
    for col in (Columns.User, Columns.Item):
        np.testing.assert_array_equal(hashed[col].isna().to_numpy(), text[col].isna().to_numpy())
        known = text[col].notna().to_numpy()
        # The hash is a one-to-one relabelling of the string ids on this data.
        pairs = pd.DataFrame({"t": text[col][known].to_numpy(),
                              "h": hashed[col][known].to_numpy()}).drop_duplicates()
        assert pairs["t"].is_unique and pairs["h"].is_unique
        assert not (seeded[col][known].to_numpy() == hashed[col][known].to_numpy()).any()


def test_feature_tables_are_shares_of_impressions(tmp_path):
    base = _values(1)
    rows = [
        _with(_with(_with(base, "C1", "0000000a"), "C5", "000000aa"), "I1", "1"),
        _with(_with(_with(base, "C1", "0000000a"), "C5", "000000aa"), "I1", ""),
        _with(_with(_with(base, "C1", "0000000a"), "C5", "000000bb"), "I1", "1"),
        _with(_with(_with(base, "C1", "0000000b"), "C5", "000000bb"), "I1", "50"),
        _with(_with(base, "C1", ""), "C5", "000000cc"),  # no user: left out of the table
    ]
    path = _write(tmp_path, "t.txt", "\n".join("\t".join(r) for r in rows) + "\n")
    data = load_criteo(path, user=("C1",), item=("C2",), user_fields=("C5", "I1"), n_hash=64)
    table = data.user_features
    assert list(table.columns) == [Columns.User, Columns.Feature, Columns.Value]
    got = {(u, f): round(float(v), 6) for u, f, v in table.itertuples(index=False)}
    assert got == {
        ("0000000a", "C5=000000aa"): round(2 / 3, 6),
        ("0000000a", "C5=000000bb"): round(1 / 3, 6),
        ("0000000a", "I1=1"): round(2 / 3, 6),
        ("0000000a", "I1=NA"): round(1 / 3, 6),
        ("0000000b", "C5=000000bb"): 1.0,
        ("0000000b", f"I1=bin{math.floor(math.log(50) ** 2)}"): 1.0,
    }
    assert data.item_features is None


def test_feature_tables_do_not_depend_on_chunking(tmp_path):
    path = _write(tmp_path, "t.txt", _tsv(400))
    options = {"user": ("C1",), "item": ("C4",), "user_fields": ("C6", "I3"),
               "item_fields": ("C9",), "n_hash": 1 << 12}
    whole = load_criteo(path, **options)
    chunked = load_criteo(path, block_size=16384, **options)
    assert len(list(iter_criteo(path, block_size=16384))) > 3
    pd.testing.assert_frame_equal(whole.interactions, chunked.interactions)
    pd.testing.assert_frame_equal(whole.user_features, chunked.user_features)
    pd.testing.assert_frame_equal(whole.item_features, chunked.item_features)
    assert (whole.row_features != chunked.row_features).nnz == 0


def test_clicks_and_to_dataset(tmp_path):
    base = _values(2)
    rows = [
        _with(_with(_with(base, Columns.Label, "1"), "C1", "0000000a"), "C2", "000000aa"),
        _with(_with(_with(base, Columns.Label, "1"), "C1", "0000000a"), "C2", "000000aa"),
        _with(_with(_with(base, Columns.Label, "0"), "C1", "0000000a"), "C2", "000000bb"),
        _with(_with(_with(base, Columns.Label, "1"), "C1", "0000000b"), "C2", "000000bb"),
        _with(_with(_with(base, Columns.Label, "1"), "C1", ""), "C2", "000000bb"),
        _with(_with(_with(base, Columns.Label, "0"), "C1", "0000000c"), "C2", "000000cc"),
    ]
    path = _write(tmp_path, "t.txt", "\n".join("\t".join(r) for r in rows) + "\n")
    data = load_criteo(path, user=("C1",), item=("C2",), user_fields=("C5",),
                       item_fields=("C6",), n_hash=None)
    assert isinstance(data, CriteoData)
    clicks = data.clicks()
    got = {(u, i): w for u, i, w in clicks.itertuples(index=False)}
    assert got == {("0000000a", "000000aa"): 2.0, ("0000000b", "000000bb"): 1.0}
    ds = data.to_dataset()
    assert ds.n_interactions == 2
    assert set(ds.user_ids) == {"0000000a", "0000000b", "0000000c"}  # c: shown, never clicked
    assert set(ds.item_ids) == {"000000aa", "000000bb", "000000cc"}
    assert ds.user_features.shape[0] == 3


def test_stream_gives_the_loaded_data_chunk_by_chunk(tmp_path):
    first = _write(tmp_path, "a.txt", _tsv(150))
    second = _write(tmp_path, "b.txt", _tsv(90))
    options = {"user": ("C1",), "item": ("C2",), "n_hash": 256, "hash_ids": True}
    whole = load_criteo([first, second], **options)
    chunks = list(stream_criteo([first, second], block_size=8192, **options))
    assert len(chunks) > 3
    inter = pd.concat([c.interactions for c in chunks])
    np.testing.assert_array_equal(inter.index.to_numpy(), np.arange(240))
    pd.testing.assert_frame_equal(inter.reset_index(drop=True), whole.interactions)
    stacked = sp.vstack([c.row_features for c in chunks], format="csr")
    assert (stacked != whole.row_features).nnz == 0
    assert [r.rows for r in whole.reports] == [150, 90]


def test_no_valid_rows_in_skip_mode(tmp_path):
    bad = "\t".join(_with(_values(1), Columns.Label, "9"))
    path = _write(tmp_path, "bad.txt", "\n".join([bad] * 3) + "\n")
    with pytest.raises(BadInputError, match="no valid rows.*3 bad lines skipped"):
        load_criteo(path, on_bad_lines="skip")


def test_load_criteo_refuses_bad_options(tmp_path):
    path = _write(tmp_path, "t.txt", _tsv(3))
    with pytest.raises(ValueError, match="did you mean 'C3'"):
        load_criteo(path, item=("c3",))
    with pytest.raises(ValueError, match="unknown field 'I1'"):
        load_criteo(path, user=("I1",))
    with pytest.raises(TypeError, match="sequence of field names"):
        load_criteo(path, user="C1")
    with pytest.raises(ValueError, match="at least one"):
        load_criteo(path, item=())


# ---------------------------------------------------------------------------- bad input
# (name, layout, text with the bad line, line, field, value, reason fragment)
def _bad_cases():
    good = _values(1)
    short = "\t".join(good[:39])
    cases = [
        ("field count", "tsv", _tsv(8, edit={5: short}), 5, None, short, "expected 40 fields"),
        ("non-numeric integer", "tsv", _tsv(8, edit={4: "\t".join(_with(good, "I3", "abc"))}),
         4, "I3", "abc", "not an integer"),
        ("float in tsv integer", "tsv", _tsv(8, edit={3: "\t".join(_with(good, "I1", "2.0"))}),
         3, "I1", "2.0", "not an integer"),
        ("label not 0/1", "tsv", _tsv(8, edit={6: "\t".join(_with(good, Columns.Label, "2"))}),
         6, Columns.Label, "2", "above the largest"),
        ("label text", "tsv", _tsv(8, edit={2: "\t".join(_with(good, Columns.Label, "yes"))}),
         2, Columns.Label, "yes", "not an integer"),
        ("uppercase hex", "tsv", _tsv(8, edit={7: "\t".join(_with(good, "C4", "05DB9164"))}),
         7, "C4", "05DB9164", "does not match"),
        ("short hex", "tsv", _tsv(8, edit={8: "\t".join(_with(good, "C26", "5db9164"))}),
         8, "C26", "5db9164", "does not match"),
        ("not hex", "tsv", _tsv(8, edit={3: "\t".join(_with(good, "C1", "05db916g"))}),
         3, "C1", "05db916g", "does not match"),
        ("header in tsv", "tsv", _tsv(8, edit={1: "\t".join([Columns.Label, *FIELDS])}),
         1, Columns.Label, Columns.Label, "a header line?"),
        ("csv header in tsv", "tsv", _tsv(8, edit={1: CSV_HEADER}), 1, None, CSV_HEADER,
         "this format has no header line"),
        ("bom mid-file", "tsv", _tsv(8, edit={4: "\ufeff" + "\t".join(good)}), 4,
         Columns.Label, "\ufeff" + good[0], "not an integer"),
    ]
    csv_good = _csv(2).splitlines()[1].split(",")
    for name, field, value, reason in [
        ("csv non-integral", "I3", "2.5", "not an integer (integers may be written"),
        ("csv non-numeric", "I4", "abc", "not a number"),
        ("csv uppercase hex", "C2", "ABCDEF12", "does not match"),
        ("csv label", Columns.Label, "0.5", "not an integer"),
    ]:
        row = list(csv_good)
        row[[Columns.Label, *FIELDS].index(field)] = value
        cases.append((name, "csv", _csv(8, edit={6: ",".join(row)}), 6, field, value, reason))
    return cases


BAD_CASES = _bad_cases()


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_line_raises_with_line_field_and_value(tmp_path, case):
    _, fmt, text, line, field, value, reason = case
    path = _write(tmp_path, "bad.txt", text)
    with pytest.raises(BadInputError) as caught:
        read_criteo(path, fmt=fmt)
    err = caught.value
    assert (err.line, err.field, err.value) == (line, field, value)
    assert reason in str(err)
    assert f"line {line}" in str(err) and str(path) in str(err)
    if field is not None:
        assert repr(field) in str(err)
    # The chunked reader finds the same line, wherever the chunk boundaries fall.
    with pytest.raises(BadInputError) as chunked:
        list(iter_criteo(path, fmt=fmt, block_size=1024))
    assert (chunked.value.line, chunked.value.field) == (line, field)


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_line_is_skipped_and_reported(tmp_path, case):
    _, fmt, text, line, field, value, reason = case
    path = _write(tmp_path, "bad.txt", text)
    frame, report = read_criteo(path, fmt=fmt, on_bad_lines="skip")
    assert len(frame) == 7 and report.rows == 7
    assert report.skipped == 1
    assert report.examples[0].line == line
    assert reason in report.examples[0].reason
    chunks = list(iter_criteo(path, fmt=fmt, block_size=1024, on_bad_lines="skip"))
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), frame)


def test_bad_line_deep_in_a_chunked_file(tmp_path):
    bad = "\t".join(_with(_values(1), "C7", "zzzzzzzz"))
    path = _write(tmp_path, "bad.txt", _tsv(400, edit={377: bad}))
    with pytest.raises(BadInputError) as caught:
        list(iter_criteo(path, block_size=8192))
    assert (caught.value.line, caught.value.field, caught.value.value) == (377, "C7", "zzzzzzzz")
    data = load_criteo(path, block_size=8192, on_bad_lines="skip", n_hash=32)
    assert len(data.interactions) == 399 and data.skipped == 1
    assert data.reports[0].examples[0].line == 377
    assert data.row_features.shape == (399, 32)
    clean, _ = read_criteo(_write(tmp_path, "clean.txt", _tsv(400)))
    expected = clean.drop(index=376).reset_index(drop=True)
    np.testing.assert_array_equal(data.interactions[Columns.Label].to_numpy(),
                                  expected[Columns.Label].to_numpy())


def test_skip_mode_keeps_chunks_small_after_a_bad_line(tmp_path):
    # Regression: after falling back to the line reader, iter_delimited built one frame of
    # all remaining rows (its step was every row read so far), so memory was not bounded.
    bad = "\t".join(_with(_values(1), Columns.Label, "7"))
    path = _write(tmp_path, "bad.txt", _tsv(400, edit={40: bad}))
    fast = [len(c) for c in iter_criteo(_write(tmp_path, "ok.txt", _tsv(400)),
                                        block_size=8192)]
    chunks = [len(c) for c in iter_criteo(path, block_size=8192, on_bad_lines="skip")]
    assert sum(chunks) == 399
    assert max(chunks) <= max(fast)


def test_progress_bar_changes_nothing(tmp_path, capsys):
    path = _write(tmp_path, "t.txt", _tsv(20))
    quiet = load_criteo(path, n_hash=64, progress=False)
    shown = load_criteo(path, n_hash=64, progress=True)
    pd.testing.assert_frame_equal(quiet.interactions, shown.interactions)
    assert "t.txt" in capsys.readouterr().err  # the bar names the file


def test_invalid_bytes_named_in_both_modes(tmp_path):
    lines = _tsv(6).encode().split(b"\n")
    lines[2] = lines[2].replace(b"\t", b"\t\xff\xfe", 1)  # inside the I1 field of line 3
    path = _write(tmp_path, "bad.txt", b"\n".join(lines))
    with pytest.raises(BadInputError, match="line 3: .*bytes not valid utf-8") as caught:
        read_criteo(path)
    assert caught.value.line == 3
    assert "\xff\xfe" in caught.value.value  # shown as latin-1 text
    frame, report = read_criteo(path, on_bad_lines="skip")
    assert len(frame) == 5 and report.skipped == 1 and report.examples[0].line == 3


@pytest.mark.parametrize("mode", ["error", "skip"])
@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"],
                         ids=["empty", "blank lines", "bom only", "bom and crlf"])
def test_empty_file_raises_in_both_modes(tmp_path, mode, content):
    path = _write(tmp_path, "empty.txt", content)
    with pytest.raises(BadInputError, match="empty") as caught:
        read_criteo(path, on_bad_lines=mode)
    assert caught.value.path == str(path)
    with pytest.raises(BadInputError, match="empty"):
        load_criteo(path, on_bad_lines=mode)


@pytest.mark.parametrize("mode", ["error", "skip"])
def test_wrong_csv_header_raises_in_both_modes(tmp_path, mode):
    header = CSV_HEADER.replace("I13", "I14")
    path = _write(tmp_path, "c.txt", _csv(5, edit={1: header}))
    with pytest.raises(BadInputError, match="unexpected header") as caught:
        read_criteo(path, fmt="csv", on_bad_lines=mode)
    assert caught.value.line == 1 and caught.value.value == header
    # A TSV file read as the CSV layout is caught by its header line too.
    tsv = _write(tmp_path, "t.txt", _tsv(5))
    with pytest.raises(BadInputError, match="line 1: .*unexpected header"):
        read_criteo(tsv, fmt="csv", on_bad_lines=mode)


@pytest.mark.parametrize("mode", ["error", "skip"])
@pytest.mark.parametrize("fmt", ["tsv", "csv"])
def test_bom_and_crlf_are_read_like_the_plain_file(tmp_path, mode, fmt):
    text = _tsv(50) if fmt == "tsv" else _csv(50)
    plain, _ = read_criteo(_write(tmp_path, "plain.txt", text), fmt=fmt)
    bom = _write(tmp_path, "bom.txt", b"\xef\xbb\xbf" + text.encode())
    crlf = _write(tmp_path, "crlf.txt", text.replace("\n", "\r\n"))
    both = _write(tmp_path, "both.txt", b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    for path in (bom, crlf, both):
        frame, report = read_criteo(path, fmt=fmt, on_bad_lines=mode)
        pd.testing.assert_frame_equal(frame, plain)
        assert report.skipped == 0
        chunks = list(iter_criteo(path, fmt=fmt, on_bad_lines=mode, block_size=4096))
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), plain)


def test_no_final_newline_is_fine(tmp_path):
    text = _tsv(5)
    frame, _ = read_criteo(_write(tmp_path, "t.txt", text.rstrip("\n")))
    assert len(frame) == 5


# ---------------------------------------------------------------------------- registry
def test_registered_entries_describe_their_files():
    sample, dac = info("criteo-sample"), info("criteo-dac")
    assert sample.task == "ctr" and dac.task == "ctr"
    assert sample.source.folder == "criteo-sample"
    assert set(TSV_SAMPLES) | {CSV_SAMPLE} == set(sample.source.required)
    assert dac.source.folder == "criteo-dac" and dac.source.required == ("train.txt",)
    assert dac.source.remote is None  # no publisher checksum to verify a download against
    assert "train.txt" in dac.source.manual


def test_dac_without_files_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECEXP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="train.txt") as caught:
        fetch("criteo-dac")
    assert "criteo-dac" in str(caught.value) and "Criteo AI Lab" in str(caught.value)


def test_registered_loader_reads_a_folder(tmp_path):
    folder = tmp_path / "criteo-dac"
    folder.mkdir()
    (folder / "train.txt").write_text(_tsv(12))
    data = load("criteo-dac", path=folder, n_hash=16)
    assert data.name == "criteo-dac" and len(data.interactions) == 12
    assert data.row_features.shape == (12, 16)


# ---------------------------------------------------------------------------- real samples
def _plain_rows(path, sep: str, header: bool) -> list[list[str]]:
    """The oracle: the file split by hand, no parsing library."""
    lines = path.read_text().splitlines()
    return [line.split(sep) for line in lines[1 if header else 0:] if line]


@pytest.mark.realdata
@pytest.mark.parametrize("name", TSV_SAMPLES)
def test_real_tsv_samples(data_dir, name):
    path = data_dir / "criteo-sample" / name
    frame, report = read_criteo(path)
    assert len(frame) == 100 and report.skipped == 0
    assert frame[Columns.Label].value_counts().to_dict() == {0: 71, 1: 29}
    rows = _plain_rows(path, "\t", header=False)
    for j, name_ in enumerate([Columns.Label, *FIELDS]):
        empty = [r[j] == "" for r in rows]
        np.testing.assert_array_equal(frame[name_].isna().to_numpy(), empty, err_msg=name_)
    assert frame[list(INT_FIELDS)].isna().to_numpy().any()  # missing values really occur
    assert frame[list(CAT_FIELDS)].isna().to_numpy().any()
    for j, name_ in enumerate(INT_FIELDS, start=1):
        expected = pd.array([int(r[j]) if r[j] else None for r in rows], dtype="Int64")
        pd.testing.assert_extension_array_equal(frame[name_].array, expected)


@pytest.mark.realdata
def test_real_csv_sample(data_dir):
    path = data_dir / "criteo-sample" / CSV_SAMPLE
    frame, report = read_criteo(path, fmt="csv")
    assert len(frame) == 200 and report.skipped == 0
    assert frame[Columns.Label].value_counts().to_dict() == {0: 151, 1: 49}
    rows = _plain_rows(path, ",", header=True)
    for j, name in enumerate(INT_FIELDS, start=1):
        expected = pd.array([int(float(r[j])) if r[j] else None for r in rows], dtype="Int64")
        pd.testing.assert_extension_array_equal(frame[name].array, expected)
    for j, name in enumerate(CAT_FIELDS, start=14):
        np.testing.assert_array_equal(frame[name].isna().to_numpy(), [r[j] == "" for r in rows])
    tsv, _ = read_criteo(data_dir / "criteo-sample" / TSV_SAMPLES[0])
    assert list(frame.columns) == list(tsv.columns)
    assert list(frame.dtypes) == list(tsv.dtypes)


@pytest.mark.realdata
def test_real_samples_through_the_registry(data_dir):
    data = load("criteo-sample", download=False)
    assert isinstance(data, CriteoData)
    assert len(data.interactions) == 200
    assert data.interactions[Columns.Label].value_counts().to_dict() == {0: 142, 1: 58}
    assert data.row_features.shape == (200, 1 << 20)
    np.testing.assert_array_equal(np.asarray(data.row_features.sum(axis=1)).ravel(), 39)
    assert [r.rows for r in data.reports] == [100, 100]
    csv = load("criteo-sample", download=False, variant="csv", user_fields=("C5",))
    assert len(csv.interactions) == 200
    assert csv.interactions[Columns.Label].value_counts().to_dict() == {0: 151, 1: 49}
    assert list(csv.interactions.dtypes) == list(data.interactions.dtypes)
    assert csv.user_features is not None
    shares = csv.user_features.groupby(Columns.User)[Columns.Value].sum()
    np.testing.assert_allclose(shares.to_numpy(), 1.0, rtol=1e-6)


@pytest.mark.realdata
def test_real_sample_chunked_equals_whole(data_dir):
    options = {"user": ("C1",), "item": ("C3",), "user_fields": ("C5", "I2"), "n_hash": 1 << 10}
    whole = load("criteo-sample", download=False, **options)
    chunked = load("criteo-sample", download=False, block_size=4096, **options)
    pd.testing.assert_frame_equal(whole.interactions, chunked.interactions)
    pd.testing.assert_frame_equal(whole.user_features, chunked.user_features)
    assert (whole.row_features != chunked.row_features).nnz == 0
    frames = [read_criteo(data_dir / "criteo-sample" / n)[0] for n in TSV_SAMPLES]
    both = pd.concat(frames, ignore_index=True)
    assert (hash_rows(both, n_hash=1 << 10) != whole.row_features).nnz == 0
