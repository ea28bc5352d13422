"""Small shared helpers: seeding, device choice, the process group of a torchrun job, atomic file writes,
environment info."""
from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import platform
import random
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

REPO_ROOT = Path(__file__).resolve().parent.parent
# drlib runs from a checkout of this repository (its stored results are the book's), not from an installed copy
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "notebooks").is_dir()


def user_cache() -> Path:
    """``$DRLIB_CACHE``, else ``~/.cache/drlib``: downloaded data, and the checkpoints of an installed drlib."""
    return Path(os.environ.get("DRLIB_CACHE", Path.home() / ".cache" / "drlib"))


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module):
    """Run ``module`` in eval mode (no dropout) inside the block, then restore its train/eval mode."""
    was = module.training
    module.train(False)
    try:
        yield module
    finally:
        module.train(was)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def launched_by_torchrun() -> bool:
    """True in a process that ``torchrun`` started (or any launcher that sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``. In a process
    started by ``torchrun``, ``"auto"`` and ``"cuda"`` mean this process's GPU, ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and launched_by_torchrun():
        name = f"cuda:{os.environ['LOCAL_RANK']}"
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available here; use --device cpu or auto")
    return dev


def init_distributed(device: torch.device | str) -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` in a plain one. In a process started by ``torchrun``, it
    joins the job's process group first (once): ``nccl`` for a CUDA ``device`` (a name goes through
    :func:`pick_device`; the device becomes this process's current one), ``gloo`` on the CPU. A group made before
    (by the caller) is used as it is."""
    if not dist.is_initialized():
        if not launched_by_torchrun():
            return 0, 1
        device = pick_device(device) if isinstance(device, str) else device
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave_process_group)
    return dist.get_rank(), dist.get_world_size()


def _leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process of the job (nothing to wait for in a plain process)."""
    if dist.is_initialized():
        dist.barrier()


class StoppedTime:
    """Seconds this process spent stopped since it was made (``kill -STOP`` from a shell, a suspended machine):
    ``time.perf_counter`` runs on while a process is stopped, so the training loop subtracts this from its wall-clock
    times, and the minutes a record reports are the minutes it computed. A daemon thread wakes every ``tick``
    seconds; a wake-up more than ``slack`` seconds late adds its delay. Torch releases the GIL inside its operations
    and Python hands it over every few milliseconds, so a busy process does not look stopped (tested).

        stopped = StoppedTime(); ...; seconds = time.perf_counter() - t0 - (stopped() - s0); stopped.close()
    """

    def __init__(self, tick: float = 0.25, slack: float = 2.0):
        self._total, self._lock, self._end = 0.0, threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(tick, slack), daemon=True, name="drlib-stopped")
        self._thread.start()

    def _watch(self, tick: float, slack: float) -> None:
        last = time.perf_counter()
        while not self._end.wait(tick):
            now = time.perf_counter()
            late = now - last - tick
            if late > slack:
                with self._lock:
                    self._total += late
            last = now

    def __call__(self) -> float:
        with self._lock:
            return self._total

    def close(self) -> None:
        self._end.set()
        self._thread.join()


def configure_torch(num_threads: int | None = None) -> None:
    """Flush denormals (softmax gradients go subnormal and slow CPU steps ~5x) and set thread count."""
    torch.set_flush_denormal(True)
    if num_threads:
        torch.set_num_threads(num_threads)


def stable_hash(obj: Any) -> str:
    """16 hex digits of the sha256 of ``obj`` as sorted JSON: the config hashes behind run and tokenizer ids."""
    blob = json.dumps(obj, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A crash at any point leaves either the old file or the new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())          # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` with the same crash-safety as :func:`atomic_write_bytes`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def git_commit() -> str:
    """Current commit of the checkout (with ``-dirty`` when there are uncommitted changes), or ``unknown``."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                proc = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {proc} ({torch.get_num_threads()} threads)"


def env_info(device: torch.device) -> dict:
    """Commit, versions and device; in a torchrun job also ``world_size`` (processes) and ``backend``."""
    return {
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": device_name(device),
        **({"world_size": dist.get_world_size(), "backend": dist.get_backend()} if dist.is_initialized() else {}),
    }


def repo_relative(p) -> str:
    """``p`` relative to the repository root when it lies inside it (records stay portable), else absolute."""
    try:
        return str(Path(p).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(p)
