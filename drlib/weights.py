"""Small committed weights: a finished run's best weights as ``results/weights/<run-id>.safetensors`` beside a record
``results/weights/<run-id>.json`` (the run's config, the file's sha256 and size), so that the explorer and the
probes work on a fresh clone without training.

Safetensors holds tensors only (no pickled code), the moral equivalent of ``torch.load(..., weights_only=True)``;
the sha256 is checked before loading. Floating-point tensors are stored in float16 and loaded back into the model's
float32 parameters: half the size (a DiffuReason-S model at the ``cpu`` profile on Beauty is 2.3 MB), at the price
of scores that differ from the run's by float16 rounding. What must match the run exactly (the explorer's stored
views) is computed from the full-precision weights the run kept in ``runs/`` when they are there
(:func:`model_of`).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import RunConfig
from .registry import config_from_record
from .results import find_run_record, read_record, results_dir, write_record
from .runner import build_for, get_dataset, load_trained_model

EXPERIMENT = "weights"


def weights_paths(run_id: str, root=None) -> tuple[Path, Path]:
    """(the ``.safetensors`` file, its ``.json`` record) of run ``run_id``."""
    folder = Path(root or results_dir()) / EXPERIMENT
    return folder / f"{run_id}.safetensors", folder / f"{run_id}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_weights(run_id: str, results_root=None, runs_root=None) -> dict:
    """Write the kept weights of finished run ``run_id`` (``runs/<experiment>/<run-id>/model.pt``) to
    ``results/weights/`` and return the record; ``FileNotFoundError`` when the run kept none."""
    _, rec = find_run_record(run_id, results_root)
    cfg = config_from_record(rec)
    model = load_trained_model(cfg, runs_root)
    if model is None:
        raise FileNotFoundError(f"run {run_id} kept no weights under runs/ (train it, or copy its model.pt there)")
    tensors, path = _state(model), weights_paths(run_id, results_root)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    body = {"source_run": run_id, "weights": {"file": path.name, "sha256": _sha256(path), "dtype": "float16",
                                              "bytes": path.stat().st_size, "tensors": len(tensors)}}
    return write_record(weights_paths(run_id, results_root)[1], body, cfg=cfg, experiment=EXPERIMENT,
                        command=f"python -m drlib weights {run_id}")


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as safetensors takes it: contiguous tensors, shared storage cloned apart, floats as float16."""
    return {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().clone()
            for k, v in model.state_dict().items()}


def committed_model(run_id: str, results_root=None) -> tuple[torch.nn.Module, RunConfig]:
    """The model of run ``run_id`` from its committed weights (sha256 checked), in eval mode, and its config."""
    path, meta = weights_paths(run_id, results_root)
    if not meta.exists():
        raise FileNotFoundError(f"no committed weights for {run_id} ({meta}); `python -m drlib weights {run_id}` "
                                "writes them from a finished run's kept weights")
    rec = read_record(meta)
    if _sha256(path) != rec["weights"]["sha256"]:
        raise ValueError(f"{path} does not match the sha256 in {meta}: altered or truncated")
    cfg = config_from_record(rec)
    model = build_for(cfg, get_dataset(cfg))
    model.load_state_dict(load_file(str(path)), strict=True)      # float16 copied into the float32 parameters
    return model.eval(), cfg


def model_of(run_id: str, results_root=None, runs_root=None) -> tuple[torch.nn.Module, RunConfig, str]:
    """The model of finished run ``run_id``, in eval mode: its full-precision kept weights (``runs/``) when they are
    on this machine, else its committed float16 weights. Returns ``(model, config, "kept" | "committed")``."""
    _, rec = find_run_record(run_id, results_root)
    cfg = config_from_record(rec)
    model = load_trained_model(cfg, runs_root)
    if model is not None:
        return model.eval(), cfg, "kept"
    model, cfg = committed_model(run_id, results_root)
    return model, cfg, "committed"
