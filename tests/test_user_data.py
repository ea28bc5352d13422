"""Your own data: every format detected and read alike, the filters, the clear errors, the config hash, and a
training from the command line on a CSV written here (all on tiny files in tmp_path)."""
import gzip
import hashlib
import json

import pytest

import drlib
from drlib.cli import main
from drlib.config import DataConfig
from drlib.data import DATASETS, DataFormatError, detect_format, load_dataset, read_user_file, table1_stats
from drlib.registry import MODELS, make_config
from drlib.runner import get_dataset

# (user, item, timestamp, rating): 4 users with 4, 3, 5 and 3 interactions, users' first times in user order
ROWS = [("ann", "pen", 10, 5), ("ann", "ink", 11, 4), ("ann", "cap", 12, 2), ("ann", "pad", 13, 5),
        ("bob", "ink", 20, 5), ("bob", "box", 21, 3), ("bob", "pen", 22, 4),
        ("cy", "cap", 30, 4), ("cy", "pad", 31, 1), ("cy", "pen", 32, 5), ("cy", "box", 33, 4), ("cy", "ink", 34, 5),
        ("dee", "box", 40, 5), ("dee", "pad", 41, 5), ("dee", "cap", 42, 4)]
SEQS = [[1, 2, 3, 4], [2, 5, 1], [3, 4, 1, 5, 2], [5, 4, 3]]       # items numbered by first appearance


@pytest.fixture(autouse=True)
def registry_restored():
    """Datasets registered by a test leave the registry when it ends."""
    saved = dict(DATASETS)
    yield
    DATASETS.clear()
    DATASETS.update(saved)


def write_csv(path, rows=ROWS, header="user,item,timestamp,rating", sep=","):
    path.write_text("\n".join([header] + [sep.join(str(x) for x in r) for r in rows]) + "\n")
    return path


def write_every_format(tmp_path) -> dict:
    """The interactions of ROWS in every format -> {format: path}."""
    users = list(dict.fromkeys(r[0] for r in ROWS))
    items = {i: n for n, i in enumerate(dict.fromkeys(r[1] for r in ROWS), 1)}
    by_user = {u: [items[r[1]] for r in ROWS if r[0] == u] for u in users}
    out = {"csv": write_csv(tmp_path / "plain.csv"),
           "tsv": write_csv(tmp_path / "plain.tsv", header="user_id\titem_id\ttimestamp", sep="\t",
                            rows=[r[:3] for r in ROWS])}
    out["s3rec"] = tmp_path / "seqs.txt"
    out["s3rec"].write_text("".join(f"{n} " + " ".join(map(str, s)) + "\n" for n, s in enumerate(by_user.values(), 1)))
    out["inter_json"] = tmp_path / "x.inter.json"
    out["inter_json"].write_text(json.dumps({str(n): [i - 1 for i in s] for n, s in enumerate(by_user.values())},
                                            indent=1))
    out["recbole"] = write_csv(tmp_path / "x.inter", header="user_id:token\titem_id:token\ttimestamp:float\t"
                               "rating:float", sep="\t", rows=[(u, i, t, r) for u, i, t, r in ROWS])
    out["amazon2014"] = tmp_path / "reviews.json.gz"
    with gzip.open(out["amazon2014"], "wt") as f:
        for u, i, t, r in ROWS:
            f.write(json.dumps({"reviewerID": u, "asin": i, "unixReviewTime": t, "overall": r}) + "\n")
    out["amazon2018"] = tmp_path / "reviews2018.json"          # Python dict literals, as some 2014 dumps have
    out["amazon2018"].write_text("".join(repr({"reviewerID": u, "asin": i, "unixReviewTime": t, "overall": r,
                                               "vote": "2"}) + "\n" for u, i, t, r in ROWS))
    out["amazon2023"] = tmp_path / "reviews.jsonl"
    out["amazon2023"].write_text("".join(json.dumps({"user_id": u, "parent_asin": i, "rating": r, "timestamp": t})
                                         + "\n" for u, i, t, r in ROWS))
    out["amazon2023_csv"] = write_csv(tmp_path / "benchmark.txt", header="user_id,parent_asin,rating,timestamp",
                                      rows=[(u, i, r, t) for u, i, t, r in ROWS])
    return out


DETECTED = {"csv": "csv", "tsv": "csv", "s3rec": "s3rec", "inter_json": "inter_json", "recbole": "recbole",
            "amazon2014": "amazon2014", "amazon2018": "amazon2014", "amazon2023": "amazon2023",
            "amazon2023_csv": "amazon2023"}


def test_every_format_is_detected_and_read_to_the_same_sequences(tmp_path):
    files = write_every_format(tmp_path)
    for kind, path in files.items():
        assert detect_format(path) == DETECTED[kind], kind
        seqs, report = read_user_file(path)
        assert seqs == SEQS, kind
        assert report["format"] == DETECTED[kind] and report["interactions"] == len(ROWS)
    assert read_user_file(files["amazon2018"], "amazon2018")[0] == SEQS     # 2014 and 2018 share one reader


def test_string_ids_unsorted_rows_and_equal_timestamps(tmp_path):
    rows = [("b", "y", 5, 1), ("a", "x", 3, 1), ("a", "z", 1, 1), ("a", "w", 3, 1), ("b", "x", 5, 1),
            ("b", "z", 2, 1), ("a", "x", 3, 4)]                     # the last row repeats the second (rated anew)
    seqs, report = read_user_file(write_csv(tmp_path / "u.csv", rows))
    # a: z(1), then x and w tie at 3 and keep their file order; b: z(2), then y and x tie at 5 (file order)
    assert seqs == [[1, 2, 3], [1, 4, 2]]
    assert report["exact_duplicates_dropped"] == 1
    assert report["users_out_of_order"] == 2 and report["equal_timestamps"] == 2


def test_iso_dates_and_repeated_items_are_kept(tmp_path):
    p = tmp_path / "visits.tsv"
    p.write_text("item_id\tuser_id\ttimestamp\textra\n" + "".join(
        f"{i}\t{u}\t2024-01-0{d}T10:00\t-\n" for u, i, d in
        [("u", "cafe", 3), ("u", "park", 1), ("u", "cafe", 2), ("v", "park", 1), ("v", "zoo", 2), ("v", "bar", 3)]))
    seqs, _ = read_user_file(p)
    assert seqs == [[1, 2, 2], [1, 3, 4]]                          # u: park, cafe, cafe again
    assert table1_stats(seqs)["repeat_share"] == pytest.approx(1 / 6)


def test_kcore_and_min_rating_filters(tmp_path):
    p = write_csv(tmp_path / "r.csv")
    seqs, report = read_user_file(p, min_rating=2)                  # inclusive: only cy's pad (rated 1) goes
    assert report["below_min_rating_dropped"] == 1 and seqs[0] == [1, 2, 3, 4] and seqs[2] == [3, 1, 5, 2]
    # rating >= 4 also drops ann's cap and bob's box: bob keeps 2 interactions, too few for leave-one-out
    with pytest.raises(DataFormatError, match=r"1 of 4 users have fewer than 3 .*0 users were dropped.*--kcore 3"):
        read_user_file(p, min_rating=4)
    eve = write_csv(tmp_path / "e.csv", ROWS + [("eve", f"new{k}", 50 + k, 5) for k in range(3)])
    assert read_user_file(eve)[1]["users"] == 5
    seqs, report = read_user_file(eve, kcore=3)                     # eve's items are seen once: she goes
    assert seqs == SEQS and report["users"] == 4 and report["users_in_file"] == 5
    with pytest.raises(DataFormatError, match="no interactions left after filtering"):
        read_user_file(eve, kcore=4)                                # every item has 3 users: nothing is 4-core


@pytest.mark.parametrize("text, fmt, match", [
    ("", None, "is empty"),
    ("\n\n", None, "is empty"),
    ("user,item,timestamp\n", None, "no interactions"),
    ("user,item,rating\nu,i,5\n", None, r"missing column 'timestamp'"),
    ("user,timestamp,rating\nu,1,5\n", "csv", r"missing column 'item'"),
    ("1,2,3\n4,5,6\n", None, "could not tell the format.*header"),
    ("user,item,timestamp\nu,i,yesterday\n", None, r"line 2: timestamp 'yesterday'"),
    ("user,item,timestamp\nu,i,nan\n", None, r"line 2: timestamp 'nan'"),
    ("user,item,timestamp\nu,i\n", None, "line 2: 2 fields"),
    ("1 2 3 4\n2 5 x 7\n", None, r"line 2: expected integers"),
    ('{"0": [1, 2, 3], "bob": [2, 3, 4]}', None, r"user id 'bob' is not a non-negative integer"),
    ('{"0": [1, 2, 3], "1": [2, "pen", 4]}', None, "non-negative integer item ids"),
    ("user,item,timestamp\nu,a,1\nu,b,2\nu,c,3\n", "s3rec", r"looks like csv.*--format csv"),
    ("1 2 3 4\n", "amazon2023", r"looks like s3rec"),
    ("user,item,timestamp\nu,a,1\nu,b,2\nu,c,3\n", None, None),
])
def test_bad_files_get_clear_errors(tmp_path, text, fmt, match):
    p = tmp_path / "f.dat"
    p.write_text(text)
    if match is None:                                               # the control: the same rows are fine
        assert read_user_file(p, fmt)[0] == [[1, 2, 3]]
        return
    with pytest.raises(DataFormatError, match=match):
        read_user_file(p, fmt)


def test_a_binary_file_is_refused(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(bytes([0x80, 0xff, 0xfe, 0x00]) * 8 + b"\n")
    with pytest.raises(DataFormatError, match="not UTF-8 text"):
        read_user_file(p)


def test_short_users_error_says_how_many_and_what_to_do(tmp_path):
    p = write_csv(tmp_path / "s.csv", ROWS + [("eve", "pen", 50, 5), ("eve", "ink", 51, 5), ("fay", "pad", 60, 5)])
    with pytest.raises(DataFormatError, match=r"2 of 6 users have fewer than 3 .*0 users were dropped.*--kcore 3"):
        read_user_file(p)
    with pytest.raises(DataFormatError, match=r"has no ratings, so min_rating=4"):
        read_user_file(write_csv(tmp_path / "n.csv", [r[:3] for r in ROWS], "user,item,timestamp"), min_rating=4)
    assert len(read_user_file(p, kcore=3)[0]) == 4


def test_registered_file_works_by_name_and_enters_the_hash(tmp_path):
    a = write_csv(tmp_path / "a.csv")
    b = write_csv(tmp_path / "b.csv", ROWS + [("eve", f"new{k}", 50 + k, 5) for k in range(3)])
    spec = drlib.register_dataset("My-Shop", a)
    assert spec.name == "my_shop" and spec.user_file.sha256 == hashlib.sha256(a.read_bytes()).hexdigest()
    assert load_dataset("my_shop").n_users == 4 and load_dataset("my-shop").n_items == 5
    cfg_a = make_config("sasrec", "my_shop", "smoke")
    assert cfg_a.data.path == str(a.resolve()) and cfg_a.data.file_sha256 == spec.user_file.sha256
    assert cfg_a.hash_dict()["data"]["file_sha256"] == spec.user_file.sha256
    drlib.register_dataset("my_shop", b)                            # same name, another file: another run id
    cfg_b = make_config("sasrec", "my_shop", "smoke")
    assert cfg_b.run_id != cfg_a.run_id and cfg_b.run_id.startswith("sasrec-my_shop-smoke-seed0-")
    drlib.register_dataset("my_shop", b, kcore=3)                   # same file, other filter: another run id
    cfg_k = make_config("sasrec", "my_shop", "smoke")
    assert cfg_k.run_id != cfg_b.run_id and cfg_k.data.file_kcore == 3
    # each config reads the file as it describes it (k-core 3 drops eve, whose items are seen once)
    assert [get_dataset(c).n_users for c in (cfg_a, cfg_b, cfg_k)] == [4, 5, 4]
    b.write_text(b.read_text() + "dee,pen,99,5\n")                  # edited after registration: refused
    with pytest.raises(DataFormatError, match="changed since it was registered"):
        load_dataset("my_shop")
    with pytest.raises(ValueError, match="built-in dataset"):
        drlib.register_dataset("Beauty", a)
    with pytest.raises(DataFormatError, match="not found"):
        drlib.register_dataset("gone", tmp_path / "missing.csv")


def test_the_benchmarks_hash_without_file_fields():
    cfg = make_config("sasrec", "beauty", "cpu")
    assert cfg.data.file_sha256 is None and not any(k.startswith("file_") for k in cfg.hash_dict()["data"])
    assert cfg.hash_dict()["data"] == {"dataset": "beauty", "max_len": 20}
    with pytest.raises(ValueError, match="data.path and data.file_format"):
        DataConfig(dataset="x", file_sha256="0" * 64)


@pytest.mark.parametrize("model", list(MODELS))
def test_every_model_trains_on_a_user_csv(tmp_results, tmp_path, model):
    drlib.register_dataset("tiny_csv", write_csv(tmp_path / "tiny.csv"))
    rec = drlib.run(make_config(model, "tiny_csv", "smoke", overrides=["train.epochs=1"]), progress=False,
                    log=lambda s: None)
    assert rec["config"]["dataset"] == "tiny_csv" and rec["config"]["data"]["file_format"] == "csv"
    assert rec["timing"]["n_test_users"] == 4 and 0 <= rec["metrics"]["test"]["ndcg@10"] <= 1


def test_train_from_the_command_line_stores_one_record(tmp_results, tmp_path, capsys):
    data = write_csv(tmp_path / "shop.csv")
    out = tmp_path / "mine"
    assert main(["train", "--data-file", str(data), "--model", "sasrec", "--profile", "smoke", "--set",
                 "train.epochs=1", "--no-progress", "--results", str(out)]) == 0
    (rec_path,) = out.glob("main/sasrec-shop-smoke-seed0-*.json")
    rec = json.loads(rec_path.read_text())
    assert rec["config"]["data"]["file_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert rec["config"]["data"]["path"] == str(data.resolve()) and rec["timing"]["n_test_users"] == 4
    copies = [p for p in tmp_path.rglob("*") if p.is_file() and p != data and p.read_bytes() == data.read_bytes()]
    assert not copies                                               # the file is never copied
    assert main(["datasets", "--data-file", str(data), "--kcore", "3"]) == 0
    printed = capsys.readouterr().out
    assert "shop" in printed and "format csv" in printed and "   4       5       15" in printed


def test_command_line_errors_store_nothing(tmp_results, tmp_path, capsys):
    out = tmp_path / "mine"
    short = write_csv(tmp_path / "short.csv", ROWS[:5])
    base = ["train", "--model", "sasrec", "--profile", "smoke", "--no-progress", "--results", str(out)]
    assert main(base + ["--data-file", str(short)]) == 2
    assert "1 of 2 users have fewer than 3" in capsys.readouterr().err
    assert main(base + ["--data-file", str(short), "--format", "s3rec"]) == 2
    assert "looks like csv" in capsys.readouterr().err
    assert main(base + ["--data-file", str(short), "--data-path", str(tmp_path)]) == 2
    assert "with --data-file leave it out" in capsys.readouterr().err
    assert main(base + ["--dataset", "nope"]) == 2
    assert "For your own interaction file pass --data-file" in capsys.readouterr().err
    assert main(base + ["--kcore", "3"]) == 2
    assert "add --data-file" in capsys.readouterr().err
    assert main(base + ["--data-file", str(write_csv(tmp_path / "beauty.csv"))]) == 2
    assert "another name" in capsys.readouterr().err
    assert not out.exists() or not list(out.rglob("*.json"))
