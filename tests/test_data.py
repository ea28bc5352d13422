import gzip
import json

import numpy as np
import pytest

from drlib.data import (DataFormatError, build_sequences, get_spec, item_groups, k_core, load_dataset,
                        locate, make_synthetic, read_inter_json, read_s3rec_txt, split_leave_one_out,
                        table1_stats, user_groups)
from drlib.data import readers
from drlib.data.registry import DataFile, sha256_of


def test_s3rec_reader_and_errors(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("1 3 4 5\n2 7 8 9 10\n")
    assert read_s3rec_txt(p) == [[3, 4, 5], [7, 8, 9, 10]]
    p.write_text("1 3 4 5\n2 7 x 9\n")
    with pytest.raises(DataFormatError, match=r"x.txt, line 2"):
        read_s3rec_txt(p)
    p.write_text("1 3 4 5\n2\n")
    with pytest.raises(DataFormatError, match=r"line 2.*truncated"):
        read_s3rec_txt(p)
    with pytest.raises(DataFormatError, match="not found"):
        read_s3rec_txt(tmp_path / "missing.txt")


def test_inter_json_shifts_to_one_based(tmp_path):
    p = tmp_path / "a.inter.json"
    p.write_text(json.dumps({"0": [0, 1, 2], "1": [2, 3, 4]}))
    assert read_inter_json(p) == [[1, 2, 3], [3, 4, 5]]
    p.write_text('{"0": [0, 1, 2], "1": [2, 3')
    with pytest.raises(DataFormatError, match="line 1.*truncated"):
        read_inter_json(p)


def _reviews():
    # 6 users x 6 items, all 5-core after filtering; user "u9" and item "i9" fall out
    recs = []
    for u in range(6):
        for k, i in enumerate(range(6)):
            recs.append({"reviewerID": f"u{u}", "asin": f"i{(i + u) % 6}", "unixReviewTime": 100 * u + 10 - k,
                         "overall": 5.0})
    recs.append({"reviewerID": "u9", "asin": "i9", "unixReviewTime": 1, "overall": 5.0})
    return recs


def test_amazon_2014_gz_kcore_and_chronology(tmp_path):
    p = tmp_path / "reviews.json.gz"
    with gzip.open(p, "wt") as f:
        for r in _reviews():
            f.write(json.dumps(r) + "\n")
    seqs = build_sequences(readers.iter_amazon_2014_2018(p), kcore=5)
    assert len(seqs) == 6 and all(len(s) == 6 for s in seqs)
    # user u0 reviewed i5 first (time 5), then i4, ... : chronological order, ids by first appearance
    assert seqs[0] == [1, 2, 3, 4, 5, 6]


def test_amazon_2014_python_literal_lines_and_bad_line(tmp_path):
    p = tmp_path / "r.json"
    p.write_text("{'reviewerID': 'a', 'asin': 'b', 'unixReviewTime': 3, 'overall': 4.0}\n{broken\n")
    it = readers.iter_amazon_2014_2018(p)
    assert next(it) == ("a", "b", 3.0, 4.0)
    with pytest.raises(DataFormatError, match="line 2"):
        next(it)


def test_amazon_2023_csv_and_jsonl_rating_filter(tmp_path):
    c = tmp_path / "Video_Games.csv"
    rows = ["user_id,parent_asin,rating,timestamp"]
    for u in range(5):
        for i in range(5):
            rows.append(f"u{u},i{i},{5 if i else 2},{u * 10 + i}")
    c.write_text("\n".join(rows) + "\n")
    seqs = build_sequences(readers.iter_amazon_2023(c), min_rating=3.0, kcore=1)
    assert len(seqs) == 5 and all(len(s) == 4 for s in seqs)  # rating 2 dropped
    j = tmp_path / "Video_Games.jsonl"
    j.write_text("\n".join(json.dumps({"user_id": "u", "parent_asin": f"i{i}", "rating": 5, "timestamp": i})
                           for i in range(3)) + "\n")
    assert build_sequences(readers.iter_amazon_2023(j), kcore=1) == [[1, 2, 3]]
    c.write_text("user,item\n1,2\n")
    with pytest.raises(DataFormatError, match="header"):
        list(readers.iter_amazon_2023(c))


def test_recbole_inter(tmp_path):
    p = tmp_path / "x.inter"
    p.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                 "a\tx\t5\t2\na\ty\t5\t1\nb\tx\t5\t1\n")
    assert build_sequences(readers.iter_recbole_inter(p), kcore=1) == [[1, 2], [2]]
    p.write_text("user_id:token\titem_id:token\na\tx\tEXTRA\n")
    with pytest.raises(DataFormatError, match="line 2"):
        list(readers.iter_recbole_inter(p))


def test_k_core_is_iterative():
    data = [("a", "x", 0, 5), ("a", "y", 1, 5), ("b", "x", 0, 5), ("b", "y", 1, 5), ("c", "x", 0, 5)]
    assert sorted(k_core(data, 2)) == sorted(data[:4])


def test_registry_unknown_and_checksum(tmp_path, monkeypatch):
    with pytest.raises(KeyError, match="unknown dataset 'beuaty'"):
        get_spec("beuaty")
    f = tmp_path / "beauty" / "Beauty.txt"
    f.parent.mkdir()
    f.write_text("1 2 3 4\n")
    spec = get_spec("beauty")
    with pytest.raises(DataFormatError, match="sha256.*truncated or a different version"):
        locate(spec.interactions, tmp_path)
    assert locate(spec.interactions, tmp_path, verify=False) == f
    monkeypatch.setenv("DRLIB_DATA", str(tmp_path))
    assert locate(spec.interactions, verify=False) == f


def test_download_is_checksummed(tmp_path, monkeypatch):
    src = tmp_path / "src.txt"
    src.write_text("1 2 3 4\n")
    monkeypatch.setenv("DRLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("drlib.data.registry.candidate_roots",
                        lambda path=None: [("user cache", tmp_path / "cache")])
    good = DataFile("toy/src.txt", sha256_of(src), src.as_uri(), src.stat().st_size)
    got = locate(good)
    assert got == tmp_path / "cache" / "toy" / "src.txt" and got.read_text() == "1 2 3 4\n"
    bad = DataFile("toy/other.txt", "0" * 64, src.as_uri(), 1)
    with pytest.raises(DataFormatError, match="download"):
        locate(bad)
    assert not (tmp_path / "cache" / "toy" / "other.txt").exists()


def _check_no_leakage(ds):
    # every training input and target lies inside its user's training part s[:-2]
    valid_t, test_t = ds.valid.targets, ds.test.targets
    for row in range(len(ds.train_targets)):
        u = ds.train_users[row]
        train_part = set(ds.sequences[u][:-2].tolist())
        items = set(ds.train_inputs[row][ds.train_inputs[row] > 0].tolist()) | {int(ds.train_targets[row])}
        assert items <= train_part
        assert valid_t[u] not in items and test_t[u] not in items
    # validation inputs never contain the test target
    assert not any(test_t[u] in ds.valid.inputs[u] for u in range(ds.n_users))


def test_leave_one_out_no_leakage_synthetic():
    ds = split_leave_one_out("syn", make_synthetic(n_users=200, seed=3), max_len=5, n_items=200)
    _check_no_leakage(ds)
    s = ds.sequences[0]
    assert ds.test.targets[0] == s[-1] and ds.valid.targets[0] == s[-2]
    assert ds.test.inputs[0][-1] == s[-2] and ds.valid.inputs[0][-1] == s[-3]
    assert len(ds.train_targets) == sum(len(x) - 3 for x in ds.sequences)


def test_real_beauty_matches_table1_and_no_leakage(shared_data):
    ds = load_dataset("beauty", path=shared_data)
    st = table1_stats(ds.sequences)
    assert (st["users"], st["items"], st["interactions"]) == (22363, 12101, 198502)
    assert round(st["avg_len"], 2) == 8.88
    assert ds.train_inputs.shape == (198502 - 3 * 22363, 20)
    # vectorised leakage check on the real data: a target of valid/test never appears in its user's train rows
    users = ds.train_users
    inputs_plus = np.concatenate([ds.train_inputs, ds.train_targets[:, None]], 1)
    assert not (inputs_plus == ds.valid.targets[users][:, None]).any()
    assert not (inputs_plus == ds.test.targets[users][:, None]).any()


def test_groups_equal_sized_users_and_items():
    ds = split_leave_one_out("syn", make_synthetic(n_users=403, seed=1), n_items=200)
    ug = user_groups(ds)
    assert sorted(np.bincount(ug).tolist()) == [100, 101, 101, 101]
    lens = np.array([len(s) for s in ds.sequences])
    assert lens[ug == 0].max() <= lens[ug == 3].min()
    ig = item_groups(ds)
    assert ig[0] == -1 and np.bincount(ig[1:]).tolist() == [50, 50, 50, 50]


def test_an_explicit_data_path_never_falls_back_to_another_copy(tmp_path):
    from drlib.data import DataFormatError, load_dataset
    with pytest.raises(DataFormatError, match="does not exist"):
        load_dataset("beauty", path=tmp_path / "nowhere")
    with pytest.raises(DataFormatError, match="is not in"):
        load_dataset("beauty", path=tmp_path)
