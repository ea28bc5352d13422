"""Investigations: the research probes behind the reproduction notes, as ``python -m drlib investigate NAME``.

Each module is one command: its docstring is the command's ``--help``, ``HELP`` its line in the list and
``STORES`` where it writes; ``add_arguments(parser)`` declares its options and ``main(args, argv)`` runs it. What a
command stores goes through :func:`drlib.results.write_record` (the one record writer) into
``results/investigation/<command>/`` or, for ``speed-ab --out``, ``results/benchmarks/``. ``popularity`` and
``beam-width`` read finished runs named ``MODEL:SEED[:TABLE3-ROW]`` (:mod:`drlib.investigations.common`) from the
weights they kept in runs/. Every command takes ``--dataset`` and ``--profile`` (Beauty and ``cpu`` by default;
``--profile smoke`` runs on synthetic data in seconds, which is how the tests run them).
"""
from __future__ import annotations

import argparse

from . import beam_width, early_steps, grad_terms, popularity, speed_ab, step_time

COMMANDS = {"step-time": step_time, "speed-ab": speed_ab, "early-steps": early_steps, "grad-terms": grad_terms,
            "popularity": popularity, "beam-width": beam_width}


def add_parsers(parser: argparse.ArgumentParser) -> None:
    """One subcommand per module under ``parser`` (``python -m drlib investigate``); each sets
    ``args.investigate`` to the module whose ``main(args, argv)`` runs it."""
    sub = parser.add_subparsers(dest="investigation", required=True, metavar="NAME")
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=f"{module.HELP}; stores: {module.STORES}", description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(investigate=module)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the investigation ``args`` names (parsed by :func:`add_parsers`); ``argv``, the whole command line after
    ``python -m drlib``, is what the records store as their command."""
    return args.investigate.main(args, argv)


__all__ = ["COMMANDS", "add_parsers", "run"]
