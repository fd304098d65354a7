"""The recommendation service on the real MovieLens 100K: bundle, MLflow pyfunc, REST, privacy.

One small hybrid LightFM (occupation, age and gender user features; 10% of the users held out
entirely, so the training Dataset knows cold users by id) is fitted once. A cold user the model
knows by id and a *new* user sent with the same attributes must get the same list: that is the
oracle for scoring unknown users from their features.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recexp import serving, tracking
from recexp.columns import Columns
from recexp.features import build_features
from recexp.models.baselines import MostPopular
from recexp.models.lightfm import LightFMRecommender
from recexp.preprocess import preprocess
from recexp.serving import RecommenderBundle, RequestError, ServiceConfigError
from recexp.split import make_splitter

pytestmark = [pytest.mark.realdata]

USER_SPEC = [{"kind": "multi_hot", "column": "occupation"},
             {"kind": "bucket", "column": "age", "edges": [18, 25, 35, 45, 55]},
             {"kind": "multi_hot", "column": "gender"}]
ATTRIBUTES = ["occupation", "age", "gender"]


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def hybrid(ml100k):
    """(model, dataset, split, users table, bundle): LightFM with user features."""
    interactions, _ = preprocess(ml100k.interactions, [{"step": "to_implicit", "threshold": 4}])
    users = ml100k.users[ml100k.users[Columns.User].isin(interactions[Columns.User].unique())]
    users = users.reset_index(drop=True)
    dataset = build_features({"user": USER_SPEC}, users=users).to_dataset(
        interactions, identity_features=True, normalize_features=True)
    split = make_splitter({"kind": "cold_start", "user_ratio": 0.1, "item_ratio": 0.0,
                           "warm_ratio": 0.2, "seed": 3}).split(dataset)
    model = LightFMRecommender(no_components=16, epochs=5, use_features="both",
                               random_state=0).fit(split.train)
    bundle = RecommenderBundle.from_training(model, dataset, feature_spec=USER_SPEC, users=users)
    return model, dataset, split, users, bundle


@pytest.fixture(scope="module")
def warm_users(hybrid):
    model, dataset, split, _, _ = hybrid
    trained = np.unique(split.train.user_idx)
    return dataset.users.to_external(trained[:40])


@pytest.fixture(scope="module")
def cold_users(hybrid):
    """Users the model knows by id but who have no training interactions."""
    _, dataset, split, _, _ = hybrid
    cold = np.setdiff1d(np.arange(dataset.n_users), np.unique(split.train.user_idx))
    assert len(cold) > 20
    return dataset.users.to_external(cold[:30])


def new_users_like(users: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """Requests for never-seen ids carrying the attributes of ``ids`` (ages as floats)."""
    attrs = users.set_index(Columns.User).loc[ids, ATTRIBUTES].reset_index(drop=True)
    attrs["age"] = attrs["age"].astype(float)
    return pd.concat([pd.DataFrame({Columns.User: [f"new-{u}" for u in ids]}), attrs], axis=1)


@pytest.fixture(scope="module")
def users_like_cold(hybrid, cold_users):
    """Requests for new ids with the attributes of 10 cold users."""
    return new_users_like(hybrid[3], cold_users[:10])


@pytest.fixture(scope="module")
def logged(store, hybrid):
    """The hybrid model logged as a pyfunc in a tracked run: its ``runs:/`` URI."""
    model, dataset, _, users, _ = hybrid
    with tracking.tracked_run("serving-hybrid", experiment="test-serving") as run:
        info = serving.log_pyfunc(model, dataset, feature_spec=USER_SPEC, users=users,
                                  config={"name": "test-serving",
                                          "features": {"user": USER_SPEC}})
    assert info.model_uri.startswith("models:/")
    return f"runs:/{run.info.run_id}/model"


@pytest.fixture(scope="module")
def pyfunc(logged):
    import mlflow

    return mlflow.pyfunc.load_model(logged)


# ---------------------------------------------------------------------------------- bundle
def assert_lists_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(got) == len(expected)
    np.testing.assert_array_equal(got[Columns.Item].to_numpy(),
                                  expected[Columns.Item].to_numpy())
    np.testing.assert_array_equal(got[Columns.Rank].to_numpy(),
                                  expected[Columns.Rank].to_numpy())
    np.testing.assert_allclose(got[Columns.Score].to_numpy(),
                               expected[Columns.Score].to_numpy(), rtol=1e-6, atol=1e-6)


def test_bundle_round_trip_gives_identical_recommendations(hybrid, warm_users, cold_users,
                                                           tmp_path):
    _, _, _, users, bundle = hybrid
    request = pd.concat([pd.DataFrame({Columns.User: [str(u) for u in warm_users]}),
                         new_users_like(users, cold_users),
                         pd.DataFrame({Columns.User: ["nobody"]})], ignore_index=True)
    folder = bundle.save(tmp_path / "bundle")
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "bundle.json", "model"]
    loaded = RecommenderBundle.load(folder)
    pd.testing.assert_frame_equal(loaded.recommend(request, k=10), bundle.recommend(request, k=10))
    assert loaded.input_columns == {Columns.User: "string", "occupation": "string",
                                    "age": "double", "gender": "string"}
    # No pickle anywhere: every array reads back with allow_pickle=False.
    for npz in folder.rglob("*.npz"):
        with np.load(npz, allow_pickle=False) as arrays:
            for name in arrays.files:
                assert arrays[name].dtype != object


def test_known_users_get_the_in_process_list(hybrid, warm_users):
    model, _, _, _, bundle = hybrid
    for exclude_seen in (True, False):
        got = bundle.recommend([str(u) for u in warm_users], k=10, exclude_seen=exclude_seen)
        expected = model.recommend(warm_users, k=10, exclude_seen=exclude_seen)
        assert_lists_equal(got, expected)
        assert got[Columns.User].tolist() == [str(u) for u in expected[Columns.User]]
        assert not got["fallback"].any() and set(got["reason"]) == {"known_user"}


def test_new_user_with_features_is_scored_like_a_known_cold_user(hybrid, cold_users):
    model, _, _, users, bundle = hybrid
    got = bundle.recommend(new_users_like(users, cold_users), k=10)
    assert_lists_equal(got, model.recommend(cold_users, k=10))
    assert not got["fallback"].any() and set(got["reason"]) == {"user_features"}
    # Different attributes, different lists: the features are really used.
    assert got.groupby(Columns.User, sort=False)[Columns.Item].apply(tuple).nunique() > 1


def test_unknown_users_without_usable_features_get_popularity(hybrid):
    _, _, split, _, bundle = hybrid
    request = pd.DataFrame({Columns.User: ["ghost", "astronaut-fan", "blank"],
                            "occupation": [None, "astronaut", None],
                            "age": [np.nan, np.nan, np.nan]})
    got = bundle.recommend(request, k=5)
    popular = MostPopular().fit(split.train)
    cold_user = split.train.users.to_external(
        np.setdiff1d(np.arange(split.train.n_users), split.train.user_idx)[:1])
    expected = popular.recommend(cold_user, k=5)  # no seen items: the plain popularity list
    for user in ("ghost", "astronaut-fan", "blank"):
        mine = got[got[Columns.User] == user]
        assert_lists_equal(mine, expected)
        assert mine["fallback"].all()
    reasons = got.groupby(Columns.User)["reason"].first()
    assert reasons.to_dict() == {"ghost": "no_features", "astronaut-fan": "unknown_features",
                                 "blank": "no_features"}


def test_a_model_without_user_features_takes_only_ids(hybrid):
    _, _, split, _, _ = hybrid
    model = MostPopular().fit(split.train)
    bundle = RecommenderBundle.from_training(model, split.train, feature_spec=USER_SPEC)
    assert bundle.encoder is None and bundle.input_columns == {Columns.User: "string"}
    with pytest.raises(RequestError, match="unknown request column"):
        bundle.recommend(pd.DataFrame({Columns.User: ["1"], "occupation": ["doctor"]}))
    got = bundle.recommend(["1", "zzz"], k=3)
    assert got.groupby(Columns.User, sort=False)["reason"].first().tolist() == [
        "known_user", "no_features"]


def test_a_hybrid_bundle_needs_the_users_table(hybrid):
    model, dataset, _, users, _ = hybrid
    with pytest.raises(ValueError, match="users attribute table"):
        RecommenderBundle.from_training(model, dataset, feature_spec=USER_SPEC)
    other = [{"kind": "multi_hot", "column": "occupation"}]
    with pytest.raises(ValueError, match="not produced by the feature spec"):
        RecommenderBundle.from_training(model, dataset, feature_spec=other, users=users)


@pytest.mark.parametrize(("request_frame", "params", "message"), [
    (pd.DataFrame({"userid": ["1"]}), {}, "no 'user_id' column.*should 'userid' be 'user_id'"),
    (pd.DataFrame({Columns.User: ["1"], "ocupation": ["x"]}), {},
     "unknown request column.*'ocupation'.*did you mean 'occupation'"),
    (pd.DataFrame({Columns.User: ["1", None]}), {}, "user_id is missing in row 1"),
    (pd.DataFrame({Columns.User: [196, None]}), {}, "user_id is missing in row 1"),
    (pd.DataFrame({Columns.User: [1.5]}), {}, "user_id must be text.*got float in row 0"),
    (["1", True], {}, "user_id must be text.*got bool in row 1"),
    (pd.DataFrame({Columns.User: [""]}), {}, "user_id is empty"),
    (pd.DataFrame([["1", "2"]], columns=[Columns.User, Columns.User]), {}, "more than once"),
    (pd.DataFrame({Columns.User: ["new"], "age": ["old"]}), {},
     "age must be a number, got 'old' in row 0"),
    (pd.DataFrame({Columns.User: ["a", "b"], "age": [30, True]}), {},
     "age must be a number, got bool in row 1"),
    (pd.DataFrame({Columns.User: ["new"], "occupation": [1.5]}), {},
     "occupation must be text, got float in row 0"),
    (pd.DataFrame({Columns.User: ["1"]}), {"k": 0}, "k must be an integer from 1 to 1000"),
    (pd.DataFrame({Columns.User: ["1"]}), {"k": -3}, "k must be an integer"),
    (pd.DataFrame({Columns.User: ["1"]}), {"k": 1001}, "capped at 1,000"),
    (pd.DataFrame({Columns.User: ["1"]}), {"k": "5"}, "k must be an integer"),
    (pd.DataFrame({Columns.User: ["1"]}), {"k": True}, "k must be an integer"),
    (pd.DataFrame({Columns.User: ["1"]}), {"exclude_seen": "yes"}, "exclude_seen"),
    ({"user": 1}, {}, "a request is a table"),
])
def test_bad_requests_are_refused_with_a_message(hybrid, request_frame, params, message):
    bundle = hybrid[4]
    with pytest.raises(RequestError, match=message):
        bundle.recommend(request_frame, **params)


def test_refusals_never_quote_user_ids(hybrid):
    """Ids are sensitive (pseudonymised at training): a refusal names rows, not values."""
    bundle = hybrid[4]
    secret = "secret-id-7f3a"
    requests = [pd.DataFrame({Columns.User: [secret, None]}),
                pd.DataFrame({Columns.User: [secret, 2.5]}),
                [secret, ["nested"]],
                pd.DataFrame({Columns.User: [secret], "colour": ["red"]}),
                pd.DataFrame({Columns.User: [secret], "age": ["old"]})]
    for request in requests:
        with pytest.raises(RequestError) as err:
            bundle.recommend(request)
        assert secret not in str(err.value) and "nested" not in str(err.value)
    with pytest.raises(RequestError) as err:
        bundle.recommend([secret], k=0)
    assert secret not in str(err.value)


def test_attribute_values_are_typed_as_the_model_reads_them(hybrid, users_like_cold):
    """Numbers as text and integer ages (as JSON and CSV bring them) score like floats."""
    bundle = hybrid[4]
    request = users_like_cold
    as_text = request.assign(age=request["age"].map(lambda a: None if a != a else f"{a:g}"))
    as_int = request.assign(age=request["age"].astype("Int64").astype(object)
                            .where(request["age"].notna(), None))
    expected = bundle.recommend(request, k=5)
    assert set(expected["reason"]) == {"user_features"}
    for variant in (as_text, as_int):
        pd.testing.assert_frame_equal(bundle.recommend(variant, k=5), expected)


def test_k_above_the_catalogue_is_refused(hybrid):
    model = hybrid[0]
    small = RecommenderBundle(model, max_k=5000)
    with pytest.raises(RequestError, match=f"from 1 to {model.n_items}"):
        small.recommend(["1"], k=model.n_items + 1)
    assert len(small.recommend(["nobody"], k=model.n_items)) == model.n_items


def test_too_many_users_in_one_request(hybrid):
    small = RecommenderBundle(hybrid[0], max_users=3)
    with pytest.raises(RequestError, match="4 users in one request; the limit is 3"):
        small.recommend(["1", "2", "3", "4"])


def test_feature_encoder_json_round_trip_for_every_builder_kind(ml100k, tmp_path):
    """MultiHot, learned Buckets, TF-IDF and hashing: the JSON state transforms as the fit."""
    users = ml100k.users
    spec = [{"kind": "multi_hot", "column": "occupation", "min_count": 5, "missing": "bucket"},
            {"kind": "bucket", "column": "age", "n_bins": 4},
            {"kind": "tfidf", "column": "zip", "token_pattern": r"(?u)\b\w+\b",
             "min_df": 2},
            {"kind": "hash", "column": ["gender", "zip_prefix"], "n_features": 64}]
    dataset = build_features({"user": spec}, users=users).to_dataset(
        ml100k.interactions.head(5000), identity_features=False)
    encoder = serving.UserFeatureEncoder.fit(spec, users, dataset)
    data = json.loads(json.dumps(encoder.to_json()))
    np.savez(tmp_path / "maps.npz", **encoder.arrays())
    with np.load(tmp_path / "maps.npz", allow_pickle=False) as npz:
        restored = serving.UserFeatureEncoder.from_json(data, {k: npz[k] for k in npz.files})
    sample = users.sample(200, random_state=0).reset_index(drop=True)
    sample.loc[:5, "occupation"] = None
    before, given = encoder.transform(sample)
    after, given_after = restored.transform(sample)
    assert (before != after).nnz == 0 and (given == given_after).all()
    # The rows are the Dataset's own feature rows for those users.
    rows = dataset.users.to_internal(sample[Columns.User].iloc[6:])
    expected = dataset.user_features[rows]
    np.testing.assert_allclose(before[6:].toarray(), expected.toarray(), rtol=1e-6)


# ---------------------------------------------------------------------------------- MLflow
def test_pyfunc_predictions_equal_in_process_recommend(pyfunc, hybrid, warm_users, cold_users):
    model, _, _, users, bundle = hybrid
    known = pd.DataFrame({Columns.User: [str(u) for u in warm_users]})
    got = pyfunc.predict(known, params={"k": 7})
    assert_lists_equal(got, model.recommend(warm_users, k=7))
    assert list(got.columns) == [Columns.User, Columns.Item, Columns.Score, Columns.Rank,
                                 "fallback", "reason"]
    mixed = pd.concat([new_users_like(users, cold_users), known], ignore_index=True)
    pd.testing.assert_frame_equal(pyfunc.predict(mixed, params={"k": 10, "exclude_seen": False}),
                                  bundle.recommend(mixed, k=10, exclude_seen=False))
    # Defaults from the signature: k=10, exclude_seen=True.
    assert_lists_equal(pyfunc.predict(known), model.recommend(warm_users, k=10))


def test_pyfunc_signature_and_no_pickle(pyfunc, logged):
    import mlflow

    signature = pyfunc.metadata.signature
    # No input schema (MLflow would drop undeclared columns); the inputs are in the metadata.
    assert signature.inputs is None
    assert pyfunc.metadata.metadata["recexp_inputs"] == {
        Columns.User: "string", "occupation": "string", "age": "double", "gender": "string"}
    assert signature.outputs.input_names() == [Columns.User, Columns.Item, Columns.Score,
                                               Columns.Rank, "fallback", "reason"]
    params = {p.name: (p.dtype.name, p.default) for p in signature.params.params}
    assert params == {"k": ("long", 10), "exclude_seen": ("boolean", True)}
    local = Path(mlflow.artifacts.download_artifacts(logged))
    names = {p.name for p in local.rglob("*")}
    assert "recexp_service.py" in names and "bundle.json" in names
    assert not [n for n in names if n.endswith((".pkl", ".pickle"))]


def test_pyfunc_bad_requests_are_invalid_parameter_errors(pyfunc):
    from mlflow.exceptions import MlflowException

    frame = pd.DataFrame({Columns.User: ["1"]})
    for params in ({"k": 0}, {"k": 100_000}, {"k": "ten"}, {"exclude_seen": "maybe"}):
        with pytest.raises(MlflowException) as err:
            pyfunc.predict(frame, params=params)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE", params
        assert err.value.get_http_status_code() == 400
    refusals = [(pd.DataFrame({"uid": ["1"]}), "no 'user_id' column.*should 'uid' be"),
                (pd.DataFrame({Columns.User: ["1"], "colour": ["red"]}),
                 "unknown request column.*'colour'; this model takes user_id, occupation, "
                 "age, gender"),
                ({Columns.User: ["1", "2"], "age": [30.0]}, "one value per user")]
    for request, message in refusals:
        with pytest.raises(MlflowException, match=message) as err:
            pyfunc.predict(request)
        assert err.value.get_http_status_code() == 400
        # The message is kept as written: the scoring server's rewrite (which would quote
        # the request table) does not stick.
        written = err.value.message
        err.value.message = f"Failed to predict data '{request}'. \nError: {written}"
        assert json.loads(err.value.serialize_as_json())["message"] == written


def test_an_unexpected_error_is_a_500_without_trace_or_request(pyfunc, monkeypatch):
    from mlflow.exceptions import MlflowException

    bundle = pyfunc.unwrap_python_model().bundle

    def broken(*args, **kwargs):
        raise ZeroDivisionError("secret-ish internals")

    monkeypatch.setattr(bundle, "recommend", broken)
    with pytest.raises(MlflowException) as err:
        pyfunc.predict(pd.DataFrame({Columns.User: ["196"]}))
    assert err.value.get_http_status_code() == 500
    body = json.loads(err.value.serialize_as_json())
    assert body["message"] == ("internal error (ZeroDivisionError); the service log has the "
                               "details")
    assert "196" not in err.value.serialize_as_json()


def test_pyfunc_takes_every_input_shape_of_the_scoring_protocol(pyfunc, hybrid, warm_users,
                                                                users_like_cold):
    """DataFrame, dict of columns, records (values as MLflow's parser wraps them) or ids."""
    bundle = hybrid[4]
    known = pd.DataFrame({Columns.User: [str(u) for u in warm_users[:3]]})
    frame = pd.concat([known, users_like_cold], ignore_index=True)
    expected = bundle.recommend(frame, k=4)
    records = [{name: np.array(value) for name, value in row.items() if value == value}
               for row in frame.to_dict(orient="records")]
    for request in (frame, {c: frame[c].to_numpy() for c in frame.columns}, records):
        pd.testing.assert_frame_equal(pyfunc.predict(request, params={"k": 4}), expected)
    ids = known[Columns.User].tolist()
    pd.testing.assert_frame_equal(pyfunc.predict(ids, params={"k": 4}),
                                  bundle.recommend(known, k=4))


def test_a_model_logged_with_an_input_schema_still_serves(hybrid, tmp_path):
    """Models logged before the inputs moved to the metadata: MLflow enforces their schema."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    bundle = hybrid[4]
    arguments = serving._pyfunc_arguments(bundle, tmp_path, ["mlflow"])
    inputs = Schema([ColSpec(kind, name, required=name == Columns.User)
                     for name, kind in bundle.input_columns.items()])
    new = arguments["signature"]
    arguments["signature"] = ModelSignature(inputs=inputs, outputs=new.outputs,
                                            params=new.params)
    with serving._quiet_mlflow():
        mlflow.pyfunc.save_model(path=str(tmp_path / "old"), **arguments)
    text = pd.DataFrame({"occupation": ["doctor"], "age": ["40"], "gender": ["F"]})
    expected = bundle.recommend(pd.DataFrame({Columns.User: ["new-old"],
                                              "occupation": ["doctor"], "age": [40.0],
                                              "gender": ["F"]}), k=5)
    pd.testing.assert_frame_equal(
        serving.recommend_cli(str(tmp_path / "old"), ["new-old"], 5, features=text), expected)
    with pytest.raises(RequestError, match="unknown request column.*'colour'"):
        serving.recommend_cli(str(tmp_path / "old"), ["x"], 5,
                              features=pd.DataFrame({"colour": ["red"]}))


def test_recommend_cli_reads_a_logged_model(logged, hybrid, warm_users):
    model = hybrid[0]
    got = serving.recommend_cli(logged, [str(u) for u in warm_users[:3]], 4)
    assert_lists_equal(got, model.recommend(warm_users[:3], k=4))
    with pytest.raises(RequestError, match="k must be"):
        serving.recommend_cli(logged, ["1"], 0)


def test_recommend_cli_takes_attributes_as_text(logged, hybrid, tmp_path):
    bundle = hybrid[4]
    text = pd.DataFrame({"occupation": ["doctor"], "age": ["40"], "gender": ["F"]})
    expected = bundle.recommend(pd.DataFrame({Columns.User: ["new-cli"], "occupation": ["doctor"],
                                              "age": [40.0], "gender": ["F"]}), k=5)
    assert set(expected["reason"]) == {"user_features"}
    pd.testing.assert_frame_equal(serving.recommend_cli(logged, ["new-cli"], 5, features=text),
                                  expected)
    folder = bundle.save(tmp_path / "bundle")  # a bundle folder is read without MLflow
    pd.testing.assert_frame_equal(
        serving.recommend_cli(str(folder), ["new-cli"], 5, features=text), expected)
    with pytest.raises(RequestError, match="age must be a number, got 'forty'"):
        serving.recommend_cli(str(folder), ["x"], 5, features=pd.DataFrame({"age": ["forty"]}))
    for uri in (logged, str(folder)):
        with pytest.raises(RequestError, match="unknown request column.*'colour'"):
            serving.recommend_cli(uri, ["x"], 5, features=pd.DataFrame({"colour": ["red"]}))


# ---------------------------------------------------------------------------------- REST
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _group_gone(pgid: int, timeout: float = 20.0) -> bool:
    """True once no live (non-zombie) process is left in process group ``pgid``."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if (os.getpgid(proc.pid) == pgid
                        and proc.info["status"] != psutil.STATUS_ZOMBIE):
                    alive.append(proc.pid)
            except (ProcessLookupError, psutil.Error):
                continue
        if not alive:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _post(url: str, payload: dict | None = None, *, csv: str | None = None
          ) -> tuple[int, dict]:
    """POST a JSON payload (or a CSV text) to ``/invocations``: status and JSON body."""
    data, kind = ((json.dumps(payload).encode(), "application/json") if csv is None
                  else (csv.encode(), "text/csv"))
    request = urllib.request.Request(f"{url}/invocations", data=data,
                                     headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@contextlib.contextmanager
def _running_server(model_uri: str, log_path: Path) -> Iterator[str]:
    """``recexp serve``'s server on 127.0.0.1, ready; stopped by PID, its whole group gone."""
    server = serving.start_server(model_uri, host="127.0.0.1", port=_free_port(),
                                  log_path=log_path)
    try:
        server.wait_ready(timeout=300)
        yield server.url
    finally:
        code = server.stop()
    assert code is not None and server.process.poll() is not None
    assert _group_gone(server.pid), "a process of the server's group is still running"


def test_server_command_uses_this_environment():
    argv, env = serving.server_command("runs:/abc/model", port=5123)
    assert argv[1:] == ["-m", "mlflow", "models", "serve", "-m", "runs:/abc/model",
                        "--env-manager", "local", "-h", "127.0.0.1", "-p", "5123", "-w", "1"]
    assert env["PATH"].split(os.pathsep)[0] == str(Path(argv[0]).parent)
    with pytest.raises(ValueError, match="port"):
        serving.server_command("x", port=0)


@pytest.mark.slow
def test_rest_server_answers_like_in_process(logged, hybrid, warm_users, cold_users, tmp_path):
    model, _, _, users, bundle = hybrid
    with _running_server(logged, tmp_path / "server.log") as url:
        known = [str(u) for u in warm_users[:5]]
        newcomers = new_users_like(users, cold_users[:3])
        frame = pd.concat([pd.DataFrame({Columns.User: known}), newcomers,
                           pd.DataFrame({Columns.User: ["stranger"]})], ignore_index=True)
        frame["age"] = frame["age"].astype(object).where(frame["age"].notna(), None)
        status, body = _post(url, {"dataframe_split": frame.to_dict(orient="split", index=False),
                                   "params": {"k": 5}})
        assert status == 200, body
        got = pd.DataFrame(body["predictions"])
        expected = bundle.recommend(frame.assign(age=frame["age"].astype(float)), k=5)
        assert_lists_equal(got, expected)
        assert got[Columns.User].tolist() == expected[Columns.User].tolist()
        assert got["reason"].tolist() == expected["reason"].tolist()
        assert_lists_equal(got[got[Columns.User].isin(known)],
                           model.recommend(warm_users[:5], k=5))
        # The other shapes of the scoring protocol give the same answer.
        nulls = frame.astype(object).where(frame.notna(), None)
        full = nulls.to_dict(orient="records")  # `instances` wants every key in every record
        records = [{c: v for c, v in row.items() if v is not None} for row in full]
        columns = {c: nulls[c].tolist() for c in nulls.columns}
        for payload in ({"dataframe_records": records}, {"inputs": records},
                        {"inputs": columns}, {"instances": full}):
            status, body = _post(url, {**payload, "params": {"k": 5}})
            assert status == 200, (payload, body)
            pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"])[expected.columns],
                                          expected, check_dtype=False)
        # Records, integer ages and integer ids, CSV: typed as the model reads them.
        records = [{Columns.User: int(warm_users[0])},
                   {Columns.User: "new-x", "occupation": "doctor", "age": 40, "gender": "F"}]
        status, body = _post(url, {"dataframe_records": records,
                                   "params": {"k": 3, "exclude_seen": False}})
        assert status == 200, body
        got = pd.DataFrame(body["predictions"])
        assert_lists_equal(got.iloc[:3], model.recommend(warm_users[:1], k=3,
                                                         exclude_seen=False))
        assert got["reason"].tolist() == ["known_user"] * 3 + ["user_features"] * 3
        status, body = _post(url, csv=f"user_id,occupation,age,gender\n{warm_users[0]},,,\n"
                                      "new-x,doctor,40,F\n")
        assert status == 200, body
        reasons = pd.DataFrame(body["predictions"]).groupby(Columns.User, sort=False)["reason"]
        assert reasons.first().to_dict() == {str(warm_users[0]): "known_user",
                                             "new-x": "user_features"}


@pytest.mark.slow
def test_rest_server_refuses_bad_requests_without_quoting_ids(logged, tmp_path):
    """Issue #8: a bad request is a 400 with a message and no trace, unknown columns included;
    the body never quotes the submitted ids."""
    secret = "secret-id-7f3a"
    one = [{Columns.User: secret}]
    accepted = "this model takes user_id, occupation, age, gender"
    bad = [
        ({"dataframe_records": [{Columns.User: secret, "colour": "red"}]},
         f"unknown request column(s) 'colour'; {accepted}"),
        ({"dataframe_split": {"columns": [Columns.User, "ocupation"],
                              "data": [[secret, "doctor"]]}},
         f"'ocupation' (did you mean 'occupation'?); {accepted}"),
        ({"inputs": {Columns.User: [secret], "colour": ["red"]}}, "column(s) 'colour'"),
        ({"inputs": [{Columns.User: secret, "colour": "red"}]}, "column(s) 'colour'"),
        ({"instances": [{Columns.User: secret, "colour": "red"}]}, "column(s) 'colour'"),
        ({"dataframe_records": [{"uid": secret}]},
         "no 'user_id' column (should 'uid' be 'user_id'?)"),
        ({"dataframe_records": [*one, {Columns.User: None}]}, "user_id is missing in row 1"),
        ({"dataframe_records": [*one, {Columns.User: 2.5}]}, "got float in row 1"),
        ({"dataframe_records": [*one, {Columns.User: [secret]}]}, "got list in row 1"),
        ({"dataframe_records": [{Columns.User: secret, "age": "old"}]},
         "age must be a number, got 'old' in row 0"),
        ({"dataframe_records": one, "params": {"k": 0}}, "k must be an integer from 1 to 1000"),
        ({"dataframe_records": one, "params": {"k": -3}}, "k must be an integer"),
        ({"dataframe_records": one, "params": {"k": 5000}}, "capped at 1,000"),
    ]
    with _running_server(logged, tmp_path / "server.log") as url:
        for payload, message in bad:
            status, body = _post(url, payload)
            assert status == 400, (payload, status, body)
            assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
            assert message in body["message"], (payload, body)
            assert secret not in json.dumps(body), body
            assert "stack_trace" not in body, payload
        status, body = _post(url, csv=f"user_id,colour\n{secret},red\n")
        assert status == 400 and "column(s) 'colour'" in body["message"], body
        assert secret not in json.dumps(body)
        # Param types are MLflow's check, made before recexp code runs: still a 400 with a
        # message (which quotes the request table: see the module docstring).
        for params in ({"k": "five"}, {"k": 2.5}, {"exclude_seen": "maybe"}):
            status, body = _post(url, {"dataframe_records": one, "params": params})
            assert status == 400 and "stack_trace" not in body, (params, body)
            assert next(iter(params)) in body["message"], body


# ---------------------------------------------------------------------------------- privacy
@pytest.fixture()
def secret_key(monkeypatch):
    key = f"k3y-{secrets.token_hex(16)}"
    monkeypatch.setenv("RECEXP_PSEUDONYM_KEY", key)
    return key


def test_pseudonymised_ids_round_trip_and_the_key_is_never_stored(ml100k, store, secret_key,
                                                                  monkeypatch):
    import mlflow

    # Raw ids that are easy to find in a file: "rawid196x".
    raw = ml100k.interactions.assign(
        **{Columns.User: "rawid" + ml100k.interactions[Columns.User].astype(str) + "x"})
    steps = [{"step": "to_implicit", "threshold": 4},
             {"step": "pseudonymize", "key_env": "RECEXP_PSEUDONYM_KEY", "digits": 16}]
    interactions, _ = preprocess(raw, steps)
    assert not interactions[Columns.User].str.startswith("rawid").any()
    from recexp.dataset import Dataset

    dataset = Dataset.from_frames(interactions)
    model = LightFMRecommender(no_components=8, epochs=2, use_features="none").fit(dataset)
    config = {"name": "test-private", "data": {"dataset": "movielens-100k",
                                               "preprocess": steps}}
    with tracking.tracked_run("private", experiment="test-private") as run:
        tracking.log_params(tracking.flatten({"data": config["data"]}))
        serving.log_pyfunc(model, dataset, config=config)
    uri = f"runs:/{run.info.run_id}/model"

    raw_ids = ["rawid196x", "rawid186x", "rawid22x"]
    from recexp.preprocess import pseudonymize_ids

    hashed = pseudonymize_ids([u for u in raw_ids])
    expected = model.recommend(hashed, k=5)
    got = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({Columns.User: raw_ids}),
                                                params={"k": 5})
    assert_lists_equal(got, expected)
    assert got[Columns.User].tolist() == [u for u in raw_ids for _ in range(5)]
    assert set(got["reason"]) == {"known_user"}

    # Redaction: the key is in no file of the store (database and artifacts) and in no
    # param or tag; the raw ids are in no artifact either.
    files = [p for p in store.rglob("*") if p.is_file()]
    assert any(p.name == "bundle.json" for p in files)
    for path in files:
        content = path.read_bytes()
        assert secret_key.encode() not in content, path
        if "mlruns" in path.parts:
            assert b"rawid" not in content, path
    client = mlflow.tracking.MlflowClient()
    data = client.get_run(run.info.run_id).data
    for key, value in {**data.params, **data.tags}.items():
        assert secret_key not in f"{key}={value}"
    assert data.params["data.preprocess.1.key_env"] == "RECEXP_PSEUDONYM_KEY"
    meta = json.loads(next(p for p in files if p.name == "bundle.json").read_text())
    assert meta["pseudonym"] == {"key_env": "RECEXP_PSEUDONYM_KEY", "digits": 16}

    # Without the key the service refuses to start, naming the variable.
    monkeypatch.delenv("RECEXP_PSEUDONYM_KEY")
    with pytest.raises(ServiceConfigError, match="RECEXP_PSEUDONYM_KEY is not set"):
        mlflow.pyfunc.load_model(uri)


def test_a_config_holding_the_key_is_refused(hybrid, secret_key, tmp_path):
    model = hybrid[0]
    bundle = RecommenderBundle(model, config={"notes": f"do not do this: {secret_key}",
                                              "api_token": "dropped", "db": {"password": "x"},
                                              "token_pattern": "kept", "key_env": "kept"})
    assert bundle.config == {"notes": f"do not do this: {secret_key}", "db": {},
                             "token_pattern": "kept", "key_env": "kept"}
    with pytest.raises(ValueError, match="RECEXP_PSEUDONYM_KEY"):
        bundle.save(tmp_path / "bundle")


def test_stop_ends_the_whole_process_group(tmp_path):
    """ServerProcess.stop on a stand-in server whose child ignores SIGTERM."""
    import subprocess
    import sys

    script = ("import signal, subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', "
              "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "time.sleep(600)'])\n"
              "time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    server = serving.ServerProcess(process, "http://127.0.0.1:1")
    server.stop(timeout=10)
    assert process.poll() is not None
    assert _group_gone(process.pid)
