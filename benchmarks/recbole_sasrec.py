#!/usr/bin/env python3
"""Side-by-side benchmark: RecBole 1.2.1's SASRec and drlib's SASRec on the same split, same evaluator.

One process trains RecBole's SASRec, then drlib's SASRec, on the same leave-one-out split of a dataset
(Beauty by default), on the same machine with the same thread count. After every epoch each model is scored on
the validation users by drlib's evaluator (full ranking, history masked), so both time-to-accuracy curves are
measured with one yardstick. The best validation epoch's weights of each model are then scored on the test
users. Everything goes into one JSON record, ``results/benchmarks/recbole-sasrec-<dataset>-seed<seed>.json``.

Setup (once; creates ``benchmarks/.venv-recbole``, never part of drlib's install or CI)::

    python3 benchmarks/recbole_sasrec.py --setup

Run (the script re-executes itself with the benchmark's venv when it is started from another Python)::

    OMP_NUM_THREADS=1 python3 benchmarks/recbole_sasrec.py --seed 0 --threads 2
    OMP_NUM_THREADS=1 python3 benchmarks/recbole_sasrec.py --smoke --threads 1     # plumbing check, ~1 min

See ``benchmarks/README.md`` for the protocol, the timing definitions and the record's layout.
"""
from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".venv-recbole"
VENV_PY = VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements-recbole.txt"
TORCH_VERSION = "2.13.0"
RECBOLE_VERSION = "1.2.1"
KS = (5, 10)
METRIC = "ndcg@10"


# ----------------------------------------------------------------------------------------------- environment
def setup_env() -> None:
    """Create ``benchmarks/.venv-recbole`` and install the pinned requirements plus drlib (editable, no deps)."""
    if not VENV_PY.exists():
        print(f"creating {VENV.relative_to(REPO)} with {sys.executable} -m venv", flush=True)
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    pip = [str(VENV_PY), "-m", "pip", "install"]
    subprocess.check_call(pip + ["-r", str(REQUIREMENTS)])
    subprocess.check_call(pip + ["--no-deps", "-e", str(REPO)])
    probe = ("import torch, recbole, drlib; "
             f"assert torch.__version__.split('+')[0] == {TORCH_VERSION!r}, torch.__version__; "
             f"assert recbole.__version__ == {RECBOLE_VERSION!r}, recbole.__version__; "
             "print('torch', torch.__version__, '| recbole', recbole.__version__, '| drlib', drlib.__file__)")
    subprocess.check_call([str(VENV_PY), "-c", probe], env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(f"ready: {VENV_PY.relative_to(REPO)} {Path(__file__).relative_to(REPO)} --smoke", flush=True)


def maybe_reexec_in_venv() -> None:
    """Run under ``benchmarks/.venv-recbole`` when started from a Python that lacks recbole."""
    try:
        import recbole  # noqa: F401
        return
    except ImportError:
        pass
    if Path(sys.prefix).resolve() != VENV.resolve() and VENV_PY.exists():
        os.execv(str(VENV_PY), [str(VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.exit(f"recbole is not importable from {sys.executable}. Create the benchmark's environment first:\n"
             f"  python3 {Path(__file__).relative_to(REPO)} --setup")


def import_recbole():
    """Import RecBole 1.2.1 with the two runtime patches this benchmark needs (site-packages stay untouched).

    * ``torch.load`` defaults to ``weights_only=False`` again: torch >= 2.6 made ``True`` the default, and
      RecBole's checkpoints (config objects inside) no longer load. (This benchmark keeps its best weights in
      memory and never loads a checkpoint; the patch is there so RecBole's own calls would work.)
    * autograd anomaly detection OFF: ``recbole.model.sequential_recommender.sine`` switches it on at import for
      the whole process, which made every training step ~1.8x slower.
    """
    import warnings
    import torch
    # RecBole 1.2.1 against pandas 2.2 / torch 2.13: FutureWarnings about chained fillna and
    # torch.cuda.amp.GradScaler, harmless here
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")
    if not getattr(torch.load, "_drlib_bench_patched", False):
        patched = functools.partial(torch.load, weights_only=False)
        patched._drlib_bench_patched = True
        torch.load = patched
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.interaction import Interaction
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import early_stopping, init_seed
    torch.autograd.set_detect_anomaly(False)
    assert not torch.is_anomaly_enabled()
    return dict(version=recbole.__version__, Config=Config, create_dataset=create_dataset,
                data_preparation=data_preparation, Interaction=Interaction, SASRec=SASRec, Trainer=Trainer,
                early_stopping=early_stopping, init_seed=init_seed)


@contextmanager
def chdir(path: Path):
    """RecBole writes ``log_tensorboard/`` (and with a logger ``log/``) under the working directory."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextmanager
def plain_argv():
    """RecBole's Config parses ``--key=value`` from ``sys.argv`` (and would take e.g. ``--seed=3``): hide ours."""
    old = sys.argv
    sys.argv = old[:1]
    try:
        yield
    finally:
        sys.argv = old


# ------------------------------------------------------------------------------------------------------ data
def prepare_data(args):
    """The drlib split both models use, plus the (possibly reduced) sequences it was made from.

    Full run: ``drlib.data.load_dataset(name)`` as is. ``--smoke``: a random subset of users, items renumbered
    1..m in their original order so that drlib's catalogue and RecBole's (the items that occur) are the same."""
    import numpy as np
    from drlib.data import load_dataset, load_sequences, split_leave_one_out
    seqs, n_items = load_sequences(args.dataset)
    seqs = [np.asarray(s, dtype=np.int64) for s in seqs]
    if args.smoke:
        rng = np.random.default_rng(args.seed)
        keep = np.sort(rng.choice(len(seqs), size=min(args.smoke_users, len(seqs)), replace=False))
        seqs = [seqs[u] for u in keep]
        used = np.unique(np.concatenate(seqs))
        remap = np.zeros(int(used.max()) + 1, dtype=np.int64)
        remap[used] = np.arange(1, len(used) + 1)
        seqs = [remap[s] for s in seqs]
        ds = split_leave_one_out(args.dataset, seqs, max_len=args.max_len, n_items=len(used))
    else:
        ds = load_dataset(args.dataset, max_len=args.max_len)
        seqs = ds.sequences
    used = np.unique(np.concatenate(seqs))
    if not (len(used) == ds.n_items and used[0] == 1 and used[-1] == ds.n_items):
        raise SystemExit(f"{args.dataset}: {ds.n_items - len(used)} of items 1..{ds.n_items} never occur; RecBole's "
                         "catalogue (the items that occur) would differ from drlib's. Renumber the items first.")
    h = hashlib.sha256()
    for s in seqs:
        h.update(np.asarray(s, dtype=np.int64).tobytes())
        h.update(b"|")
    info = {"name": args.dataset, "n_users": ds.n_users, "n_items": ds.n_items,
            "n_interactions": int(sum(len(s) for s in seqs)), "n_train_examples": int(len(ds.train_targets)),
            "max_len": ds.max_len, "sequences_sha256": h.hexdigest(),
            "subset": {"users": len(seqs), "of": None} if not args.smoke else
                      {"users": len(seqs), "seed": args.seed, "items_renumbered": True}}
    return ds, info


def write_atomic_files(ds, root: Path, name: str) -> Path:
    """``<root>/<name>/<name>.inter``: one row per interaction, user token = drlib user row, item token = drlib
    item id, timestamp = position within the user's sequence (so RecBole's time-ordered leave-one-out split is
    drlib's split)."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.inter"
    with open(path, "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, s in enumerate(ds.sequences):
            f.write("".join(f"{u}\t{int(i)}\t{t}\n" for t, i in enumerate(s)))
    return path


# ----------------------------------------------------------------------------------------- the RecBole side
def recbole_config_dict(args, workdir: Path) -> dict:
    cfg = {
        "data_path": str(workdir),
        "checkpoint_dir": str(workdir / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": args.max_len,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2,
        "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,        # RecBole's SASRec defaults
        "learning_rate": 1e-3,
        "train_batch_size": 512,
        "epochs": args.max_epochs,
        "stopping_step": 10,
        "metrics": ["Recall", "NDCG"], "topk": list(KS), "valid_metric": "NDCG@10",
        "metric_decimal_place": 6,     # RecBole's own (unmasked) numbers, kept only for the evaluator check
        "seed": args.seed, "reproducibility": True,
        "gpu_id": "", "use_gpu": False, "worker": 0,
        "show_progress": False, "log_wandb": False, "save_dataset": False, "save_dataloaders": False,
    }
    if args.recbole_dropout is not None:
        cfg["hidden_dropout_prob"] = cfg["attn_dropout_prob"] = args.recbole_dropout
    import yaml
    for item in args.recbole_set:
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--recbole-set {item!r}: write KEY=VALUE (YAML value), e.g. hidden_dropout_prob=0.2")
        cfg[key.strip()] = yaml.safe_load(value)
    return cfg


RECBOLE_KEYS = ("model", "dataset", "n_layers", "n_heads", "hidden_size", "inner_size", "hidden_dropout_prob",
                "attn_dropout_prob", "hidden_act", "layer_norm_eps", "initializer_range", "loss_type",
                "MAX_ITEM_LIST_LENGTH", "learner", "learning_rate", "weight_decay", "train_batch_size", "epochs",
                "stopping_step", "clip_grad_norm", "train_neg_sample_args", "eval_args", "eval_batch_size", "seed",
                "reproducibility", "shuffle", "enable_amp", "device", "valid_metric", "metrics", "topk")


def jsonable(x):
    return json.loads(json.dumps(x, default=str))


class RecBoleAsDrlib:
    """A trained RecBole sequential model seen through drlib's ``Recommender`` interface (``full_scores``).

    drlib inputs are drlib item ids, left-padded with 0; RecBole's SASRec wants its own ids, right-padded, plus
    ``item_length``. Scores come back in RecBole's item order and are gathered into drlib's (column 0 = padding)."""

    def __init__(self, model, dataset, Interaction, n_items: int, max_len: int):
        import numpy as np
        import torch
        self.model, self.Interaction, self.max_len = model, Interaction, max_len
        tokens = dataset.field2id_token[dataset.iid_field]              # RecBole id -> token; 0 is '[PAD]'
        r2d = np.zeros(len(tokens), dtype=np.int64)
        r2d[1:] = np.array([int(t) for t in tokens[1:]], dtype=np.int64)
        d2r = np.zeros(n_items + 1, dtype=np.int64)
        d2r[r2d[1:]] = np.arange(1, len(tokens))
        if len(tokens) - 1 != n_items or (d2r[1:] == 0).any():
            raise RuntimeError(f"RecBole knows {len(tokens) - 1} items, drlib {n_items}: catalogues differ")
        self.r2d, self.d2r = r2d, d2r
        self.d2r_t = torch.from_numpy(d2r)
        self.item_seq, self.item_len = model.ITEM_SEQ, model.ITEM_SEQ_LEN

    @property
    def training(self) -> bool:
        return self.model.training

    def train(self, mode: bool = True):
        self.model.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def to_recbole(self, inputs):
        """drlib ``[B, L']`` left-padded -> (RecBole ids ``[B, max_len]`` right-padded, lengths ``[B]``)."""
        import torch
        x = self.d2r_t[inputs.cpu()]
        B, width = x.shape
        lens = (inputs.cpu() != 0).sum(1)
        if (lens == 0).any():
            raise ValueError("a user with an empty history: RecBole's SASRec cannot score it")
        j = torch.arange(self.max_len)[None, :]
        src = ((width - lens)[:, None] + j).clamp(max=width - 1)
        seq = torch.where(j < lens[:, None], x.gather(1, src), torch.zeros((), dtype=x.dtype))
        return seq, lens

    def full_scores(self, inputs):
        import torch
        seq, lens = self.to_recbole(inputs)
        inter = self.Interaction({self.item_seq: seq, self.item_len: lens})
        with torch.no_grad():
            scores = self.model.full_sort_predict(inter)                  # [B, n_items + 1], RecBole's order
        return scores[:, self.d2r_t]                                      # drlib's order (column 0: padding)


def recbole_examples(dataset, r2d_item):
    """(drlib user rows, left-padded drlib inputs, drlib targets) of one of RecBole's built datasets."""
    import numpy as np
    from drlib.data import left_pad
    f = dataset.inter_feat
    utok = dataset.field2id_token[dataset.uid_field]
    users = np.array([int(t) for t in utok[f[dataset.uid_field].numpy()]], dtype=np.int64)
    lists = r2d_item[f[dataset.item_id_list_field].numpy()]
    lens = f[dataset.item_list_length_field].numpy()
    inputs = left_pad([row[:n] for row, n in zip(lists, lens)], lists.shape[1])
    return users, inputs, r2d_item[f[dataset.iid_field].numpy()]


def check_split(ds, train_ds, valid_ds, test_ds, r2d_item) -> dict:
    """RecBole's leave-one-out examples == drlib's, row for row (as sets of (user, input, target))."""
    import numpy as np

    def rows(users, inputs, targets):
        m = np.column_stack([users, targets, inputs])
        return m[np.lexsort(m.T[::-1])]

    out = {}
    for name, rb, (u, x, y) in (
            ("train", train_ds, (ds.train_users, ds.train_inputs, ds.train_targets)),
            ("valid", valid_ds, (ds.valid.users, ds.valid.inputs, ds.valid.targets)),
            ("test", test_ds, (ds.test.users, ds.test.inputs, ds.test.targets))):
        a, b = rows(*recbole_examples(rb, r2d_item)), rows(u, x, y)
        same = a.shape == b.shape and bool((a == b).all())
        out[name] = {"recbole_rows": int(len(a)), "drlib_rows": int(len(b)), "identical": same}
        if not same:
            raise RuntimeError(f"RecBole's {name} examples differ from drlib's: {out[name]}")
    return out


def evaluator_check(trainer, loader, wrapped, split, label: str) -> dict:
    """RecBole's own full-sort metrics (which do not mask the history for sequential models) next to drlib's
    evaluator on the wrapped model with ``mask_history=False``: equal up to ties and float noise."""
    from drlib.evaluate import evaluate
    t0 = time.perf_counter()
    native = {k.lower(): float(v) for k, v in trainer.evaluate(loader, load_best_model=False).items()}
    t_native = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = evaluate(wrapped, split, ks=KS, mask_history=False)
    t_ours = time.perf_counter() - t0
    masked = evaluate(wrapped, split, ks=KS, mask_history=True)
    diff = max(abs(native[k] - ours[k]) for k in ours)
    print(f"  check ({label}): RecBole's evaluator {fmt(native)} | drlib unmasked {fmt(ours)} | "
          f"max |diff| {diff:.2e} | drlib masked {fmt(masked)}", flush=True)
    return {"split": label, "recbole_native_unmasked": native, "drlib_unmasked": ours, "drlib_masked": masked,
            "max_abs_diff": diff, "seconds": {"recbole_native": t_native, "drlib_on_wrapper": t_ours}}


def score_check(trainer, loader, wrapped, split, label: str) -> dict:
    """The strictest check of the id and padding conversion: RecBole's own full-sort scores for the users of the
    first evaluation batch (``Trainer._full_sort_batch_eval`` on RecBole's right-padded lists) against the wrapped
    model's scores for the same users from drlib's left-padded inputs, column for column."""
    import numpy as np
    import torch
    from drlib.evaluate import trim_padding
    wrapped.eval()
    with torch.no_grad():
        trainer.tot_item_num = loader._dataset.item_num      # what Trainer.evaluate sets before scoring
        batch = next(iter(loader))
        inter, native, _, _ = trainer._full_sort_batch_eval(batch)
        ds_ = loader._dataset
        utok = ds_.field2id_token[ds_.uid_field]
        rows = np.array([int(t) for t in utok[inter[ds_.uid_field].numpy()]], dtype=np.int64)
        ours = wrapped.full_scores(trim_padding(torch.from_numpy(split.inputs[rows])))
        native = native[:, wrapped.d2r_t]                                 # drlib's column order
    diff = float((native[:, 1:] - ours[:, 1:]).abs().max())
    scale = float(native[:, 1:].abs().max())
    print(f"  check ({label}): scores of {len(rows)} users, RecBole's path vs the wrapper: max |diff| {diff:.2e} "
          f"(scores up to {scale:.2f})", flush=True)
    return {"split": label, "users": int(len(rows)), "max_abs_score_diff": diff, "max_abs_score": scale}


def run_recbole(args, ds, workdir: Path) -> dict:
    import numpy as np
    import torch
    from drlib.evaluate import evaluate
    rb = import_recbole()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.recbole_flush_denormal)
    write_atomic_files(ds, workdir, args.dataset)
    config_dict = recbole_config_dict(args, workdir)
    saved_cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    with chdir(workdir), plain_argv():
        t0 = time.perf_counter()
        config = rb["Config"](model="SASRec", dataset=args.dataset, config_dict=copy.deepcopy(config_dict))
        # Config exports CUDA_VISIBLE_DEVICES=gpu_id (here ''); put the caller's value back
        if saved_cvd is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved_cvd
        rb["init_seed"](config["seed"], config["reproducibility"])
        dataset = rb["create_dataset"](config)
        train_data, valid_data, test_data = rb["data_preparation"](config, dataset)
        rb["init_seed"](config["seed"] + config["local_rank"], config["reproducibility"])
        model = rb["SASRec"](config, train_data._dataset).to(config["device"])
        trainer = rb["Trainer"](config, model)
        trainer.eval_collector.data_collect(train_data)
        prep_seconds = time.perf_counter() - t0
        torch.set_num_threads(args.threads)
        wrapped = RecBoleAsDrlib(model, dataset, rb["Interaction"], ds.n_items, args.max_len)
        split_check = check_split(ds, train_data._dataset, valid_data._dataset, test_data._dataset, wrapped.r2d)
        print(f"RecBole {rb['version']} SASRec: {ds.n_users} users, {ds.n_items} items, "
              f"{split_check['train']['recbole_rows']} training examples (split identical to drlib's), "
              f"{sum(p.numel() for p in model.parameters()):,} parameters, data prep {prep_seconds:.1f}s", flush=True)

        curve, checks = [], []
        best_score, cur_step, best_state, best_epoch, best_valid = -np.inf, 0, None, 0, {}
        train_cum = wall_cum = 0.0
        stopped_early = False
        n_batches = len(train_data)
        assert not torch.is_anomaly_enabled()
        for epoch_idx in range(config["epochs"]):
            t0 = time.perf_counter()
            loss_sum = trainer._train_epoch(train_data, epoch_idx, show_progress=False)
            t_train = time.perf_counter() - t0
            trainer.train_loss_dict[epoch_idx] = loss_sum
            t0 = time.perf_counter()
            valid = evaluate(wrapped, ds.valid, ks=KS, batch_size=args.eval_batch_size, mask_history=True)
            t_eval = time.perf_counter() - t0
            train_cum += t_train
            wall_cum += t_train + t_eval
            # RecBole's own rule (recbole.utils.early_stopping): >= counts as better; stop after stopping_step + 1
            # epochs in a row without one
            best_score, cur_step, stop, update = rb["early_stopping"](
                valid[METRIC], best_score, cur_step, max_step=config["stopping_step"], bigger=True)
            if update:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best_epoch, best_valid = epoch_idx + 1, valid
            curve.append({"epoch": epoch_idx + 1, "train_seconds": t_train, "eval_seconds": t_eval,
                          "train_seconds_cum": train_cum, "wall_seconds_cum": wall_cum,
                          "loss": loss_sum / max(n_batches, 1), **valid})
            print(f"recbole epoch {epoch_idx + 1:3d} loss {loss_sum / n_batches:.4f} valid {METRIC} "
                  f"{valid[METRIC]:.4f}{' *' if update else ''} (train {t_train:.1f}s, valid {t_eval:.1f}s)",
                  flush=True)
            if epoch_idx == 0:      # outside the clocks: the two evaluators agree on the wrapped model
                checks.append(score_check(trainer, valid_data, wrapped, ds.valid, "valid after epoch 1"))
                checks.append(evaluator_check(trainer, valid_data, wrapped, ds.valid, "valid after epoch 1"))
            if stop:
                stopped_early = True
                break
        model.load_state_dict(best_state)
        valid = evaluate(wrapped, ds.valid, ks=KS, batch_size=args.eval_batch_size, mask_history=True)
        test = evaluate(wrapped, ds.test, ks=KS, batch_size=args.eval_batch_size, mask_history=True)
        checks.append(evaluator_check(trainer, test_data, wrapped, ds.test, f"test at best epoch {best_epoch}"))
    config_record = {"overrides": jsonable(config_dict),
                     "effective": jsonable({k: config[k] for k in RECBOLE_KEYS if k in config.final_config_dict})}
    return {"label": f"RecBole {rb['version']} SASRec", "config": config_record, "curve": curve,
            "best_epoch": best_epoch, "epochs_run": len(curve), "stopped_early": stopped_early,
            "best_valid_during_training": best_valid, "valid": valid, "test": test,
            "train_seconds": train_cum, "wall_seconds": wall_cum,
            "eval_seconds": sum(c["eval_seconds"] for c in curve), "batches_per_epoch": n_batches,
            "data_prep_seconds": prep_seconds, "threads": torch.get_num_threads(),
            "flush_denormal": bool(args.recbole_flush_denormal), "split_check": split_check,
            "evaluator_checks": checks, "n_parameters": sum(p.numel() for p in model.parameters())}


# ------------------------------------------------------------------------------------------- the drlib side
def drlib_config(args):
    from drlib.registry import make_config
    base = make_config("sasrec", args.dataset, args.drlib_profile, args.seed, device="cpu")
    overrides = [f"train.num_threads={args.threads}", f"train.epochs={min(base.train.epochs, args.max_epochs)}",
                 f"data.max_len={args.max_len}", *args.drlib_set]
    return make_config("sasrec", args.dataset, args.drlib_profile, args.seed, overrides=overrides, device="cpu")


def run_drlib(args, ds) -> dict:
    import torch
    import drlib.train as dtrain
    from drlib.evaluate import evaluate
    from drlib.runner import build_for
    cfg = drlib_config(args)
    torch.set_num_threads(args.threads)
    model = build_for(cfg, ds)

    eval_clock = {"seconds": 0.0}
    real_evaluate = dtrain.evaluate

    def timed(*a, **kw):                          # fit's per-epoch validation, timed so it can be taken out
        t0 = time.perf_counter()
        try:
            return real_evaluate(*a, **kw)
        finally:
            eval_clock["seconds"] += time.perf_counter() - t0

    curve = []
    cum = {"train": 0.0, "wall": 0.0}

    def on_epoch_end(epoch: int, rec: dict) -> None:
        t_eval = eval_clock["seconds"]
        eval_clock["seconds"] = 0.0
        t_train = rec["seconds"] - t_eval
        cum["train"] += t_train
        cum["wall"] += rec["seconds"]
        curve.append({"epoch": epoch, "train_seconds": t_train, "eval_seconds": t_eval,
                      "train_seconds_cum": cum["train"], "wall_seconds_cum": cum["wall"], "loss": rec["loss"],
                      **{k: rec[k] for k in rec if "@" in k}})

    print(f"drlib SASRec ({cfg.profile} profile): {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"at most {cfg.train.epochs} epochs, patience {cfg.train.patience}", flush=True)
    dtrain.evaluate = timed
    try:
        res = dtrain.fit(model, ds, cfg.train, cfg.eval, seed=cfg.seed, progress=False, on_epoch_end=on_epoch_end,
                         log=lambda s: print(f"drlib {s}", flush=True))
    finally:
        dtrain.evaluate = real_evaluate
    kw = dict(ks=KS, batch_size=args.eval_batch_size, mask_history=True)
    valid = evaluate(model, ds.valid, **kw)
    test = evaluate(model, ds.test, **kw)
    return {"label": "drlib SASRec", "config": cfg.to_dict(), "run_id": cfg.run_id, "curve": curve,
            "best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "stopped_early": res.stopped_early,
            "best_valid_during_training": res.best_valid, "valid": valid, "test": test,
            "train_seconds": cum["train"], "wall_seconds": cum["wall"],
            "eval_seconds": sum(c["eval_seconds"] for c in curve), "batch_seconds": res.batch_seconds,
            "batches_per_epoch": res.n_batches // max(res.epochs_run, 1), "threads": torch.get_num_threads(),
            "flush_denormal": True, "n_parameters": sum(p.numel() for p in model.parameters())}


# ---------------------------------------------------------------------------------------------- the record
def first_reach(curve: list, target: float, clock: str):
    for c in curve:
        if c[METRIC] >= target:
            return c[clock], c["epoch"]
    return None, None


def time_to_target(rec: dict | None, ours: dict | None) -> dict | None:
    """When does each model first reach RecBole's best validation NDCG@10 (drlib-evaluated, masked)?"""
    if not rec or not ours:
        return None
    target = rec["best_valid_during_training"][METRIC]
    out = {"metric": f"valid {METRIC} (drlib evaluator, history masked)", "target": target,
           "target_from": f"RecBole's best epoch ({rec['best_epoch']})"}
    for clock in ("train_seconds_cum", "wall_seconds_cum"):
        r, r_ep = first_reach(rec["curve"], target, clock)
        d, d_ep = first_reach(ours["curve"], target, clock)
        out[clock.replace("_cum", "")] = {"recbole": r, "drlib": d, "recbole_epoch": r_ep, "drlib_epoch": d_ep,
                                          "ratio_recbole_over_drlib": (r / d) if r and d else None}
    return out


def fmt(m: dict) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in m.items())


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--setup", action="store_true", help="create benchmarks/.venv-recbole and install the pins")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads for both models (default 2)")
    p.add_argument("--max-epochs", type=int, default=200,
                   help="RecBole's epoch cap (default 200); drlib runs min(its profile's epochs, this)")
    p.add_argument("--only", choices=("recbole", "drlib", "both"), default="both")
    p.add_argument("--smoke", action="store_true",
                   help="plumbing check: --smoke-users users, 2 epochs each, record written to a temp dir")
    p.add_argument("--smoke-users", type=int, default=2000)
    p.add_argument("--out", type=Path, default=None,
                   help="record path (default results/benchmarks/recbole-sasrec-<dataset>-seed<seed>.json)")
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--max-len", type=int, default=20)
    p.add_argument("--eval-batch-size", type=int, default=1024)
    p.add_argument("--recbole-dropout", type=float, default=None,
                   help="RecBole's hidden_dropout_prob and attn_dropout_prob (default: RecBole's 0.5 and 0.5)")
    p.add_argument("--recbole-set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other RecBole config key (YAML value); repeatable")
    p.add_argument("--recbole-flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True) for RecBole too (drlib's fit always sets it)")
    p.add_argument("--drlib-profile", default="cpu", help="drlib config profile (default cpu)")
    p.add_argument("--drlib-set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="drlib config override, as `python -m drlib train --set`; repeatable")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep RecBole's atomic files and logs here (default: a temp dir, removed at the end)")
    args = p.parse_args(argv)
    if args.smoke:
        args.max_epochs = min(args.max_epochs, 2)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.setup:
        setup_env()
        return 0
    if args.only != "drlib":
        maybe_reexec_in_venv()
    import torch
    from drlib.results import write_record
    if args.only != "drlib":
        import_recbole()                      # patches torch.load, switches anomaly detection back off
    torch.set_num_threads(args.threads)
    command = shlex.join(["python3", os.path.relpath(Path(__file__).resolve(), REPO), *sys.argv[1:]])
    if args.out is not None:
        out = args.out.resolve()
    elif args.smoke:
        out = Path(tempfile.mkdtemp(prefix="recbole-sasrec-smoke-")) / f"recbole-sasrec-{args.dataset}-smoke.json"
    else:
        out = REPO / "results" / "benchmarks" / f"recbole-sasrec-{args.dataset}-seed{args.seed}.json"

    t_start = time.perf_counter()
    ds, data_info = prepare_data(args)
    print(f"{args.dataset}: {ds.n_users} users, {ds.n_items} items, {len(ds.train_targets)} training examples"
          f"{' (smoke subset)' if args.smoke else ''}; {args.threads} torch threads", flush=True)
    models = {}
    if args.only in ("recbole", "both"):
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            models["recbole"] = run_recbole(args, ds, args.workdir.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="recbole-sasrec-") as wd:
                models["recbole"] = run_recbole(args, ds, Path(wd))
    if args.only in ("drlib", "both"):
        models["drlib"] = run_drlib(args, ds)

    try:
        from importlib.metadata import version as _v
        recbole_version = _v("recbole")
    except Exception:
        recbole_version = None
    env = {"recbole": recbole_version, "torch_threads": args.threads,
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "cpu_count": os.cpu_count(),
           "numpy": __import__("numpy").__version__, "platform": platform.platform(),
           "python_executable": sys.executable, "anomaly_detection": torch.is_anomaly_enabled(),
           "patches": ["torch.load(weights_only=False) default", "torch.autograd.set_detect_anomaly(False)"]
           if "recbole" in models else []}
    record = {
        "label": f"RecBole {recbole_version} SASRec vs drlib SASRec ({args.dataset}, seed {args.seed}"
                 f"{', smoke' if args.smoke else ''})",
        "smoke": args.smoke,
        "order": list(models),
        "protocol": {
            "split": "leave-one-out (drlib.data.split_leave_one_out); RecBole's LS valid_and_test on the same "
                     "interactions, checked identical row for row",
            "evaluator": "drlib.evaluate.evaluate, full ranking, ks=(5, 10), history masked, for both models",
            "selection": f"best validation {METRIC} epoch's weights, then test",
            "train_seconds": "wall-clock of the training batches of each epoch (RecBole: Trainer._train_epoch; "
                             "drlib: fit's epoch minus its validation), cumulative; validation excluded",
            "wall_seconds": "training plus per-epoch validation, cumulative",
        },
        "data": data_info,
        "configs": {k: v["config"] for k, v in models.items()},
        "models": {k: {kk: vv for kk, vv in v.items() if kk != "config"} for k, v in models.items()},
        "time_to_target": time_to_target(models.get("recbole"), models.get("drlib")),
        "total_seconds": time.perf_counter() - t_start,
    }
    record = write_record(out, jsonable(record), command=command, env=env)   # adds env, command, finished
    for k, v in models.items():
        print(f"{v['label']}: best epoch {v['best_epoch']}/{v['epochs_run']}, train {v['train_seconds']:.1f}s "
              f"(wall {v['wall_seconds']:.1f}s); test {fmt(v['test'])}")
    tt = record["time_to_target"]
    if tt:
        t = tt["train_seconds"]
        print(f"time to RecBole's best valid {METRIC} {tt['target']:.4f}: RecBole {t['recbole']}s, drlib "
              f"{t['drlib']}s, ratio {t['ratio_recbole_over_drlib']}")
    print(f"record -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
