"""Notebook parameters as a user types them, checked in a notebook's first cell.

``papermill ... -p datasets sports`` passes the string ``'sports'``; ``-p datasets '["sports"]'`` passes the
string ``'["sports"]'``; ``-y 'datasets: [sports]'`` passes a list; ``-p seeds 0`` passes the int ``0``. Each
function below takes any of these and returns the value the notebook needs, or stops with a ``ValueError`` that
names the parameter, what it got and what it accepts (an unknown dataset or model, a seed that is not an
integer), before anything is loaded or trained.

>>> names("sports", "datasets", ["beauty", "sports"])
['sports']
>>> names('["beauty", "sports"]', "datasets", ["beauty", "sports"])
['beauty', 'sports']
>>> ints("0,1,2", "seeds")
[0, 1, 2]
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterable

from .config import PROFILES
from .data import dataset_names, register_dataset
from .diffureason.ablations import ABLATIONS
from .experiments import EXPLORED
from .registry import MODELS

class DatasetNames(Sequence):
    """The dataset names a notebook accepts: the registered ones (built in, or registered in this process), and
    a path to your own interaction file, registered under its file name (:func:`drlib.data.register_dataset`,
    format detected), so that ``papermill ... -p datasets my_log.csv`` works."""

    def _names(self) -> list[str]:
        return dataset_names()

    def __getitem__(self, i):
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def resolve(self, entry: str) -> str:
        """``entry`` itself, or for an existing file the name it is registered under."""
        path = Path(entry).expanduser()
        if entry in self._names() or not path.is_file():
            return entry
        return register_dataset(path.stem, path).name


DATASETS = DatasetNames()
MODEL_NAMES = tuple(MODELS)
EXPLORED_MODELS = tuple(EXPLORED)            # the DiffuReason models the explorer shows
ABLATION_ROWS = tuple(ABLATIONS)
__all__ = ["ABLATION_ROWS", "DATASETS", "EXPLORED_MODELS", "MODEL_NAMES", "PROFILES", "choice", "flag", "integer",
           "ints", "mapping", "names", "overrides"]


def _items(value: Any, what: str) -> list:
    """A list from a list/tuple, a JSON list string, a bracketed YAML-style list (``[a, b]``), a comma-separated
    string or one scalar."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                if not text.endswith("]"):
                    raise ValueError(f"{what}: could not read {value!r} as a list; write it as a,b or '[\"a\", "
                                     "\"b\"]'") from None
                parsed = [p.strip().strip("'\"") for p in text[1:-1].split(",")]
            if not isinstance(parsed, list):
                raise ValueError(f"{what}: {value!r} is not a list")
            return [p for p in parsed if p != ""]
        return [p.strip() for p in text.split(",") if p.strip()]
    if value is None:
        return []
    return [value]


def names(value: Any, what: str, known: Iterable[str]) -> list[str]:
    """One or more names among ``known`` (datasets, models, Table 3 rows), in the order given, duplicates dropped."""
    out = [str(v) for v in _items(value, what)]
    if isinstance(known, DatasetNames):
        out = [known.resolve(v) for v in out]
    known = list(known)
    if not out:
        raise ValueError(f"{what}: no names given; choose from {', '.join(known)}")
    bad = [v for v in out if v not in known]
    if bad:
        raise ValueError(f"{what}: unknown {', '.join(map(repr, bad))}; known: {', '.join(known)}")
    return list(dict.fromkeys(out))


def choice(value: Any, what: str, known: Sequence[str]) -> str:
    """One name among ``known`` (a single dataset, model or profile); a one-element list is accepted."""
    items = _items(value, what)
    if len(items) != 1:
        raise ValueError(f"{what}: give one of {', '.join(known)}, got {value!r}")
    return names(items, what, known)[0]


def integer(value: Any, what: str, minimum: int | None = None) -> int:
    """An integer (``3``, ``"3"``; not ``3.5`` or ``"x"``), at least ``minimum`` if given."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{what}: expected an integer, got {value!r}") from None
    if not isinstance(value, int):
        raise ValueError(f"{what}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what}: must be >= {minimum}, got {value}")
    return value


def ints(value: Any, what: str) -> list[int]:
    """One or more integers (seeds): ``0``, ``"0,1,2"``, ``"[0, 1]"``, ``[0, 1]``."""
    out = [integer(v, what) for v in _items(value, what)]
    if not out:
        raise ValueError(f"{what}: give at least one integer, e.g. 0 or 0,1,2")
    return out


def flag(value: Any, what: str) -> bool:
    """A yes/no switch: ``True``/``False`` or the strings true/false, yes/no, 1/0."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{what}: expected True or False, got {value!r}")


def overrides(value: Any, what: str = "overrides") -> list[str]:
    """``--set`` strings (``section.field=value``): a list, a JSON list string, or one override. Commas belong to
    values (``eval.ks=5,10``), so a plain string is one override; give several as a list."""
    if isinstance(value, str):
        text = value.strip()
        items = _items(text, what) if text.startswith("[") else ([text] if text else [])
    else:
        items = _items(value, what)
    out = [str(v) for v in items]
    bad = [v for v in out if "=" not in v or "." not in v.partition("=")[0]]
    if bad:
        raise ValueError(f"{what}: {', '.join(map(repr, bad))} is not SECTION.FIELD=VALUE (e.g. train.epochs=2)")
    return out


def mapping(value: Any, what: str, keys: Iterable[str] | None = None) -> dict | None:
    """A dict (``seeds_per_model``, ``values``), or a JSON object string; ``None`` stays ``None``. With ``keys``,
    every key must be one of them."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{what}: could not read {value!r}; give a JSON object, e.g. "
                             "'{\"diffureason-s\": [0, 1]}'") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what}: expected a mapping, got {value!r}")
    if keys is not None:
        keys = list(keys)
        bad = [k for k in value if k not in keys]
        if bad:
            raise ValueError(f"{what}: unknown {', '.join(map(repr, bad))}; known: {', '.join(keys)}")
    return value
