"""The dataset registry: name -> files, format, public download location and sha256.

Where data is looked for, in order:

1. an explicit path (``--data-path`` / ``load_dataset(..., path=...)``): a file, or a folder laid out like
   ``../shared/data`` (``<folder>/<dataset>/<file>``) or holding the file directly;
2. the ``DRLIB_DATA`` environment variable (a folder laid out the same way);
3. ``../shared/data`` beside the checkout;
4. the user cache (``$DRLIB_CACHE`` or ``~/.cache/drlib``), filled by a checksummed download.

A file whose sha256 differs from the registered one is refused (truncated or a different version):
the error names the path and the fix. Pass ``verify=False`` for a deliberately edited copy.

Your own file joins the registry with :func:`register_dataset` (``--data-file`` on the command line): it is
read where it lies (never copied), its sha256 is taken at registration and checked on every read, and
:func:`file_fields` gives the :class:`~drlib.config.DataConfig` fields that put it into the config hash.
"""
from __future__ import annotations

import hashlib
import os
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .readers import DataFormatError, build_sequences, RAW_READERS, read_inter_json, read_s3rec_txt
from .user import UserFile, read_user_file, resolve_format
from ..utils import REPO_ROOT, user_cache


@dataclass(frozen=True)
class DataFile:
    relpath: str          # path under a data root, e.g. "beauty/Beauty.txt"
    sha256: str
    url: str              # public download location (pinned to a commit)
    size: int


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    display: str          # name used in the paper's tables
    format: str           # "s3rec" | "inter_json" | one of readers.RAW_READERS
    interactions: DataFile | None
    extra: dict = field(default_factory=dict)   # other files (attributes, id maps, reference SIDs)
    min_rating: float | None = None             # raw formats only
    kcore: int = 5
    paper_stats: tuple = ()                     # Table 1: users, items, interactions, avg len
    note: str = ""
    user_file: UserFile | None = None           # a file registered with register_dataset (read where it lies)


_S3 = "https://raw.githubusercontent.com/aHuiWang/CIKM2020-S3Rec/49a890dcb516c9ed3126564495234ea74d5cd566/data/"
_LETTER = "https://raw.githubusercontent.com/HonghuiBao2000/LETTER/8d0154e28de37dbb6e24871c508ad8ddb1921cda/data/"
_GENREC = "https://raw.githubusercontent.com/WncFht/GenRec/6b50a813e071f6e31b4052319f1b723ea01a934f/data/"
_RDREC = "https://raw.githubusercontent.com/WangXFng/RDRec/4055c3028d3afbd57a0fffd54076825836b7cad7/data/"

DATASETS: dict[str, DatasetSpec] = {
    "beauty": DatasetSpec(
        name="beauty", display="Beauty", format="s3rec",
        interactions=DataFile("beauty/Beauty.txt",
                              "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8",
                              _S3 + "Beauty.txt", 1090094),
        extra={
            "attributes": DataFile("beauty/Beauty_item2attributes.json",
                                   "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4",
                                   _S3 + "Beauty_item2attributes.json", 305674),
            "datamaps": DataFile("beauty/datamaps.json",
                                 "c3386147637538f6d97f7eafffeb4e7180daa0638875bc1d889bbee45ce241a8",
                                 _RDREC + "beauty/datamaps.json", 1130062),
            "reference_sids": DataFile("beauty/reference_sids/Beauty.index.json",
                                       "be3fb890e59b5443824cdebc560ef349191b97f20d3aecad4727de2d6b212c82",
                                       _LETTER + "Beauty/Beauty.index.json", 634238),
        },
        paper_stats=(22363, 12101, 198502, 8.88)),
    "sports": DatasetSpec(
        name="sports", display="Sports", format="s3rec",
        interactions=DataFile("sports/Sports_and_Outdoors.txt",
                              "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
                              _S3 + "Sports_and_Outdoors.txt", 1707483),
        extra={
            "attributes": DataFile("sports/Sports_and_Outdoors_item2attributes.json",
                                   "7fb10733ac4f1811384a52144cdefa7fcc7536fa80a7232c5da9bd789155c34b",
                                   _S3 + "Sports_and_Outdoors_item2attributes.json", 653780),
            "datamaps": DataFile("sports/datamaps.json",
                                 "4746e0d7dada225d8a2191f9002b6a0335c065f5ebbb71cd305f00e2fda9f124",
                                 _RDREC + "sports/datamaps.json", 1783830),
        },
        paper_stats=(35598, 18357, 296337, 8.32)),
    "instruments": DatasetSpec(
        name="instruments", display="Instruments", format="inter_json",
        interactions=DataFile("instruments/Instruments.inter.json",
                              "0a11d47791d90483005da93c36d826679e20e4592d1d2b86518d5f56f218e743",
                              _LETTER + "Instruments/Instruments.inter.json", 3312848),
        extra={
            "item2id": DataFile("instruments/Instruments.item2id",
                                "76380000fb809cf19e841c69163310ec2d32b7b578277e2b659fbd1e72714688",
                                _GENREC + "Instruments/Instruments.item2id", 157642),
            "reference_sids": DataFile("instruments/reference_sids/Instruments.index.json",
                                       "33c87e28c52ae367985bdf494cb49d676d181e13a39497b4ad035f46111546dd",
                                       _LETTER + "Instruments/Instruments.index.json", 518041),
        },
        paper_stats=(24772, 9922, 206153, 8.32)),
    "video_games": DatasetSpec(
        name="video_games", display="Video & Games", format="amazon2023", interactions=None,
        min_rating=3.0, kcore=5, paper_stats=(67658, 25535, 654867, 9.68),
        note=("No public copy of the paper's Video & Games split is known. Download the Amazon Reviews 2023 "
              "'Video_Games' 5-core rating-only CSV yourself and pass it with --data-path FILE; drlib keeps "
              "ratings > 3 and re-applies 5-core filtering. The paper's 67,658 users come from a step it does "
              "not describe, so the statistics will differ.")),
}


def get_spec(name: str) -> DatasetSpec:
    key = name.lower().replace("-", "_").replace(" ", "_")
    if key in ("synthetic",):
        raise KeyError("'synthetic' is generated, not read: use drlib.data.load_dataset('synthetic')")
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))} and 'synthetic'")
    return DATASETS[key]


BUILT_IN = frozenset(DATASETS) | {"synthetic"}
_USER_READS: dict[UserFile, tuple[list[list[int]], dict]] = {}


def register_dataset(name: str, path: str | os.PathLike, format: str | None = None, kcore: int = 0,
                     min_rating: float | None = None) -> DatasetSpec:
    """Make your own interaction file a dataset called ``name`` in this process (every place that takes a
    dataset name then takes it). The file is read once here, so a bad file fails now with what to fix; see
    :mod:`drlib.data.user` for the formats (detected when ``format`` is None), the filters and the checks.
    Registering a name again replaces it; the built-in names cannot be replaced.

    >>> spec = register_dataset("shop", "my_interactions.csv", kcore=5)        # doctest: +SKIP
    >>> drlib.make_config("sasrec", "shop").data.file_sha256[:8]               # doctest: +SKIP
    """
    key = name.lower().replace("-", "_").replace(" ", "_")
    if not re.fullmatch(r"[a-z0-9_]+", key):
        raise ValueError(f"dataset name {name!r}: use letters, digits, '_' or '-' (it becomes part of run ids)")
    if key in BUILT_IN:
        raise ValueError(f"{name!r} is a built-in dataset; register your file under another name "
                         "(--dataset NAME with --data-file)")
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise DataFormatError(f"data file not found: {file}. Pass the path of your interaction file.")
    uf = UserFile(str(file), sha256_of(file), resolve_format(file, format), int(kcore),
                  None if min_rating is None else float(min_rating))
    read_user_sequences(uf)
    spec = DatasetSpec(name=key, display=name, format=uf.format, interactions=None, kcore=uf.kcore,
                       min_rating=uf.min_rating, user_file=uf, note=f"your file {file}")
    DATASETS[key] = spec
    return spec


def read_user_sequences(uf: UserFile, verify: bool = True) -> list[list[int]]:
    """The sequences of a registered file; with ``verify`` its sha256 must still be the registered one."""
    if not Path(uf.path).is_file():
        raise DataFormatError(f"your data file {uf.path} is gone; put it back, or register another file")
    if verify and sha256_of(Path(uf.path)) != uf.sha256:
        raise DataFormatError(f"{uf.path} changed since it was registered (sha256 {uf.sha256[:12]}...). Register "
                              "it again (or rerun the command) to use the new content: it gets a new run id.")
    if uf not in _USER_READS:
        _USER_READS[uf] = read_user_file(uf.path, uf.format, uf.kcore, uf.min_rating)
    return _USER_READS[uf][0]


def user_file_report(name: str) -> dict:
    """What reading a registered file found: format, rows, duplicates and filtered rows dropped, users out of
    time order in the file, equal timestamps (see :func:`drlib.data.user.read_user_file`)."""
    uf = get_spec(name).user_file
    if uf is None:
        raise KeyError(f"{name!r} is not a dataset registered from your own file")
    read_user_sequences(uf, verify=False)
    return _USER_READS[uf][1]


def file_fields(name: str, path: str | os.PathLike | None = None) -> dict:
    """The :class:`~drlib.config.DataConfig` fields for dataset ``name``: ``{"path": path}`` for a built-in one;
    for a registered file its path, sha256, format, k-core and rating filter (the ``file_*`` fields enter the
    config hash, so two different files never share a run id)."""
    try:
        uf = get_spec(name).user_file
    except KeyError:
        uf = None
    if uf is None:
        return {"path": path}
    if path is not None and Path(path).resolve() != Path(uf.path):
        raise ValueError(f"dataset {name!r} is your file {uf.path}; a data path ({path}) does not apply to it")
    return {"path": uf.path, "file_sha256": uf.sha256, "file_format": uf.format, "file_kcore": uf.kcore,
            "file_min_rating": uf.min_rating}


def cache_dir() -> Path:
    return user_cache()


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def candidate_roots(path: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The places searched, in order, as ``(how, folder)`` pairs."""
    roots: list[tuple[str, Path]] = []
    if path is not None:
        roots.append(("explicit path", Path(path)))
    if os.environ.get("DRLIB_DATA"):
        roots.append(("$DRLIB_DATA", Path(os.environ["DRLIB_DATA"])))
    roots.append(("../shared/data beside the checkout", REPO_ROOT.parent / "shared" / "data"))
    roots.append(("user cache", cache_dir()))
    return roots


def download(df: DataFile, dest: Path) -> Path:
    """Download ``df.url`` to ``dest`` atomically and check its sha256; a mismatch leaves no file behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(df.url, timeout=60) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        got = sha256_of(tmp)
        if got != df.sha256:
            raise DataFormatError(f"download of {df.url} has sha256 {got}, expected {df.sha256}; "
                                  "the download was truncated or the source changed. Try again or fetch it by hand.")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def locate(df: DataFile, path: str | os.PathLike | None = None, verify: bool = True,
           allow_download: bool = True) -> Path:
    """Find (or download) one registered file; see the module docstring for the search order."""
    tried = []
    if path is not None and not Path(path).exists():
        raise DataFormatError(f"the data path {path} does not exist. Fix: pass the folder that holds "
                              f"<dataset>/{Path(df.relpath).name} (or the file itself), or leave the path out to "
                              "search $DRLIB_DATA, ../shared/data and the user cache.")
    for how, root in candidate_roots(path):
        options = [root] if root.is_file() else [root / df.relpath, root / Path(df.relpath).name]
        for p in options:
            tried.append(f"{p} ({how})")
            if p.is_file():
                if verify:
                    got = sha256_of(p)
                    if got != df.sha256:
                        raise DataFormatError(
                            f"{p} has sha256 {got} but the registered file has {df.sha256} "
                            f"({df.size:,} bytes; this one has {p.stat().st_size:,}). It is truncated or a different "
                            f"version. Replace it with the file from {df.url}, or pass verify=False "
                            "(--no-verify) if you edited it on purpose.")
                return p
            if how == "explicit path" and root.is_file():
                break
        if how == "explicit path":   # the user named a place: never fall back silently to another copy
            raise DataFormatError(f"{Path(df.relpath).name} is not in {root}; tried:\n  " + "\n  ".join(tried) +
                                  "\nFix: pass the folder that holds <dataset>/<file> or the file itself.")
    if allow_download:
        dest = cache_dir() / df.relpath
        try:
            return download(df, dest)
        except DataFormatError:
            raise
        except Exception as e:  # network errors
            tried.append(f"{df.url} (download failed: {e})")
    raise DataFormatError("could not find " + Path(df.relpath).name + "; tried:\n  " + "\n  ".join(tried) +
                          "\nFix: pass --data-path, set DRLIB_DATA to a folder holding <dataset>/<file>, "
                          "or download the file into the user cache.")


def read_sequences(spec: DatasetSpec, path: str | os.PathLike | None = None, verify: bool = True,
                   fmt: str | None = None) -> list[list[int]]:
    """Read a registered dataset (or, with ``fmt`` given, any file in a known format) as 1-based sequences."""
    if spec.user_file is not None:
        return read_user_sequences(spec.user_file, verify=verify)
    fmt = fmt or spec.format
    if spec.interactions is None:
        if path is None or not Path(path).is_file():
            raise DataFormatError(f"dataset {spec.name!r} has no public copy drlib can fetch. {spec.note}")
        file = Path(path)
    elif fmt == spec.format:
        file = locate(spec.interactions, path, verify=verify)
    else:
        file = Path(path)
    if fmt == "s3rec":
        return read_s3rec_txt(file)
    if fmt == "inter_json":
        return read_inter_json(file)
    if fmt in RAW_READERS:
        return build_sequences(RAW_READERS[fmt](file), min_rating=spec.min_rating, kcore=spec.kcore)
    raise KeyError(f"unknown format {fmt!r}; known: s3rec, inter_json, {', '.join(RAW_READERS)}")
