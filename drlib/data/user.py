"""Your own interaction file: format detection, a plain CSV/TSV reader, filters and the checks leave-one-out needs.

Every format the benchmark readers know is accepted, plus a plain table with a header:

* ``csv``: comma- or tab-separated, header naming ``user``, ``item``, ``timestamp`` and optionally ``rating``
  (``user_id`` / ``item_id`` also accepted; other columns are ignored). Ids may be any strings. Timestamps are
  numbers (e.g. Unix seconds) or ISO-8601 dates.
* ``s3rec`` / ``inter_json``: already one sequence per user; the order within a user is taken as time.
* ``recbole``, ``amazon2014`` / ``amazon2018``, ``amazon2023``: as in :mod:`drlib.data.readers`.

:data:`FORMATS` says what in the file's first line detects each. What :func:`read_user_file` does, in order:

1. rows repeated exactly (same user, item and timestamp) are kept once;
2. ``min_rating``: keep interactions rated ``min_rating`` or higher (inclusive; the paper's "ratings > 3" is
   ``min_rating=4`` on integer ratings); an error for a format or file without ratings;
3. ``kcore``: drop users and items with fewer than ``kcore`` interactions, repeatedly (0 or 1: no filter);
4. each user's interactions are sorted by timestamp, **stably**: an unsorted file is fine, and interactions
   with equal timestamps keep their order in the file;
5. users and items are renumbered (items ``1..n`` in order of first appearance, users by first interaction),
   so string ids are fine; repeated items within a user are kept (their share is in the Table 1 statistics).

Every user needs at least 3 interactions (one to train on, one for validation, one for test): a file where some
have fewer after filtering is an error that says how many and what to do.
"""
from __future__ import annotations

import csv
import itertools
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from .readers import (DataFormatError, Interaction, RAW_READERS, _open_text, _parse_json_line, build_sequences,
                      k_core, read_inter_json, read_s3rec_txt)

FORMATS = {
    "csv": "a header line with user, item and timestamp columns, comma- or tab-separated",
    "s3rec": "space-separated integers, 'user item item ...' (S3-Rec .txt)",
    "inter_json": "a JSON object {user: [items]} (LETTER / LC-Rec .inter.json)",
    "recbole": "a tab-separated header with typed fields such as user_id:token (RecBole atomic .inter)",
    "amazon2014": "JSON lines with reviewerID, asin, unixReviewTime (Amazon reviews 2014 or 2018)",
    "amazon2018": "the same as amazon2014 (the 2014 and 2018 dumps share their fields)",
    "amazon2023": "JSON lines or a CSV header with user_id, parent_asin, rating, timestamp (Amazon reviews 2023)",
}
SAME = {"amazon2018": "amazon2014"}          # formats one reader serves
MIN_LEN = 3                                  # leave-one-out: one training, one validation, one test interaction
_ALIASES = {"user": ("user", "user_id"), "item": ("item", "item_id"), "timestamp": ("timestamp", "time"),
            "rating": ("rating",)}


@dataclass(frozen=True)
class UserFile:
    """A user's interaction file and how it is read. ``sha256`` pins the content (checked on every read)."""
    path: str
    sha256: str
    format: str
    kcore: int = 0
    min_rating: float | None = None

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; known: {', '.join(FORMATS)}")
        if self.kcore < 0:
            raise ValueError(f"kcore must be >= 0 (0 or 1: no k-core filter), got {self.kcore}")


def _first_line(path: Path) -> str:
    try:
        with _open_text(path) as f:
            for line in f:
                if line.strip():
                    return line.lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not UTF-8 text ({e.reason}); pass a text file (or its .gz)") from None
    return ""


def _header(line: str) -> list[str]:
    return [h.strip().strip('"').lower() for h in next(csv.reader([line], delimiter="\t" if "\t" in line else ","))]


def detect_format(path: str | Path) -> str | None:
    """The format of ``path`` from its first non-empty line (see :data:`FORMATS`), or ``None`` if none fits.
    Raises :class:`DataFormatError` for an empty file."""
    path = Path(path)
    line = _first_line(path)
    if not line:
        raise DataFormatError(f"{path} is empty: no interactions to read. Pass a file with one interaction per "
                              "line (a CSV needs a header user,item,timestamp[,rating] and at least one row).")
    if line.lstrip().startswith("{"):
        try:
            rec = _parse_json_line(path, 1, line)
        except DataFormatError:
            return "inter_json"                      # a JSON object spread over several lines
        if {"reviewerID", "asin"} <= set(rec):
            return "amazon2014"
        if {"user_id", "parent_asin"} <= set(rec):
            return "amazon2023"
        return "inter_json" if all(isinstance(v, list) for v in rec.values()) else None
    if "\t" in line and all(":" in h for h in line.split("\t")):
        return "recbole"
    if "," in line or "\t" in line:
        names = _header(line)
        if "parent_asin" in names:
            return "amazon2023"
        if all(any(a in names for a in _ALIASES[c]) for c in ("user", "item")):
            return "csv"
        return None
    parts = line.split()
    return "s3rec" if len(parts) >= 2 and all(p.isdigit() for p in parts) else None


def _timestamp(text: str) -> float:
    try:
        t = float(text)
    except ValueError:
        t = datetime.fromisoformat(text.strip()).timestamp()
    if not math.isfinite(t):
        raise ValueError(text)
    return t


def iter_table(path: str | Path) -> Iterator[Interaction]:
    """A CSV/TSV with a header naming ``user``, ``item``, ``timestamp`` (and optionally ``rating``) ->
    ``(user, item, timestamp, rating)`` rows; ``rating`` is NaN without a rating column."""
    path = Path(path)
    with _open_text(path) as f:
        lines = (line.lstrip("\ufeff") for line in f)
        first = next(lines, "")
        names = _header(first)
        cols = {}
        for col, aliases in _ALIASES.items():
            found = [names.index(a) for a in aliases if a in names]
            if found:
                cols[col] = found[0]
            elif col != "rating":
                raise DataFormatError(
                    f"{path}, line 1: missing column {col!r} (the header has {names}). A CSV/TSV needs a header "
                    f"naming user, item and timestamp (rating optional), e.g. 'user,item,timestamp,rating'.")
        reader = csv.reader(itertools.chain([first], lines), delimiter="\t" if "\t" in first else ",")
        next(reader)
        for lineno, row in enumerate(reader, 2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < len(names):
                raise DataFormatError(f"{path}, line {lineno}: {len(row)} fields, the header has {len(names)}. "
                                      "Is the file truncated, or a field missing its quotes?")
            user, item = row[cols["user"]].strip(), row[cols["item"]].strip()
            if not user or not item:
                raise DataFormatError(f"{path}, line {lineno}: empty user or item id in {row}.")
            try:
                t = _timestamp(row[cols["timestamp"]])
                r = float(row[cols["rating"]]) if "rating" in cols else math.nan
            except ValueError:
                raise DataFormatError(
                    f"{path}, line {lineno}: timestamp {row[cols['timestamp']]!r} or rating is not a number "
                    "(timestamps: numbers such as Unix seconds, or ISO-8601 dates like 2021-03-04T10:00).") from None
            yield user, item, t, r


def _iter_sequences(seqs: list[list[int]]) -> Iterator[Interaction]:
    """Already-ordered sequences as rows: the position is the timestamp, and there is no rating (NaN)."""
    for u, seq in enumerate(seqs):
        for t, item in enumerate(seq):
            yield str(u), str(item), float(t), math.nan


def read_rows(path: str | Path, fmt: str) -> list[Interaction]:
    """Every ``(user, item, timestamp, rating)`` row of ``path`` read as ``fmt``, in file order."""
    path = Path(path)
    if fmt == "csv":
        return list(iter_table(path))
    if fmt == "s3rec":
        return list(_iter_sequences(read_s3rec_txt(path)))
    if fmt == "inter_json":
        return list(_iter_sequences(read_inter_json(path)))
    return list(RAW_READERS[fmt](path))


def resolve_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` checked against what the file looks like, or detected when ``None``. A format the file does not
    look like is an error naming the one it does."""
    if fmt is not None and fmt not in FORMATS:
        raise DataFormatError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    seen = detect_format(path)
    if fmt is None:
        if seen is None:
            raise DataFormatError(
                f"could not tell the format of {path} from its first line {_first_line(Path(path))[:80]!r}. Pass "
                f"--format (one of {', '.join(FORMATS)}); a plain CSV/TSV needs a header line naming user, item "
                "and timestamp (rating optional).")
        return seen
    if seen is not None and SAME.get(seen, seen) != SAME.get(fmt, fmt):
        raise DataFormatError(f"{path} was given as --format {fmt}, but it looks like {seen}: {FORMATS[seen]}. "
                              f"Pass --format {seen}, or leave --format out to detect it.")
    return fmt


def read_user_file(path: str | Path, fmt: str | None = None, kcore: int = 0,
                   min_rating: float | None = None) -> tuple[list[list[int]], dict]:
    """Read a user's file -> ``(sequences, report)``: 1-based item sequences in time order (see the module
    docstring for each step) and a report of what was read, dropped and reordered."""
    path = Path(path)
    fmt = resolve_format(path, fmt)
    rows = read_rows(path, fmt)
    if not rows:
        raise DataFormatError(f"{path} has no interactions (only a header or blank lines). Add one row per "
                              "interaction: user, item, timestamp[, rating].")
    report = {"format": fmt, "rows": len(rows), "users_in_file": len({r[0] for r in rows})}
    first: dict[tuple, Interaction] = {}
    for x in rows:                                   # file order kept; exact repeats of a row counted once
        first.setdefault(x[:3], x)
    report["exact_duplicates_dropped"] = len(rows) - len(first)
    rows = list(first.values())
    if min_rating is not None:
        if all(math.isnan(r[3]) for r in rows):
            raise DataFormatError(f"{path} ({fmt}) has no ratings, so min_rating={min_rating} cannot apply. Leave "
                                  "--min-rating out, or add a rating column.")
        kept = [x for x in rows if x[3] >= min_rating]
        report["below_min_rating_dropped"] = len(rows) - len(kept)
        rows = kept
    if kcore > 1:
        rows = k_core(rows, kcore)
    if not rows:
        raise DataFormatError(f"{path}: no interactions left after filtering (min_rating={min_rating}, "
                              f"kcore={kcore}; the file has {report['rows']} rows of {report['users_in_file']} "
                              "users). Lower --kcore or --min-rating.")
    counts = Counter(x[0] for x in rows)
    short = sum(c < MIN_LEN for c in counts.values())
    if short:
        raise DataFormatError(
            f"{path}: {short} of {len(counts)} users have fewer than {MIN_LEN} interactions after filtering "
            f"(min_rating={min_rating}, kcore={kcore}; {report['users_in_file'] - len(counts)} users were dropped "
            f"by the filters). Leave-one-out needs {MIN_LEN} per user: one to train on, one for validation, one "
            f"for test. Fix: pass --kcore {MIN_LEN} (drops users and items with fewer than {MIN_LEN} "
            "interactions, repeatedly), or remove those users from the file.")
    last: dict[str, float] = {}
    unsorted = set()
    for u, _, t, _ in rows:
        if t < last.get(u, t):
            unsorted.add(u)
        last[u] = max(t, last.get(u, t))
    report.update(users=len(counts), interactions=len(rows), users_out_of_order=len(unsorted),
                  equal_timestamps=sum(c - 1 for c in Counter((u, t) for u, _, t, _ in rows).values()))
    return build_sequences(rows, kcore=0, dedup=False), report
