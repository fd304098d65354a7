"""The strict reader: fast path and exact path agree; bad lines are named precisely."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recexp.datasets._parse import BadInputError, Field, iter_delimited, read_delimited

FIELDS = [Field("u", "int", low=0), Field("i", "int", low=0),
          Field("r", "float", low=1, high=5), Field("t", "epoch", low=0)]


def write(tmp_path, text: str | bytes, name: str = "f.tsv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_reads_types_and_values(tmp_path):
    path = write(tmp_path, "1\t2\t3\t100\n4\t5\t4.5\t200\n")
    frame, report = read_delimited(path, FIELDS, delimiter="\t")
    assert report.rows == 2 and report.skipped == 0
    assert frame["u"].tolist() == [1, 4]
    assert frame["r"].dtype == "float32" and frame["r"].tolist() == [3.0, 4.5]
    assert frame["t"].dtype == "datetime64[s]"
    assert frame["t"].iloc[1] == pd.Timestamp(200, unit="s")


@pytest.mark.parametrize(
    ("text", "line", "field", "value", "words"),
    [
        ("1\t2\t3\t100\n1\t2\t3\n", 2, None, "1\t2\t3", "expected 4 fields"),
        ("1\t2\t3\t100\n1\t2\tgood\t100\n", 2, "r", "good", "not a number"),
        ("1\t2\t3\t100\n1\t2\t7\t100\n", 2, "r", "7", "above"),
        ("1\t2\t3\t100\n1\t2\t3\tyesterday\n", 2, "t", "yesterday", "not an integer"),
        ("1\t2\t3\t100\n\t2\t3\t100\n", 2, "u", "", "missing value"),
        ("1\t2\t3\t100\n1\t2\tnan\t100\n", 2, "r", "nan", "finite"),
        ("user\titem\trating\tts\n1\t2\t3\t100\n", 1, "u", "user", "header"),
    ],
)
@pytest.mark.parametrize("fast", [True, False])
def test_bad_line_is_named(tmp_path, text, line, field, value, words, fast):
    path = write(tmp_path, text)
    with pytest.raises(BadInputError) as info:
        read_delimited(path, FIELDS, delimiter="\t", fast=fast)
    err = info.value
    assert (err.line, err.field, err.value) == (line, field, value)
    assert str(path) in str(err) and f"line {line}" in str(err) and words in str(err)


def test_skip_mode_reports_count_and_examples(tmp_path):
    lines = ["1\t2\t3\t100"] * 3 + ["x\t2\t3\t100", "1\t2\t9\t100", "1\t2"] + ["2\t3\t4\t5"]
    path = write(tmp_path, "\n".join(lines) + "\n")
    frame, report = read_delimited(path, FIELDS, delimiter="\t", on_bad_lines="skip")
    assert len(frame) == 4 and report.rows == 4 and report.skipped == 3
    assert [b.line for b in report.examples] == [4, 5, 6]
    assert "3 bad lines skipped" in report.summary()


def test_invalid_bytes_name_the_line(tmp_path):
    path = write(tmp_path, b"1,ok\n2,caf\xe9\n", "f.csv")
    fields = [Field("id", "int"), Field("name", "str")]
    with pytest.raises(BadInputError, match=r"line 2: .*not valid utf-8"):
        read_delimited(path, fields)
    frame, _ = read_delimited(path, fields, encoding="latin-1")
    assert frame["name"].tolist() == ["ok", "café"]


def test_empty_file_and_blank_file(tmp_path):
    for content in (b"", b"\n\n", b"\xef\xbb\xbf"):
        path = write(tmp_path, content)
        with pytest.raises(BadInputError, match="empty"):
            read_delimited(path, FIELDS, delimiter="\t")


def test_bom_and_crlf_are_accepted(tmp_path):
    plain = write(tmp_path, "1\t2\t3\t100\n4\t5\t4\t200\n", "a.tsv")
    odd = write(tmp_path, b"\xef\xbb\xbf1\t2\t3\t100\r\n4\t5\t4\t200\r\n", "b.tsv")
    for fast in (True, False):
        a, _ = read_delimited(plain, FIELDS, delimiter="\t", fast=fast)
        b, _ = read_delimited(odd, FIELDS, delimiter="\t", fast=fast)
        pd.testing.assert_frame_equal(a, b)


def test_header_checked(tmp_path):
    path = write(tmp_path, "a,b\n1,2\n", "h.csv")
    fields = [Field("a", "int"), Field("b", "int")]
    assert read_delimited(path, fields, header=("a", "b"))[0]["b"].tolist() == [2]
    with pytest.raises(BadInputError, match=r"line 1: .*unexpected header.*expected 'x,b'"):
        read_delimited(path, fields, header=("x", "b"))


def test_iter_matches_read_and_resumes_after_bad_block(tmp_path):
    lines = [f"{u}\t{u % 7}\t{1 + u % 5}\t{1000 + u}" for u in range(5000)]
    lines[4000] = "1\t2\tbad\t3"
    path = write(tmp_path, "\n".join(lines) + "\n")
    whole, report = read_delimited(path, FIELDS, delimiter="\t", on_bad_lines="skip")
    parts = list(iter_delimited(path, FIELDS, delimiter="\t", on_bad_lines="skip",
                                block_size=1 << 12))
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert report.skipped == 1 and len(whole) == 4999
    with pytest.raises(BadInputError, match="line 4001"):
        list(iter_delimited(path, FIELDS, delimiter="\t", block_size=1 << 12))


row = st.tuples(st.integers(0, 10**9), st.integers(0, 10**6),
                st.sampled_from([1.0, 1.5, 2.0, 3.5, 5.0]), st.integers(0, 2**31))


@settings(max_examples=40, deadline=None)
@given(st.lists(row, min_size=1, max_size=50))
def test_fast_and_exact_paths_agree(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("p") / "f.tsv"
    path.write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    fast, _ = read_delimited(path, FIELDS, delimiter="\t")
    slow, _ = read_delimited(path, FIELDS, delimiter="\t", fast=False)
    pd.testing.assert_frame_equal(fast, slow)


# A format with a text field keeps pyarrow's fast path even though its files contain blanks.
TITLED = [Field("id", "int", low=0), Field("title", "str"), Field("r", "float", low=1, high=5),
          Field("day", "date", nullable=True)]


def read_both(path, fields, **kwargs):
    """The fast reader, the streaming reader and the exact reader, each as a frame or an error."""
    out = []
    for how in ("fast", "iter", "exact"):
        try:
            if how == "iter":
                parts = list(iter_delimited(path, fields, block_size=1 << 10, **kwargs))
                if not parts:  # the stream yields nothing where read_delimited raises
                    raise BadInputError(path, None, "no valid rows")
                out.append(pd.concat(parts, ignore_index=True))
            else:
                out.append(read_delimited(path, fields, fast=how == "fast", **kwargs)[0])
        except BadInputError as exc:
            out.append((exc.line, exc.field, exc.value, exc.reason))
    return out


def assert_agree(got):
    """Every path gave the same frame, or the same error; return that error (or None)."""
    frames = [isinstance(g, pd.DataFrame) for g in got]
    assert frames == [frames[-1]] * len(got), got
    if frames[-1]:
        for frame in got[:-1]:
            pd.testing.assert_frame_equal(frame, got[-1])
        return None
    assert got[0] == got[1] == got[2]
    return got[0]


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("1|Toy Story|3|\n2|Heat| 4|\n", "r", " 4"),
        ("1|Toy Story|3|\n2|Heat|4 |\n", "r", "4 "),
        ("1|Toy Story|3|\n2|Heat|\t4|\n", "r", "\t4"),
        ("1|Toy Story|3|\n 2|Heat|4|\n", "id", " 2"),
        ("1|Toy Story|3|\n2 |Heat|4|\n", "id", "2 "),
        ("1|Toy Story|3|\n2|Heat|4|1995-12-15 \n", "day", "1995-12-15 "),
        ("1|Toy Story|3|\n2|Heat|4|1995-12-15 \r\n", "day", "1995-12-15 "),
    ],
)
def test_padded_number_beside_text_is_refused_by_every_path(tmp_path, text, field, value):
    # Regression: pyarrow trimmed the blanks and accepted the line; the exact reader refused it.
    path = write(tmp_path, text, "f.psv")
    got = read_both(path, TITLED, delimiter="|")
    assert assert_agree(got) == (2, field, value, "blank space around a value")


def test_padded_number_in_quoted_csv_is_refused(tmp_path):
    path = write(tmp_path, 'id,title,r,day\n1,"Heat, The",3,\n2,"Up",4 ,\n', "f.csv")
    got = read_both(path, TITLED, quoted=True, header=("id", "title", "r", "day"))
    assert assert_agree(got) == (3, "r", "4 ", "blank space around a value")


def test_blanks_at_the_edges_of_text_are_kept(tmp_path):
    path = write(tmp_path, "1| Toy Story |3|\n2|\tHeat|4.5|1995-12-15\n", "f.psv")
    got = read_both(path, TITLED, delimiter="|")
    assert assert_agree(got) is None
    assert got[0]["title"].tolist() == [" Toy Story ", "\tHeat"]


@pytest.mark.parametrize(
    ("text", "fields", "kwargs"),
    [
        ("1\t2\t3\t100\n1\t2\t3\t100\r4\t5\t4\t200\n", FIELDS, {"delimiter": "\t"}),
        ("1|Up|3|\n2|Heat|4|\r3|Jaws|5|\n", TITLED, {"delimiter": "|"}),
        ("1|Up|3|\n2|Heat\rJaws|4|\n", TITLED, {"delimiter": "|"}),
        ('1,Up,3,\n2,"Heat",4,\r3,Jaws,5,\n', TITLED, {"quoted": True}),
    ],
)
def test_bare_carriage_return_inside_a_line_is_named(tmp_path, text, fields, kwargs):
    # Regression: pyarrow ended a row at a lone \r and read two rows where the exact reader saw
    # one line (and a quoted line made Python's csv module raise its own error).
    path = write(tmp_path, text)
    line, _, _, reason = assert_agree(read_both(path, fields, **kwargs))
    assert line == 2 and "carriage return" in reason


def test_carriage_returns_at_line_ends_are_accepted(tmp_path):
    plain = write(tmp_path, "1|Up|3|\n2|Heat|4|\n", "a.psv")
    odd = write(tmp_path, "1|Up|3|\r\r\n2|Heat|4|\r", "b.psv")
    for a, b in zip(read_both(plain, TITLED, delimiter="|"), read_both(odd, TITLED, delimiter="|"),
                    strict=True):
        pd.testing.assert_frame_equal(a, b)


number = st.sampled_from(["1", "2", "3.5", "5", "", "x"])
pad = st.sampled_from(["", "", "", " ", "\t"])
text = st.text(alphabet=" \tab,|\r", max_size=6)
line = st.tuples(pad, st.sampled_from(["0", "7", "12"]), pad, text, pad, number, pad,
                 st.sampled_from(["", "2001-02-03"]), pad, st.sampled_from(["\n", "\r\n", "\r"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(line, min_size=1, max_size=8))
def test_every_path_agrees_on_blanks_and_carriage_returns(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("p") / "f.psv"
    path.write_text("".join(f"{a}{i}{b}|{t}|{c}{r}{d}|{day}{f}{end}"
                            for a, i, b, t, c, r, d, day, f, end in lines), newline="")
    for on_bad_lines in ("error", "skip"):
        assert_agree(read_both(path, TITLED, delimiter="|", on_bad_lines=on_bad_lines))
