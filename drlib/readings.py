"""The validation grid over the readings of the paper (:data:`drlib.diffureason.ablations.READINGS`), and the
choice of the best faithful reading per backbone on validation NDCG@10 only.

The literal reading of each DiffuReason model is its plain config, stored with the main results
(``results/main/``, seed 0 of its seeds); every other reading is stored under ``results/readings/``. Test metrics
are not part of the grid: they are read only for the 3-seed comparison of the chosen reading.

After the grid, the literal reading and the chosen one train two more seeds each (:func:`seed_jobs`), and
:func:`compared_records` / :func:`comparison` set them beside the backbone's own three seeds: the chosen reading's
runs are labelled ``DiffuReason-S (best)`` (``DiffuReason-H (best)``), the literal ones keep the model's label.
"""
from __future__ import annotations

import dataclasses
import re

import pandas as pd

from .diffureason.ablations import JOIN, READINGS, SASREC_ONLY, combine, describe, is_reading
from .experiments import EXPLORED
from .paired import paired_table
from .probes import stored_probe
from .registry import MODELS as REGISTRY, config_from_record, make_config
from .results import devices_text, load_records, mixed_devices, stopped_at_cap

EXPERIMENT = "readings"
PATIENCE = "patience"          # results/patience/: runs retrained with a longer early-stopping patience
MODELS = {m: REGISTRY[b].label for m, b in EXPLORED.items()}   # diffureason-s -> SASRec, diffureason-h -> HSTU
MODEL_OF = {b: m for m, b in MODELS.items()}
BEST = " (best)"
# The dataset whose validation grid chooses the reading (issue 18: Beauty). The other datasets carry its choice over
# (:func:`best_runs`): they train the literal and the chosen reading only, so nothing looks at their test sets, nor
# at a two-run "grid" of theirs, to choose.
HOME = "beauty"
_JOB_PREFIX = {"diffureason-s": "s", "diffureason-h": "h"}


def literal_label(model: str) -> str:
    """``"DiffuReason-S"``: the label of the literal reading (the model's own label in the registry)."""
    return REGISTRY[model].label


def applicable(model: str) -> list[str]:
    """The readings that apply to ``model`` (A.1's rollout appends an input token, which only SASRec reads)."""
    return [r for r in READINGS if model == "diffureason-s" or r not in SASREC_ONLY]


def grid_records(seed: int = 0, root=None) -> list[dict]:
    """The grid's runs: the DiffuReason models' plain runs of ``seed`` in ``main`` (labelled ``literal``) and the
    readings' runs of ``seed``."""
    main = [dict(r, label="literal") for r in load_records("main", root=root, seed=seed)
            if r["config"]["model"] in MODELS and r["label"] in ("DiffuReason-S", "DiffuReason-H")]
    other = [r for r in load_records(EXPERIMENT, root=root, seed=seed) if is_reading(r["label"])]
    return main + other


def backbone_records(seed: int = 0, dataset: str = "beauty", root=None) -> list[dict]:
    """The stand-alone backbones' runs (``SASRec``, ``HSTU``, ``cpu`` profile) of ``seed`` on ``dataset``: what the
    grid's readings are set against."""
    return [r for r in load_records("main", root=root, seed=seed)
            if r["label"] in MODEL_OF and r["config"]["dataset"] == dataset and r["config"]["profile"] == "cpu"]


def valid_by_seed(dataset: str = "beauty", metric: str = "ndcg@10", root=None) -> dict[str, list[float]]:
    """``{label: [validation metric per seed]}`` of the stand-alone backbones (``SASRec``, ``HSTU``) and the literal
    readings (``DiffuReason-S``, ``DiffuReason-H``) on ``dataset`` (``cpu`` profile, every stored seed, in seed
    order): the seed-to-seed noise a one-seed grid cannot see, against which its gaps are read."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in load_records("main", root=root):
        c = r["config"]
        if c["dataset"] == dataset and c["profile"] == "cpu" and (
                r["label"] in MODEL_OF or (c["model"] in MODELS and r["label"] == literal_label(c["model"]))):
            out.setdefault(r["label"], []).append((c["seed"], r["metrics"]["valid"][metric]))
    return {k: [v for _, v in sorted(vals)] for k, vals in sorted(out.items())}


def grid(records: list[dict], metric: str = "ndcg@10") -> pd.DataFrame:
    """One row per (dataset, backbone, reading): the settings it changes, validation ``metric`` and R@10, the best
    and the last epoch, and training minutes; ``vs literal`` is the relative difference in % to the literal
    reading's validation ``metric`` on the same backbone; ``stopped at cap``: the run reached its epoch cap still
    improving (:func:`drlib.results.stopped_at_cap`). Sorted best first within each backbone."""
    rows = []
    for r in records:
        c = r["config"]
        rows.append({"dataset": c["dataset"], "backbone": MODELS.get(c["model"], c["model"]), "reading": r["label"],
                     "settings": describe(r["label"]) or "(the paper as written)",
                     f"valid {metric}": r["metrics"]["valid"][metric],
                     "valid recall@10": r["metrics"]["valid"]["recall@10"],
                     "best epoch": r["timing"]["best_epoch"], "epochs": r["timing"]["epochs"],
                     "train min": r["timing"]["train_seconds"] / 60, "devices": devices_text(r),
                     "mixed devices": mixed_devices(r), "stopped at cap": stopped_at_cap(r),
                     "run_id": r["run_id"]})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    lit = df[df.reading == "literal"].set_index(["dataset", "backbone"])[f"valid {metric}"]
    base = [lit.get((d, b), float("nan")) for d, b in zip(df.dataset, df.backbone)]
    df["vs literal %"] = 100 * (df[f"valid {metric}"] / pd.Series(base, index=df.index) - 1)
    return df.sort_values(["dataset", "backbone", f"valid {metric}"], ascending=[True, True, False],
                          ignore_index=True)


def dataset_grid(datasets=("beauty",), seed: int = 0, root=None) -> pd.DataFrame:
    """:func:`grid` of the runs of ``seed`` (:func:`grid_records`) on ``datasets`` (a name or a tuple of names)."""
    datasets = (datasets,) if isinstance(datasets, str) else tuple(datasets)
    return grid([r for r in grid_records(seed, root) if r["config"]["dataset"] in datasets])


def choose(table: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """The best reading per (dataset, backbone) by validation ``metric`` (ties: the literal reading, then the
    first in :data:`READINGS` order): one row each."""
    if table.empty:
        return table
    order = {k: i for i, k in enumerate(READINGS)}
    t = table.assign(_o=table.reading.map(order).fillna(len(order))).sort_values(
        ["dataset", "backbone", f"valid {metric}", "_o"], ascending=[True, True, False, True])
    return t.groupby(["dataset", "backbone"], as_index=False).head(1).drop(columns="_o").reset_index(drop=True)


def combinations(table: pd.DataFrame, dataset: str, backbone: str, metric: str = "ndcg@10") -> list[str]:
    """The second stage of the grid, forward steps chosen on validation ``metric`` only. Once every single reading
    of ``backbone`` on ``dataset`` is stored, the singles that beat the literal one are ranked best first (ties in
    :data:`READINGS` order) and added one at a time: step ``k`` applies the best ``k`` together (:func:`combine`).
    Step ``k + 1`` is due only once step ``k`` is stored and beat every run before it (the best single, for
    ``k = 2``); a step that does not improve ends the search. Returns the steps stored and the next one due, in
    order; empty while singles are missing or fewer than two beat the literal reading."""
    t = table[(table.dataset == dataset) & (table.backbone == backbone)] if len(table) else table
    singles = applicable(MODEL_OF[backbone])
    if len(t) == 0 or not set(singles) <= set(t.reading):
        return []
    value = dict(zip(t.reading, t[f"valid {metric}"]))
    order = {r: i for i, r in enumerate(READINGS)}
    better = sorted((r for r in singles[1:] if value[r] > value["literal"]), key=lambda r: (-value[r], order[r]))
    steps, best = [], value[better[0]] if better else None
    for k in range(2, len(better) + 1):
        label = combine(better[:k])
        steps.append(label)
        if label not in value or value[label] <= best:
            break                                 # the next step to train, or the step that did not improve
        best = value[label]
    return steps


def combination(table: pd.DataFrame, dataset: str, backbone: str, metric: str = "ndcg@10") -> str | None:
    """The step of :func:`combinations` still to train (none stored under its label), or None when no step is
    due."""
    t = table[(table.dataset == dataset) & (table.backbone == backbone)] if len(table) else table
    due = [c for c in combinations(table, dataset, backbone, metric) if c not in set(t.reading)]
    return due[0] if due else None


def planned(table: pd.DataFrame, model: str, dataset: str = "beauty") -> list[str]:
    """Every reading the grid trains for ``model`` on ``dataset``: the single readings (:func:`applicable`), then
    the forward steps that combine them (:func:`combinations`), as far as they are due."""
    return applicable(model) + combinations(table, dataset, MODELS[model])


def missing(table: pd.DataFrame, models=tuple(MODELS), datasets=("beauty",)) -> dict[tuple[str, str], list[str]]:
    """``{(dataset, backbone): readings without a stored run}`` for every DiffuReason model and dataset asked for
    (empty lists left out): what the grid still lacks before a choice is final, the next forward step combining
    the improving readings (:func:`combination`) included once the single readings are all stored."""
    out = {}
    for d in datasets:
        for m in models:
            have = set(table.reading[(table.dataset == d) & (table.backbone == MODELS[m])]) if len(table) else set()
            gap = [r for r in planned(table, m, d) if r not in have]
            if gap:
                out[(d, MODELS[m])] = gap
    return out


def grid_jobs(gaps: dict[tuple[str, str], list[str]], seed: int = 0) -> list[str]:
    """Job lines (``tools/cpu_queue.sh`` format) that train the readings :func:`missing` lists."""
    lines = []
    for (d, b), labels in gaps.items():
        model = MODEL_OF[b]
        p, data = _JOB_PREFIX[model], "" if d == "beauty" else f" --dataset {d}"
        for lab in labels:
            if lab == "literal":
                lines.append(f"{p}-literal  --model {model} --seed {seed}{data}")
            else:
                name = (f"combined-{len(lab.split(JOIN))}" if lab not in READINGS
                        else re.sub(r"[^a-z0-9]+", "-", lab.lower()).strip("-"))
                lines.append(f"{p}-{name}  --model {model} --seed {seed}{data} --experiment {EXPERIMENT} "
                             f"--ablation '{lab}'")
    return lines


def seed_jobs(chosen: pd.DataFrame, table: pd.DataFrame, seeds=(1, 2), allow_incomplete: bool = False) -> list[str]:
    """Job lines (``tools/cpu_queue.sh`` format) for the further seeds of the literal and the chosen reading of every
    backbone in ``chosen``. Refuses while the grid of that backbone lacks a reading, since the choice could still
    change (``allow_incomplete`` overrides): the grid in ``table`` of the dataset that chose (``chosen on`` for a
    choice carried over, :func:`carry_over`). A chosen literal reading gets its seeds once."""
    grids = chosen["chosen on"] if "chosen on" in chosen else chosen.dataset
    gaps = missing(table, [MODEL_OF[b] for b in chosen.backbone], sorted(set(grids)))
    if gaps and not allow_incomplete:
        said = "; ".join(f"{b} on {d}: {', '.join(v)}" for (d, b), v in gaps.items())
        raise ValueError(f"the grid is not complete ({said}); the choice could still change. Train the missing "
                         f"readings first (tools/jobs/readings.txt), or pass allow_incomplete=True (--allow-incomplete)")
    lines = []
    for _, c in chosen.iterrows():
        model = MODEL_OF[c.backbone]
        p = _JOB_PREFIX[model]
        data = "" if c.dataset == "beauty" else f" --dataset {c.dataset}"
        for s in seeds:
            lines.append(f"{p}-literal-{s}  --model {model} --seed {s}{data}")
        if c.reading != "literal":
            for s in seeds:
                lines.append(f"{p}-best-{s}     --model {model} --seed {s}{data} --experiment {EXPERIMENT} "
                             f"--ablation '{c.reading}'")
    return lines


def compared_records(chosen: pd.DataFrame, main: list[dict], readings: list[dict]) -> list[dict]:
    """The runs of the three-seed comparison for every (dataset, backbone) of ``chosen``: the backbone's own runs
    (label ``SASRec``), the literal reading's (``DiffuReason-S``) and the chosen reading's, relabelled
    ``DiffuReason-S (best)``, every seed stored. When the literal reading is the best, there is no ``(best)`` row."""
    out = []
    for _, c in chosen.iterrows():
        model, lit = MODEL_OF[c.backbone], literal_label(MODEL_OF[c.backbone])
        here = lambda r: r["config"]["dataset"] == c.dataset and r["config"]["profile"] == "cpu"
        out += [r for r in main if here(r) and r["label"] == c.backbone]
        lit_runs = [r for r in main if here(r) and r["label"] == lit and r["config"]["model"] == model]
        best_runs = [] if c.reading == "literal" else [
            r for r in readings if here(r) and r["label"] == c.reading and r["config"]["model"] == model]
        out += lit_runs + [dict(r, label=lit + BEST) for r in best_runs]
    return out


def chosen_readings(dataset: str = HOME, seed: int = 0, root=None) -> dict[str, str]:
    """``{model: reading}`` of the readings chosen on validation (:func:`dataset_choice`: the grid of ``seed`` on
    :data:`HOME`, carried over to another dataset where it has a run of that reading), for the models whose choice
    is not the literal reading (that one is the model's own run): e.g. ``{"diffureason-h": "backbone loss on h_L"}``.
    Empty when no grid is stored."""
    chosen = dataset_choice(dataset, seed, root)[1]
    if chosen.empty:
        return {}
    return {MODEL_OF[c.backbone]: c.reading for c in chosen.itertuples() if c.reading != "literal"}


def _but_patience(record: dict) -> str:
    """The run id ``record``'s config would have with ``train.patience`` unset: equal for two runs that differ
    only in their patience. Rebuilt from the record (:func:`drlib.registry.config_from_record`), so a record stored
    before a hash-neutral field existed still matches."""
    cfg = config_from_record(record)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, patience=None)).run_id


def patience_pairs(dataset: str = "beauty", root=None) -> list[tuple[dict, dict]]:
    """The runs retrained with another early-stopping patience (``results/patience/``, e.g. ``python -m drlib train
    --model diffureason-h --seed 0 --experiment patience --set train.patience=20``), each beside the stored run it
    repeats: the run in ``main`` or ``readings`` whose config is the same but for ``train.patience``.
    ``[(stored, longer)]`` on ``dataset``, in (model, seed) order; a rerun without its stored run is left out."""
    reruns = load_records(PATIENCE, root=root, dataset=dataset)
    if not reruns:
        return []
    stored = [(r, _but_patience(r)) for e in ("main", EXPERIMENT) for r in load_records(e, root=root, dataset=dataset)]
    out = []
    for r in reruns:
        key = _but_patience(r)
        same = [s for s, k in stored if k == key
                and s["config"]["train"]["patience"] != r["config"]["train"]["patience"]]
        if same:
            out.append((same[0], r))
    return sorted(out, key=lambda p: (p[1]["config"]["model"], p[1]["label"], p[1]["config"]["seed"]))


def shared_epochs(a: dict, b: dict, metric: str = "ndcg@10", tol: float = 1e-9) -> int:
    """How many first epochs two runs' validation ``metric`` agree on (within ``tol``): a rerun that repeats the
    stored run's random numbers follows it epoch for epoch until the stored run stopped; one at a commit that draws
    other numbers (e.g. other dropout masks) parts from it at once."""
    n = 0
    for x, y in zip(a["history"], b["history"]):
        if abs(x[metric] - y[metric]) > tol:
            break
        n += 1
    return n


def largest_swing(record: dict, metric: str = "ndcg@10") -> float:
    """The largest change of validation ``metric`` from one epoch to the next in ``record``'s history: how far one
    epoch's noise can move the score early stopping reads."""
    v = [h[metric] for h in record["history"]]
    return max((abs(b - a) for a, b in zip(v, v[1:])), default=0.0)


def choose_with_state(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`choose` on ``table`` (:func:`grid`), with ``planned`` (the readings the grid trains, :func:`planned`)
    and ``trained`` (those of them stored) per (dataset, backbone): while ``trained < planned`` the choice is
    provisional."""
    chosen = choose(table)
    if chosen.empty:
        return chosen
    gaps = missing(table, datasets=tuple(sorted(set(chosen.dataset))))
    want = [len(planned(table, MODEL_OF[b], d)) for d, b in zip(chosen.dataset, chosen.backbone)]
    return chosen.assign(planned=want, trained=[n - len(gaps.get((d, b), ()))
                                                for n, d, b in zip(want, chosen.dataset, chosen.backbone)])


def carry_over(home: pd.DataFrame, datasets) -> pd.DataFrame:
    """The choice made on :data:`HOME`'s grid (``home``: :func:`choose_with_state` there) for every dataset of
    ``datasets``: one row per (dataset, backbone) with the home row's reading, validation score and grid state, and
    ``chosen on`` (the dataset whose validation grid chose it)."""
    datasets = (datasets,) if isinstance(datasets, str) else tuple(datasets)
    if home.empty:
        return home
    rows = [home.assign(dataset=d) for d in datasets]
    return pd.concat(rows, ignore_index=True).assign(**{"chosen on": home.dataset.iloc[0]})


def dataset_choice(dataset: str = HOME, seed: int = 0, root=None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """What the readings page of ``dataset`` shows: its grid of ``seed`` (:func:`dataset_grid`), the reading each
    backbone compares there, and what the choosing grid still lacks (:func:`missing`, keyed by that grid's dataset).
    On :data:`HOME` the choice is :func:`choose` on its own grid. Elsewhere it is HOME's, carried over: the row of
    this dataset's grid that holds that reading (its own validation numbers), with ``chosen on`` = HOME; a backbone
    without that run here has no row yet."""
    table = dataset_grid(dataset, seed, root)
    if dataset == HOME:
        return table, choose(table), missing(table, datasets=(dataset,))
    home = dataset_grid(HOME, seed, root)
    rows = [table[(table.backbone == c.backbone) & (table.reading == c.reading)]
            for _, c in choose(home).iterrows()] if len(table) else []
    chosen = pd.concat(rows, ignore_index=True).assign(**{"chosen on": HOME}) if rows else pd.DataFrame()
    return table, chosen, missing(home, datasets=(HOME,))


def best_runs(datasets=("beauty",), seed: int = 0, root=None) -> tuple[list[dict], pd.DataFrame]:
    """The runs of the reading chosen on :data:`HOME`'s validation grid (of ``seed``) for every dataset of
    ``datasets`` and backbone with a grid there, every seed stored, labelled ``DiffuReason-S (best)``; and the
    choice (:func:`carry_over` of :func:`choose_with_state`; column ``chosen on``). No runs when the literal
    reading is the best (it is the model's own row)."""
    chosen = carry_over(choose_with_state(dataset_grid(HOME, seed, root)), datasets)
    if chosen.empty:
        return [], chosen
    runs = [r for r in compared_records(chosen, [], load_records(EXPERIMENT, root=root)) if r["label"].endswith(BEST)]
    return runs, chosen


def comparison(records: list[dict], chosen: pd.DataFrame, metrics=("ndcg@10", "recall@10"),
               n_boot: int = 2000) -> pd.DataFrame:
    """Per (dataset, backbone) of ``chosen`` and metric: the literal and the chosen reading against the backbone,
    and the chosen against the literal, each on the seeds both ran (:func:`drlib.paired.paired_table`: mean
    paired difference, its t interval over seeds, and the per-user paired bootstrap), with the dataset whose grid
    chose the reading (``chosen on``). ``records``: :func:`compared_records`."""
    rows = []
    for _, c in chosen.iterrows():
        lit = literal_label(MODEL_OF[c.backbone])
        recs = [r for r in records if r["config"]["dataset"] == c.dataset]
        for base, new in ((c.backbone, lit), (c.backbone, lit + BEST), (lit, lit + BEST)):
            t = paired_table(recs, base, new, metrics=metrics, n_boot=n_boot)
            for _, r in t.iterrows():
                rows.append({"backbone": c.backbone, "reading": c.reading, "chosen on": c.get("chosen on", c.dataset),
                             "against": base, "model": new, **r.to_dict()})
    return pd.DataFrame(rows)


def probe_configs(chosen: pd.DataFrame, seed: int = 0) -> list[tuple[str, object]]:
    """``[(label, config)]`` of the runs whose Sec. 4.6 probes are set side by side for every (dataset, backbone)
    of ``chosen``: the stand-alone backbone, the literal reading and the chosen one (``DiffuReason-S (best)``;
    absent when the literal reading is the best), on ``seed`` with the ``cpu`` profile."""
    out = []
    for _, c in chosen.iterrows():
        model = MODEL_OF[c.backbone]
        lit = literal_label(model)
        out.append((c.backbone, make_config(EXPLORED[model], c.dataset, "cpu", seed=seed)))
        out.append((lit, make_config(model, c.dataset, "cpu", seed=seed)))
        if c.reading != "literal":
            out.append((lit + BEST, make_config(model, c.dataset, "cpu", seed=seed, experiment=EXPERIMENT,
                                                ablation=c.reading)))
    return out


def stage_probes(chosen: pd.DataFrame, seed: int = 0, results_root=None) -> tuple[list[dict], list[str]]:
    """The stored probes of :func:`probe_configs` (each relabelled as there) and the run ids whose probe is not
    stored (``python -m drlib probe RUN_ID`` makes it from the run's kept weights)."""
    found, lacking = [], []
    for label, cfg in probe_configs(chosen, seed):
        p = stored_probe(cfg, results_root)
        if p is None:
            lacking.append(cfg.run_id)
        else:
            found.append(dict(p, label=label))
    return found, lacking
