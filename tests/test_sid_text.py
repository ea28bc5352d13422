"""The item-text feature source: reading item-text files, embedding with the offline MiniLM, building SIDs from
text, and a generative model on a stored tokenization (``model.sid_source=tokenizer:<id>``). Synthetic data only
(the shipped datasets have no item text)."""
import json
from pathlib import Path

import pytest
import torch

from drlib.cli import main
from drlib.data.readers import DataFormatError
from drlib.sid import read_item_text, resolve_text_model, text_features

torch.set_num_threads(1)

N = 200   # items of the synthetic dataset
KINDS = ["red matte lipstick", "hydrating face cream", "nail polish in pink", "shampoo for dry hair",
         "eyeliner pencil black"]


def item_text(i: int) -> str:
    """Five product kinds, each in many variants: texts of one kind are near each other."""
    return f"{KINDS[i % len(KINDS)]}, size {i % 7 + 1}, brand {i // 10}"


# --------------------------------------------------------------------------- reading
def test_read_item_text_formats(tmp_path):
    tsv = tmp_path / "items.tsv"
    tsv.write_text("item_id\ttext\n1\tred lipstick\n3\tface cream\n\n")
    texts, missing = read_item_text(tsv)
    assert texts == ["red lipstick", "", "face cream"] and missing == [2]
    texts, missing = read_item_text(tsv, n_items=4)
    assert len(texts) == 4 and missing == [2, 4]
    js = tmp_path / "items.json"
    js.write_text(json.dumps({"2": "b", "1": "a"}))
    assert read_item_text(js) == (["a", "b"], [])
    jl = tmp_path / "items.jsonl"
    jl.write_text('{"item_id": 2, "text": "b"}\n{"item_id": 1, "text": "a"}\n')
    assert read_item_text(jl) == (["a", "b"], [])


@pytest.mark.parametrize("name,body,match", [
    ("a.tsv", "1\tx\n2 no tab\n", r"line 2: expected '<item id><TAB><text>'"),
    ("a.tsv", "1\tx\n1\ty\n", r"line 2: item 1 appears twice"),
    ("a.tsv", "1\ty\n0\tx\n", r"line 2: item id 0 is outside 1\.\.1 .*0-based"),
    ("a.tsv", "x1\tx\n", r"'x1' is not an integer item id"),
    ("a.json", "[1, 2]", r"expected one JSON object"),
    ("a.json", '{"1": 5}', r"text must be a string"),
    ("a.jsonl", '{"item_id": 1}\n', r"line 1: expected"),
    ("a.jsonl", '{"item_id": 1, "text": "a"\n', r"line 1: invalid JSON"),
    ("a.tsv", "\n", r"no item text"),
])
def test_read_item_text_errors(tmp_path, name, body, match):
    f = tmp_path / name
    f.write_text(body)
    with pytest.raises(DataFormatError, match=match):
        read_item_text(f)


def test_read_item_text_checks_the_catalogue_size_and_path(tmp_path):
    f = tmp_path / "a.tsv"
    f.write_text("5\tx\n")
    with pytest.raises(DataFormatError, match=r"outside 1\.\.3"):
        read_item_text(f, n_items=3)
    with pytest.raises(DataFormatError, match="not found"):
        read_item_text(tmp_path / "missing.tsv")


# --------------------------------------------------------------------------- embedding
def test_text_model_resolution(tmp_path):
    path = Path(resolve_text_model("minilm"))                               # the offline wheel's folder
    assert (path / "model.safetensors").is_file() and (path / "modules.json").is_file()
    assert resolve_text_model(str(tmp_path)) == str(tmp_path.resolve())      # a local folder: itself
    assert resolve_text_model("org/some-model") == "org/some-model"           # a hub id: unchanged
    (tmp_path / "f.bin").write_bytes(b"0")
    with pytest.raises(ValueError, match="is a file"):
        resolve_text_model(str(tmp_path / "f.bin"))
    with pytest.raises(ValueError, match="could not load the text model"):
        text_features(["a"], model=str(tmp_path))                            # an empty folder is no model


def test_minilm_embeds_offline_and_groups_similar_items():
    x = text_features([item_text(i) for i in range(1, 31)])
    assert x.shape == (31, 384) and torch.all(x[0] == 0)
    assert torch.allclose(x[1:].norm(dim=1), torch.ones(30), atol=1e-4)
    sim = x[1:] @ x[1:].T
    kind = torch.arange(1, 31) % len(KINDS)
    same = kind[:, None] == kind[None, :]
    off = ~torch.eye(30, dtype=torch.bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.2                 # texts of a kind are neighbours


# --------------------------------------------------------------------------- SIDs from text, used by a model
def test_build_sids_from_text_then_train_on_them(tmp_results, tmp_path, capsys):
    f = tmp_path / "synthetic_items.tsv"
    f.write_text("".join(f"{i}\t{item_text(i)}\n" for i in range(1, N)))    # item N has no text
    argv = ["sids", "--dataset", "synthetic", "--features", "text", "--text", str(f), "--no-progress",
            "--set", "rqvae.epochs=3", "--set", "rqvae.codebook_sizes=8,8", "--set", "rqvae.hidden=32",
            "--set", "rqvae.latent_dim=8", "--set", "rqvae.batch_size=64", "--set", "rqvae.kmeans_iters=5"]
    assert main(argv) == 0
    assert "collision rate" in capsys.readouterr().out
    rec_file, = (tmp_results / "results" / "tokenizer").glob("synthetic-text-seed0-*.json")
    rec = json.loads(rec_file.read_text())
    info = rec["features_info"]
    assert info["source"] == "item text" and info["items_without_text"] == 1 and len(info["text_sha256"]) == 64
    assert rec["config"]["text_path"] == str(f) and rec["config"]["text_model"] == "minilm"
    codes = torch.load(rec["codes"]["path"])
    assert codes.shape[0] == N + 1 and (codes[1:] >= 0).all()
    # a kind's items share first-level codes more often than items of different kinds
    kind = torch.arange(1, N + 1) % len(KINDS)
    first = codes[1:, 0]
    agree = (first[:, None] == first[None, :]).float()
    same = kind[:, None] == kind[None, :]
    assert agree[same].mean() > agree[~same].mean()
    tid = rec_file.stem
    assert main(["train", "--dataset", "synthetic", "--model", "tiger", "--profile", "smoke", "--no-progress",
                 "--set", f"model.sid_source=tokenizer:{tid}", "--set", "train.epochs=1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= out["test"]["recall@10"] <= 1
    assert main(["train", "--dataset", "synthetic", "--model", "tiger", "--profile", "smoke", "--no-progress",
                 "--set", "model.sid_source=tokenizer:nope"]) == 2
    assert "no built tokenization 'nope'" in capsys.readouterr().err
