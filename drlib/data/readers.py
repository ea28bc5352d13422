"""Readers for interaction files.

Every reader returns a list of user sequences: ``list[list[int]]`` with 1-based item ids (0 is
reserved for padding), each sequence in chronological order. Readers of raw review dumps go
through :func:`build_sequences`, which applies the rating filter, k-core filtering and the
chronological sort, and renumbers users and items in order of first appearance (the S3-Rec
convention used by the benchmark files).

Any malformed input raises :class:`DataFormatError` naming the file, the line and a fix.
"""
from __future__ import annotations

import ast
import csv
import gzip
import io
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Iterator


class DataFormatError(ValueError):
    """A data file is missing, truncated or malformed. The message names the path, line and fix."""


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise DataFormatError(f"data file not found: {path}")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


# --------------------------------------------------------------------------- benchmark formats
def read_s3rec_txt(path: str | Path) -> list[list[int]]:
    """S3-Rec format: one line per user, ``user_id item item ...`` (1-based item ids)."""
    path = Path(path)
    seqs: list[list[int]] = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                ids = [int(x) for x in parts]
            except ValueError as e:
                raise DataFormatError(
                    f"{path}, line {lineno}: expected integers 'user_id item_id item_id ...', got {line.strip()[:80]!r} "
                    f"({e}). Is this an S3-Rec .txt file? Re-download it or pick the matching --format.") from None
            if len(ids) < 2:
                raise DataFormatError(f"{path}, line {lineno}: a user line needs a user id and at least one item, "
                                      f"got {line.strip()[:80]!r}. The file may be truncated; re-download it.")
            if min(ids[1:]) < 1:
                raise DataFormatError(f"{path}, line {lineno}: item ids must be >= 1 in S3-Rec files (0 is padding).")
            seqs.append(ids[1:])
    if not seqs:
        raise DataFormatError(f"{path}: no user lines found; the file is empty or truncated.")
    return seqs


def read_inter_json(path: str | Path) -> list[list[int]]:
    """LC-Rec / LETTER format: ``{"0": [item, ...], ...}`` with 0-based ids; returned shifted to 1-based."""
    path = Path(path)
    with _open_text(path) as f:
        text = f.read()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}, line {e.lineno}: invalid JSON ({e.msg}). The file may be truncated; "
                              "re-download it and check its sha256.") from None
    if not isinstance(obj, dict) or not obj:
        raise DataFormatError(f"{path}: expected a JSON object {{user: [items]}}, got {type(obj).__name__}.")
    bad = [k for k in obj if not str(k).isdigit()]
    if bad:
        raise DataFormatError(f"{path}: user id {bad[0]!r} is not a non-negative integer; .inter.json files key "
                              "users by integer ids. Renumber them, or write a CSV (user,item,timestamp) instead.")
    seqs = []
    for key in sorted(obj, key=int):
        items = obj[key]
        if not isinstance(items, list) or not all(isinstance(i, int) and i >= 0 for i in items):
            raise DataFormatError(f"{path}: user {key!r} must map to a list of non-negative integer item ids.")
        seqs.append([i + 1 for i in items])
    return seqs


# --------------------------------------------------------------------------- raw public formats
Interaction = tuple[str, str, float, float]  # (user, item, timestamp, rating)


def _parse_json_line(path: Path, lineno: int, line: str) -> dict:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        try:  # some Amazon 2014 dumps are Python dict literals, not JSON
            obj = ast.literal_eval(line)
            if isinstance(obj, dict):
                return obj
        except (ValueError, SyntaxError):
            pass
    raise DataFormatError(f"{path}, line {lineno}: not a JSON object: {line.strip()[:80]!r}. "
                          "A truncated download ends like this; re-download the file.")


def _require(path: Path, lineno: int, rec: dict, keys: Iterable[str]) -> list:
    out = []
    for k in keys:
        if k not in rec:
            raise DataFormatError(f"{path}, line {lineno}: field {k!r} missing (have {sorted(rec)[:8]}). "
                                  "Is this the right --format for this file?")
        out.append(rec[k])
    return out


def iter_amazon_2014_2018(path: str | Path) -> Iterator[Interaction]:
    """Amazon 2014/2018 review JSON (one review per line, gzipped or not): reviewerID, asin, unixReviewTime, overall."""
    path = Path(path)
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = _parse_json_line(path, lineno, line)
            u, i, t = _require(path, lineno, rec, ["reviewerID", "asin", "unixReviewTime"])
            yield str(u), str(i), float(t), float(rec.get("overall", 5.0))


def iter_amazon_2023(path: str | Path) -> Iterator[Interaction]:
    """Amazon Reviews 2023: JSONL reviews (user_id, parent_asin, rating, timestamp) or the benchmark CSV (told
    apart by the first character: ``{`` starts a JSON line)."""
    path = Path(path)
    with _open_text(path) as f:
        first = f.readline().lstrip("\ufeff")
        lines = itertools.chain([first], f)
        if not first.lstrip().startswith("{"):
            reader = csv.DictReader(lines)
            need = {"user_id", "parent_asin", "rating", "timestamp"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise DataFormatError(f"{path}, line 1: CSV header must contain {sorted(need)}, got {reader.fieldnames}.")
            for lineno, row in enumerate(reader, 2):
                try:
                    yield row["user_id"], row["parent_asin"], float(row["timestamp"]), float(row["rating"])
                except (TypeError, ValueError):
                    raise DataFormatError(f"{path}, line {lineno}: bad rating/timestamp in {row}. "
                                          "The file may be truncated; re-download it.") from None
        else:
            for lineno, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                rec = _parse_json_line(path, lineno, line)
                u, i, r, t = _require(path, lineno, rec, ["user_id", "parent_asin", "rating", "timestamp"])
                yield str(u), str(i), float(t), float(r)


def iter_recbole_inter(path: str | Path) -> Iterator[Interaction]:
    """RecBole atomic ``.inter`` file: tab-separated, header like ``user_id:token item_id:token rating:float timestamp:float``."""
    path = Path(path)
    with _open_text(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        names = [h.split(":")[0] for h in header]
        if "user_id" not in names or "item_id" not in names:
            raise DataFormatError(f"{path}, line 1: RecBole header must name user_id and item_id, got {header}.")
        iu, ii = names.index("user_id"), names.index("item_id")
        it = names.index("timestamp") if "timestamp" in names else None
        ir = names.index("rating") if "rating" in names else None
        for lineno, line in enumerate(f, 2):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(names):
                raise DataFormatError(f"{path}, line {lineno}: expected {len(names)} tab-separated fields, got "
                                      f"{len(parts)}. The file may be truncated or not tab-separated.")
            try:
                t = float(parts[it]) if it is not None else float(lineno)
                r = float(parts[ir]) if ir is not None else 5.0
            except ValueError:
                raise DataFormatError(f"{path}, line {lineno}: non-numeric rating/timestamp in {line.strip()[:80]!r}.") from None
            yield parts[iu], parts[ii], t, r


def k_core(interactions: list[Interaction], k: int) -> list[Interaction]:
    """Iteratively drop users and items with fewer than ``k`` interactions until none is left."""
    data = interactions
    while True:
        uc = Counter(x[0] for x in data)
        ic = Counter(x[1] for x in data)
        kept = [x for x in data if uc[x[0]] >= k and ic[x[1]] >= k]
        if len(kept) == len(data):
            return kept
        data = kept


def build_sequences(interactions: Iterable[Interaction], min_rating: float | None = None,
                    kcore: int = 5, dedup: bool = True) -> list[list[int]]:
    """Raw ``(user, item, timestamp, rating)`` records -> chronological 1-based item sequences.

    ``min_rating``: keep only ratings strictly above it (the paper keeps ratings > 3 for Amazon 2023).
    ``dedup``: keep one record per (user, item), the earliest.
    Users and items are renumbered in order of first appearance after sorting users by first time.
    """
    data = [x for x in interactions if min_rating is None or x[3] > min_rating]
    if dedup:
        first: dict[tuple[str, str], Interaction] = {}
        for x in data:
            key = (x[0], x[1])
            if key not in first or x[2] < first[key][2]:
                first[key] = x
        data = list(first.values())
    if kcore > 1:
        data = k_core(data, kcore)
    if not data:
        raise DataFormatError("no interactions left after rating and k-core filtering; lower kcore/min_rating.")
    by_user: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for n, (u, i, t, _) in enumerate(data):
        by_user[u].append((t, n, i))  # n keeps the file order for equal timestamps (stable)
    users = sorted(by_user, key=lambda u: min(by_user[u]))
    item_ids: dict[str, int] = {}
    seqs = []
    for u in users:
        seq = []
        for _, _, i in sorted(by_user[u]):
            if i not in item_ids:
                item_ids[i] = len(item_ids) + 1
            seq.append(item_ids[i])
        seqs.append(seq)
    return seqs


RAW_READERS = {
    "amazon2014": iter_amazon_2014_2018,
    "amazon2018": iter_amazon_2014_2018,
    "amazon2023": iter_amazon_2023,
    "recbole": iter_recbole_inter,
}
