"""drlib: an open, runnable reproduction of DiffuReason (arXiv 2602.09744).

>>> import drlib
>>> cfg = drlib.make_config("sasrec", "beauty", profile="cpu", seed=0)
>>> record = drlib.run(cfg)        # trains, or returns the stored result  # doctest: +SKIP
"""
from .config import DataConfig, EvalConfig, RunConfig, TrainConfig
from .data import load_dataset, register_dataset
from .evaluate import evaluate, metrics_from_ranks, target_ranks
from .registry import MODELS, build_model, make_config
from .results import load_records, records_frame
from .runner import run

__version__ = "0.1.0"
__all__ = ["DataConfig", "EvalConfig", "MODELS", "RunConfig", "TrainConfig", "build_model", "evaluate",
           "load_dataset", "load_records", "make_config", "metrics_from_ranks", "records_frame", "register_dataset",
           "run", "target_ranks"]
