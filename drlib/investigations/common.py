"""What the investigation commands share: naming a finished run (``MODEL:SEED[:TABLE3-ROW]``), the options every
command has, and the command line a stored record keeps.

A RUN names a training that has finished and kept its best weights in ``runs/<experiment>/<run-id>/model.pt``
(runs/ is not committed): ``hstu:1`` is HSTU seed 1 of the ``main`` experiment, ``diffureason-h:1:w/o RL`` the
"w/o RL" row of Table 3 for DiffuReason-H seed 1 (the ``ablation`` experiment). Its config is the one
``python -m drlib train`` builds from the same model, seed, dataset, profile and ``--set`` overrides.
"""
from __future__ import annotations

import argparse
import shlex
import typing

from ..config import PROFILES, RunConfig
from ..data import dataset_names
from ..diffureason.ablations import ABLATIONS
from ..registry import MODELS, make_config
from ..runner import load_trained_model


class RunSpec(typing.NamedTuple):
    """A finished run by model, seed and (for a Table 3 row) ablation."""
    model: str
    seed: int
    ablation: str | None = None


def run_spec(text: str) -> RunSpec:
    """``MODEL:SEED[:TABLE3-ROW]`` -> :class:`RunSpec` (an ``argparse`` type: a wrong name is a usage error)."""
    model, _, rest = text.partition(":")
    seed, _, row = rest.partition(":")
    if model not in MODELS:
        raise argparse.ArgumentTypeError(f"{text!r}: unknown model {model!r}; known: {', '.join(MODELS)}")
    try:
        seed_int = int(seed)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write MODEL:SEED[:TABLE3-ROW], e.g. hstu:1 or "
                                         "'diffureason-h:1:w/o RL' (the seed is an integer)") from None
    if row and row not in ABLATIONS:
        raise argparse.ArgumentTypeError(f"{text!r}: unknown Table 3 row {row!r}; known: {', '.join(ABLATIONS)}")
    return RunSpec(model, seed_int, row or None)


def config_of(spec: RunSpec, dataset: str | None = None, profile: str = "cpu",
              overrides: typing.Sequence[str] = ()) -> RunConfig:
    """The config of the run ``spec`` names: a Table 3 row is a run of the ``ablation`` experiment, anything else
    one of ``main``."""
    return make_config(spec.model, dataset, profile, spec.seed, overrides,
                       experiment="ablation" if spec.ablation else "main", ablation=spec.ablation)


def trained_runs(args: argparse.Namespace) -> typing.Iterator[tuple[RunSpec, RunConfig, object]]:
    """``(spec, config, model)`` of each of ``args.runs`` whose weights were kept in runs/; the others are skipped
    with a printed line."""
    for spec in args.runs:
        cfg = config_of(spec, args.dataset, args.profile, args.overrides)
        model = load_trained_model(cfg)
        if model is None:
            print(f"skipped {spec.model}:{spec.seed}: no weights in runs/ for {cfg.run_id}")
            continue
        yield spec, cfg, model


def add_config_args(p: argparse.ArgumentParser, threads: int | None, overrides: bool = True) -> None:
    """``--dataset``, ``--profile``, ``--set`` and ``--threads``, as ``python -m drlib train`` spells them."""
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help=f"dataset: {', '.join(dataset_names())} (default: beauty; synthetic for --profile smoke)")
    p.add_argument("--profile", default="cpu", choices=PROFILES,
                   help="config profile (default: cpu; smoke: tiny model on synthetic data, for tests)")
    if overrides:
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                       help="override a config field, repeatable (as for train)")
    p.add_argument("--threads", type=int, default=threads, metavar="N",
                   help="CPU threads (default: " + (f"{threads})" if threads else "the profile's train.num_threads)"))


def command_line(argv: typing.Sequence[str]) -> str:
    """The command a record stores: ``python -m drlib`` and the arguments as given, shell-quoted."""
    return "python -m drlib " + " ".join(shlex.quote(a) for a in argv)
