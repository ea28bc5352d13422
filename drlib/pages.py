"""What each page of the book shows first: its finding, a figure, and a table that fits the page.

A page's *finding* is two or three sentences: what the paper claims, then what we measured. Our numbers are computed
here from the stored records, never typed in; the paper's come from :mod:`drlib.report` (its tables) and
:data:`PAPER_CLAIMS` (what its text says about the figures that have no table). Where a page has no records yet, it
says so (:data:`NOT_MEASURED`) and draws the paper's numbers alone.

Tables are shown compact (short columns, rounded numbers) and carry their full version (every column, full
precision) as a CSV download embedded in the page (:class:`Table`). Figures are plain ``matplotlib`` figures, not
pyplot ones, so a notebook shows each exactly where it displays it.

Nothing here trains, measures or probes: the notebooks collect the records (``drlib.experiments.collect``) and hand
them in. The display objects need no IPython: Jupyter shows them through ``_repr_markdown_`` and ``_repr_html_``.

>>> rows = verdict_table([])                                      # nothing of ours stored: the paper's bars alone
>>> sorted(set(rows.seeds))
[0]
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .data import DATASETS, item_popularity, table1_stats
from .diffureason.ablations import ABLATIONS, READINGS, describe
from .paired import paired_table, seed_interval
from .registry import MODELS
from .report import (BACKBONE_OF, METRICS, PAPER_LABEL, PAPER_TABLE2, PAPER_TABLE3, PAPER_TABLE3_BACKBONE,
                     PAPER_TABLE6, ablation_table, backbones_vs_public, summary)
from .readings import BEST, HOME, MODEL_OF, largest_swing, literal_label, planned, shared_epochs
from .results import devices_text, mixed_devices, module_setting, record_file, records_frame, stopped_at_cap

NOT_MEASURED = "not yet measured on the strong backbones; see `results/archive/`"
NOT_MEASURED_PLAIN = "not yet measured on the strong backbones\n(see results/archive/)"
DATASET_NAMES = {"beauty": "Beauty", "sports": "Sports", "instruments": "Instruments",
                 "video_games": "Video & Games", "synthetic": "synthetic"}
SHORT = {"recall@5": "R@5", "recall@10": "R@10", "ndcg@5": "N@5", "ndcg@10": "N@10"}
# (backbone, DiffuReason model) as Table 2 pairs them
PAIRS = (("SASRec", "DiffuReason-S"), ("HSTU", "DiffuReason-H"), ("TIGER", "DiffuReason-T"))
PAPER_DATASETS = ("beauty", "sports", "instruments", "video_games")
# What the paper's text says about the figures that come without a table (quoted numbers are the paper's).
PAPER_CLAIMS = {
    "sensitivity": "performance is stable for both loss weights α and β between 0.25 and 2.0, with the optimum "
                   "around 1.0 (Sec. 4.5, Fig. 3; no table)",
    "trajectories": "the target's rank improves at every reasoning step and the diffusion stage gives the largest "
                    "jump (e.g. rank 30 to 8; Sec. 4.6, Fig. 4)",
    "groups": "gains in every user and item group, larger in the sparse ones (Sports: UG-0 +17.1% from Step 1 to "
              "the diffusion output; Beauty: UG-0 +27.4%, UG-3 +34.6%, the rarest items IG-0 +28.9%; Sec. 4.6, "
              "Fig. 5 and 7)",
}
_GREY, _OURS = "0.62", "C0"


# ---------------------------------------------------------------------------------------------- display objects

def _inline_html(text: str) -> str:
    """Escape ``text`` for HTML and turn its `code` spans into ``<code>``."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


@dataclass(frozen=True)
class Markdown:
    """Markdown a notebook shows as rendered text (the finding of a page)."""
    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


@dataclass
class Table:
    """A table as the page shows it (``shown``: short columns, rounded numbers as text) with the full table
    (``data``: every column, full precision) as a CSV download embedded in the page as a data URI, so the static
    book needs no extra file."""
    shown: pd.DataFrame
    data: pd.DataFrame
    name: str
    note: str = ""
    wrap: tuple[str, ...] = ()    # columns of long unbroken text (paths, commands) that may wrap anywhere

    def csv(self) -> str:
        return self.data.to_csv(index=False)

    def href(self) -> str:
        return "data:text/csv;charset=utf-8;base64," + base64.b64encode(self.csv().encode()).decode("ascii")

    def _repr_html_(self) -> str:
        body = self.shown.to_html(index=False, border=0, na_rep="–", classes="dataframe drlib-table")
        if self.wrap:           # only those columns break inside a word, so the short ones keep their width
            cls = f"drlib-wrap-{re.sub(r'[^A-Za-z0-9_-]', '-', self.name)}"
            cols = [i + 1 for i, c in enumerate(self.shown.columns) if c in self.wrap]
            rule = ", ".join(f".{cls} td:nth-child({i})" for i in cols)
            body = f"<style>{rule} {{overflow-wrap: anywhere; min-width: 8em}}</style>" + \
                body.replace('<table class="', f'<table class="{cls} ', 1)
        note = f" {_inline_html(self.note)}" if self.note else ""
        return (f'<div class="drlib-table">{body}<p class="drlib-download"><a href="{self.href()}" '
                f'download="{self.name}.csv">Download as CSV</a> ({len(self.data)} rows, every column, full '
                f'precision).{note}</p></div>')

    def __repr__(self) -> str:
        return f"<table {self.name}: {len(self.data)} rows; the HTML view has it as CSV>"


@dataclass
class Plot:
    """A figure a notebook shows as a PNG wherever it is displayed, whatever matplotlib backend the kernel has."""
    figure: Figure

    def png(self) -> bytes:
        """The figure as PNG, drawn once: every display of it (the page, a glue into another page) is the same file."""
        if not hasattr(self, "_png"):
            buf = io.BytesIO()
            self.figure.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
            self._png = buf.getvalue()
        return self._png

    def _repr_png_(self) -> bytes:
        return self.png()

    def __repr__(self) -> str:
        w, h = self.figure.get_size_inches() * self.figure.dpi
        return f"<figure {w:.0f}x{h:.0f} with {len(self.figure.axes)} axes>"


@dataclass
class Page:
    """The head of an experiment page, in the order it is shown: finding, figure (a :class:`Plot`), table."""
    finding: Markdown
    figure: Plot
    table: Table

    def __post_init__(self):
        if isinstance(self.figure, Figure):
            self.figure = Plot(self.figure)

    def parts(self) -> tuple:
        return self.finding, self.figure, self.table


def _figure(width: float, height: float, ncols: int = 1, **kw):
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False, **kw)[0]


def placeholder_figure(title: str, xlabel: str = "", ylabel: str = "", note: str = NOT_MEASURED_PLAIN) -> Figure:
    """Empty axes that say what is missing: the figure slot of a page with nothing to draw yet."""
    fig, (ax,) = _figure(7, 2.6)
    ax.text(0.5, 0.5, note, ha="center", va="center", color="0.35", fontsize=11, transform=ax.transAxes)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xticks=[], yticks=[])
    return fig


# -------------------------------------------------------------------------------------------------- formatting

def _num(x, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pct(x, digits: int = 1) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.{digits}f}%"


def _p(p) -> str:
    """A p-value as the tables show it (``< 0.001`` below that; ``–`` when missing)."""
    return "–" if p is None or (isinstance(p, float) and math.isnan(p)) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


MIXED = "†"
MIXED_NOTE = ("† Trained on two machines (a GPU's checkpoint finished on the CPU; the CSV's devices column gives the "
              "epochs on each): its minutes add up both, so they are not one machine's cost.")


def _minutes(v, mixed: bool = False) -> str:
    """Training minutes as the tables show them, :data:`MIXED` marking a run that trained on two devices."""
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f}{MIXED if mixed else ''}"


def _note_mixed(note: str, mixed) -> str:
    """``note`` with :data:`MIXED_NOTE` added when any row of ``mixed`` (booleans) is marked."""
    return f"{note} {MIXED_NOTE}" if any(mixed) else note


AT_CAP = "‡"
AT_CAP_NOTE = ("‡ Stopped at its epoch cap fewer than `patience` epochs after its best validation epoch: still "
               "improving when it stopped, so below its plateau.")


def _epochs(best, last, at_cap: bool = False) -> str:
    """``best / last`` epoch as the tables show them, :data:`AT_CAP` marking a run stopped at its cap still
    improving (:func:`drlib.results.stopped_at_cap`)."""
    return f"{best} / {last}{AT_CAP if at_cap else ''}"


def _note_marks(note: str, data: pd.DataFrame) -> str:
    """``note`` with :data:`MIXED_NOTE` and :data:`AT_CAP_NOTE` added for the marks ``data`` has (its boolean
    ``mixed devices`` and ``stopped at cap`` columns, where present)."""
    note = _note_mixed(note, data["mixed devices"] if "mixed devices" in data else [])
    return f"{note} {AT_CAP_NOTE}" if "stopped at cap" in data and data["stopped at cap"].any() else note


def _users_ci(lo, hi) -> str:
    """The per-user bootstrap interval of a difference, ``-0.0304 to -0.0258`` (``–`` when missing)."""
    return "–" if lo is None or (isinstance(lo, float) and math.isnan(lo)) else f"{lo:+.4f} to {hi:+.4f}"


def _name(dataset: str) -> str:
    return DATASET_NAMES.get(dataset, dataset)


def _and(items: list[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _label(model: str) -> str:
    return MODELS[model].label if model in MODELS else model


def sources(records: list[dict], name: str = "sources", root=None) -> Table | Markdown:
    """Where this page's numbers come from: one row per stored record it read (duplicates once), with the record's
    file, the command that made it, the commit and machine it ran on and when it finished; a sentence when the page
    read none. A record of no run (a library benchmark) is listed when its reader says its file (``source_file``,
    :func:`drlib.report.benchmark_records`)."""
    seen, rows = set(), []
    for r in records:
        key = (r.get("experiment"), r.get("run_id"), r.get("command"), r.get("finished"))
        if key in seen or (r.get("run_id") is None and not r.get("source_file")):
            continue
        seen.add(key)
        cfg, env = r.get("config") or {}, r.get("env") or {}
        rows.append({"what": r.get("label", ""), "seed": cfg.get("seed", r.get("seed")),
                     "record": r.get("source_file") or record_file(r, root),
                     "command": r.get("command", ""), "finished": r.get("finished", ""),
                     "commit": (env.get("git_commit") or "")[:10], "device": env.get("device_name") or env.get("device"),
                     "run_id": r.get("run_id"), "config_hash": r.get("config_hash")})
    if not rows:
        return Markdown("This page read no stored record: nothing on it is measured yet.")
    data = pd.DataFrame(rows, columns=["what", "seed", "record", "command", "finished", "commit", "device", "run_id",
                                       "config_hash"])
    shown = pd.DataFrame({"what": data.what, "seed": data.seed.map(lambda v: "" if pd.isna(v) else f"{v:.0f}"),
                          "record": data.record, "command": data.command})
    return Table(shown, data, name, "Every number on this page is computed from these records; each one stores "
                                    "its config and environment beside its metrics.", wrap=("record", "command"))


def paper_value(dataset: str, label: str, metric: str) -> float:
    """The paper's Table 2 number for ``label`` (our label; ReaRec-ERL/PRL read the paper's one ReaRec column)."""
    label = label.removesuffix(BEST)                      # the best faithful reading is the paper's model too
    rows = PAPER_TABLE2[(PAPER_TABLE2.dataset == dataset) & (PAPER_TABLE2.label == PAPER_LABEL.get(label, label))]
    return float(rows[metric].iloc[0]) if len(rows) else float("nan")


def missing_note(missing) -> Markdown:
    """The runs a page asked for that have no stored record: per dataset and set of seeds, the models (or settings)."""
    seeds: dict[tuple, list] = {}
    for c in missing:
        seeds.setdefault((c.data.dataset, c.label), []).append(c.seed)
    if not seeds:
        return Markdown("Every run this page asks for is stored.")
    groups: dict[tuple, list] = {}
    for (d, label), ss in seeds.items():
        groups.setdefault((d, tuple(sorted(ss))), []).append(label)
    lines = "\n".join(f"- {_name(d)}, seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))}: {', '.join(labels)}"
                      for (d, ss), labels in groups.items())
    return Markdown(f"Runs without a stored record ({NOT_MEASURED}; `-p train_missing True` trains them):\n\n{lines}")


# ------------------------------------------------------------------------------------------------------ verdict

def paired_improvement(df: pd.DataFrame, dataset: str, base: str, new: str, metric: str) -> dict:
    """Our relative improvement of ``new`` over ``base`` on the seeds both ran (``df``: :func:`records_frame`).

    ``ours %`` is the mean paired difference over the backbone's mean, in %; ``ci low %`` / ``ci high %`` its 95%
    interval from Student's t over the seeds' paired differences (``NaN`` with one seed); ``seeds`` the count."""
    out = {"ours backbone": np.nan, "ours model": np.nan, "ours %": np.nan, "ci low %": np.nan,
           "ci high %": np.nan, "seeds": 0}
    if df.empty:
        return out
    pick = lambda lab: df[(df.dataset == dataset) & (df.label == lab)].groupby("seed")[metric].mean()
    a, b = pick(base), pick(new)
    common = sorted(set(a.index) & set(b.index))
    if not common:
        return out
    iv = seed_interval(a[common].to_numpy(), b[common].to_numpy())          # NaN interval with one seed
    ref = iv["base"]
    out.update({"ours backbone": ref, "ours model": iv["new"], "ours %": iv["relative %"], "seeds": iv["seeds"],
                "ci low %": 100 * iv["ci_low"] / ref, "ci high %": 100 * iv["ci_high"] / ref})
    return out


def verdict_table(records: list[dict], metrics=("ndcg@10", "recall@10"), datasets=PAPER_DATASETS,
                  pairs=PAIRS) -> pd.DataFrame:
    """One row per (DiffuReason model, dataset, metric) of the paper's Table 2: the paper's relative improvement over
    the backbone (``paper %``) beside ours (:func:`paired_improvement` on the test metrics of ``records``).

    Where ``records`` hold runs labelled ``DiffuReason-S (best)`` on a dataset (the reading chosen on validation,
    :func:`drlib.readings.best_runs`), a row for them follows the literal model's, against the same paper numbers."""
    df = records_frame(records)
    have = set(zip(df.label, df.dataset)) if len(df) else set()
    rows = []
    for base, new in pairs:
        for d in datasets:
            for model in (new, new + BEST):
                if model != new and (model, d) not in have:
                    continue
                for m in metrics:
                    pb, pn = paper_value(d, base, m), paper_value(d, model, m)
                    rows.append({"backbone": base, "model": model, "dataset": d, "metric": m, "paper backbone": pb,
                                 "paper model": pn, "paper %": 100 * (pn / pb - 1),
                                 **paired_improvement(df, d, base, model, m)})
    return pd.DataFrame(rows)


def _ci(r) -> str:
    if not r["seeds"]:
        return "–"
    if r["seeds"] == 1:
        return f"{_pct(r['ours %'])} (1 seed)"
    return f"{_pct(r['ours %'])} ({r['ci low %']:+.1f} to {r['ci high %']:+.1f})"


def _choice(model: str, backbone: str, dataset: str, chosen: pd.DataFrame | None) -> tuple[str, str]:
    """Which reading of the paper a verdict row is, and how final: ``("literal", "")`` for the model as the paper
    writes it; for a ``(best)`` row the reading chosen on validation and, while its grid is incomplete,
    ``"provisional, k of n readings trained"``, and ``"chosen on Beauty"`` where another dataset's grid chose it
    (``chosen``: :func:`drlib.readings.best_runs`)."""
    if not model.endswith(BEST):
        return "literal", ""
    c = chosen[(chosen.dataset == dataset) & (chosen.backbone == backbone)] if chosen is not None else None
    if c is None or c.empty:
        return "best reading", ""
    c = c.iloc[0]
    notes = [] if c.trained >= c.planned else [f"provisional, {c.trained} of {c.planned} readings trained"]
    on = c.get("chosen on", dataset)
    notes += [f"chosen on {_name(on)}"] if on != dataset else []
    return c.reading, "; ".join(notes)


def _reading(model: str, backbone: str, dataset: str, chosen: pd.DataFrame | None) -> str:
    """The table's ``reading`` cell: ``literal``, or ``best: <reading>`` with its provisional state in brackets."""
    what, note = _choice(model, backbone, dataset, chosen)
    if what == "literal":
        return what
    return f"best: {what}" + (f" ({note})" if note else "")


def _finding_name(r, chosen: pd.DataFrame | None) -> str:
    what, note = _choice(r.model, r.backbone, r.dataset, chosen)
    name = f"{r.model.removesuffix(BEST)} on {_name(r.dataset)}"
    if what == "literal":
        return f"{name}, literal"
    return f"{name}, best reading *{what}*" + (f" ({note})" if note else "")


def verdict_finding(table: pd.DataFrame, metric: str = "ndcg@10", chosen: pd.DataFrame | None = None) -> Markdown:
    t = table[(table.metric == metric) & table["paper %"].notna()]
    if t.empty:
        return Markdown(f"**Paper:** no Table 2 numbers for these datasets. **Ours:** {NOT_MEASURED}.")
    m = SHORT[metric]
    literal = t[~t.model.str.endswith(BEST)]           # a best-reading row repeats its pair's paper numbers
    pp = literal["paper %"]
    paper = (f"**Paper:** DiffuReason beats its backbone on {m} in {int((pp > 0).sum())} of {len(literal)} "
             f"backbone and dataset pairs of Table 2, by {pp.min():+.1f}% to {pp.max():+.1f}% "
             f"(median {pp.median():+.1f}%).")
    done = t[t.seeds > 0]
    if done.empty:
        return Markdown(f"{paper} **Ours:** none of the {len(literal)} pairs is measured yet: every DiffuReason run "
                        f"made before the backbones were fixed is archived and being retrained, so each bar of ours "
                        f"reads *{NOT_MEASURED}*.")
    each = "; ".join(f"{_finding_name(r, chosen)}: {_ci(r)}" for _, r in done.iterrows())
    ours = (f"**Ours** ({m}, 95% interval over seeds): {each}; {int((literal.seeds == 0).sum())} of {len(literal)} "
            f"pairs not yet measured.")
    ci = done[done.seeds > 1]
    if len(ci):
        inside = int(((ci["ci low %"] <= ci["paper %"]) & (ci["paper %"] <= ci["ci high %"])).sum())
        above = int((ci["ci low %"] > 0).sum())
        ours += (f" Our interval contains the paper's improvement in {inside} of {len(ci)} pairs with an interval and "
                 f"lies above zero in {above}.")
        two = ci[ci.seeds == 2]
        if len(two):                            # t with one degree of freedom: 12.7 times the standard error
            names = "; ".join(_finding_name(r, chosen) for _, r in two.iterrows())
            ours += (f" An interval over two seeds has one degree of freedom, so it is wide ({names}): the per-user "
                     "paired test on the readings page is the sharper check until a third seed is stored.")
    return Markdown(f"{paper} {ours}")


def verdict_figure(table: pd.DataFrame) -> Figure:
    """Per metric, one row per (DiffuReason model, dataset): the paper's relative improvement over the backbone (grey)
    beside ours with its 95% interval (blue); *not yet measured* where we have no paired seeds. The axis is scaled
    to the bars and the intervals' upper ends; a lower end beyond it is written at the axis's edge."""
    metrics = list(dict.fromkeys(table.metric))
    keys = list(dict.fromkeys(zip(table.model, table.backbone, table.dataset)))
    fig, axes = _figure(8.5, 0.34 * len(keys) + 1.3, len(metrics), sharey=True)
    y = np.arange(len(keys))
    for ax, m in zip(axes, metrics):
        t = table[table.metric == m].set_index(["model", "backbone", "dataset"]).loc[keys].reset_index()
        ax.barh(y - 0.2, t["paper %"], 0.38, color=_GREY, label="paper (Table 2)")
        done = (t.seeds > 0).to_numpy()
        lo = (t["ours %"] - t["ci low %"]).fillna(0).to_numpy()
        hi = (t["ci high %"] - t["ours %"]).fillna(0).to_numpy()
        if done.any():
            ax.barh(y[done] + 0.2, t["ours %"][done], 0.38, xerr=[lo[done], hi[done]], color=_OURS, capsize=3,
                    label="ours, 95% interval over seeds")
        vals = pd.concat([t["paper %"], t["ci high %"], t["ours %"]]).dropna()
        top, bottom = (max(vals.max(), 0.0), min(vals.min(), 0.0)) if len(vals) else (0.0, 0.0)
        span = (top - bottom) or 1.0
        for i in y:
            if not done[i]:
                ax.text(max(t["paper %"][i], 0) + 0.02 * span, i + 0.2, "not yet measured", va="center",
                        fontsize=7.5, color="0.35", style="italic")
            elif t.seeds[i] == 1:
                ax.text(max(t["ours %"][i], 0) + 0.02 * span, i + 0.2, "1 seed", va="center", fontsize=7.5,
                        color="0.35")
        left = bottom - 0.05 * span
        ax.set_xlim(left, top + 0.4 * span)
        for i in y[done]:                    # an interval reaching past the axis (two seeds) says where it ends
            if t["ci low %"][i] < left:
                ax.text(left + 0.01 * span, i + 0.47, f"◂ to {t['ci low %'][i]:+.0f}%", va="center", fontsize=7,
                        color=_OURS)
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlabel="DiffuReason over its backbone (%)", title=f"test {SHORT.get(m, m)}")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set(yticks=y, yticklabels=[f"{bb}, {_name(d)}" + (", best reading" if mod.endswith(BEST) else "")
                                       for mod, bb, d in keys])
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8, loc="lower right")
    return fig


def verdict_shown(table: pd.DataFrame, chosen: pd.DataFrame | None = None) -> pd.DataFrame:
    """The verdict as the page shows it: one row per (model, dataset), the paper's and our improvement per metric;
    ``reading`` says which reading of the paper a row is (:func:`_reading`)."""
    rows = []
    for (mod, bb, d), g in table.groupby(["model", "backbone", "dataset"], sort=False):
        row = {"backbone": bb, "dataset": _name(d), "reading": _reading(mod, bb, d, chosen)}
        for _, r in g.iterrows():
            row[f"paper {SHORT[r.metric]}"] = _pct(r["paper %"])
            row[f"ours {SHORT[r.metric]} (95% CI)"] = _ci(r)
        row["seeds"] = int(g.seeds.max())
        rows.append(row)
    return pd.DataFrame(rows)


def verdict(records: list[dict], metrics=("ndcg@10", "recall@10"), datasets=PAPER_DATASETS,
            chosen: pd.DataFrame | None = None) -> Page:
    """The book's first figure: the paper's relative improvement of each DiffuReason model over its backbone beside
    ours, for every backbone and dataset of Table 2 (``records``: the main-table runs, any seeds, and the runs of
    the reading chosen on validation, labelled ``... (best)``; ``chosen``: that choice, from
    :func:`drlib.readings.best_runs`)."""
    table = verdict_table(records, metrics, datasets)
    return Page(verdict_finding(table, metrics[0], chosen), verdict_figure(table),
                Table(verdict_shown(table, chosen), table, "verdict",
                      "Ours: mean paired difference over the backbone's mean; 95% interval from t over the seeds' "
                      f"paired differences. –: {NOT_MEASURED}."))


# ------------------------------------------------------------------------------------------------ 01 datasets

def datasets_page(loaded: dict) -> Page:
    """Table 1 recomputed from the files (``loaded``: dataset name -> :class:`~drlib.data.split.SeqDataset`) beside
    the paper's, and the distributions behind the sparsity groups (sequence lengths, item popularity)."""
    rows, match = [], []
    for d, ds in loaded.items():
        s = table1_stats(ds.sequences)
        p = DATASETS[d].paper_stats if d in DATASETS else None
        same = p is not None and (s["users"], s["items"], s["interactions"]) == tuple(p[:3])
        if p is not None:
            match.append((d, same))
        rows.append({"dataset": d, "users": s["users"], "items": s["items"], "interactions": s["interactions"],
                     "avg len": s["avg_len"], "repeat share": s.get("repeat_share", np.nan),
                     "paper users": p[0] if p else np.nan, "paper items": p[1] if p else np.nan,
                     "paper interactions": p[2] if p else np.nan, "paper avg len": p[3] if p else np.nan,
                     "matches Table 1": same if p else None})
    data = pd.DataFrame(rows)
    shown = pd.DataFrame({"dataset": [_name(d) for d in data.dataset], "users": data.users.map("{:,}".format),
                          "items": data["items"].map("{:,}".format),
                          "interactions": data.interactions.map("{:,}".format),
                          "avg len": data["avg len"].map("{:.2f}".format),
                          "Table 1": ["same counts" if m else ("differs" if m is False else "not in the paper")
                                      for m in data["matches Table 1"]]})
    same = [d for d, ok in match if ok]
    differ = [d for d, ok in match if not ok]
    text = ("**Paper:** Table 1 gives the users, items and interactions of each dataset after 5-core filtering. "
            f"**Ours:** recomputed from the public files, {_and([_name(d) for d in same]) or 'no dataset'} "
            f"match{'es' if len(same) == 1 else ''} it exactly")
    text += (f"; {_and([_name(d) for d in differ])} differ{'s' if len(differ) == 1 else ''} (see the table)."
             if differ else ".")
    unread = [d for d in DATASETS if d not in loaded and DATASETS[d].paper_stats]
    if unread:
        text += f" Not read on this page: {_and([_name(d) for d in unread])}."
    fig, axes = _figure(11, 3.5, 2)
    for d, ds in loaded.items():
        lens = np.array([len(s) for s in ds.sequences])
        axes[0].hist(lens, bins=np.arange(5, 60), histtype="step", density=True, label=_name(d))
        pop = np.sort(item_popularity(ds)[1:])[::-1]
        axes[1].loglog(np.arange(1, len(pop) + 1), np.maximum(pop, 0.5), label=_name(d))
    axes[0].set(xlabel="sequence length", ylabel="share of users", title="User sequence length (clipped at 60)")
    axes[1].set(xlabel="item rank", ylabel="training interactions", title="Item popularity")
    for a in axes:
        a.legend(fontsize=8)
    return Page(Markdown(text), fig, Table(shown, data, "table1"))


# ---------------------------------------------------------------------------------------------- 02 main table

def main_results(records: list[dict], datasets, models, metric: str = "ndcg@10") -> Page:
    """Table 2: our test means over seeds beside the paper's, and each DiffuReason model against its backbone."""
    labels = [_label(m) for m in models]
    df = records_frame(records)
    m = SHORT[metric]
    # the paper's claim, for the datasets of this page that it has
    claims = []
    for d in datasets:
        parts = [f"{new} {100 * (paper_value(d, new, metric) / paper_value(d, base, metric) - 1):+.1f}%"
                 for base, new in PAIRS if base in labels and new in labels and not math.isnan(paper_value(d, new, metric))]
        if parts:
            claims.append(f"{_and(parts)} on {_name(d)}")
    paper = (f"**Paper:** Table 2 has DiffuReason above its backbone on {m}: {'; '.join(claims)}." if claims else
             "**Paper:** no Table 2 numbers for these datasets.")
    ours = []
    for d in datasets:
        g = df[df.dataset == d] if len(df) else df
        if g.empty:
            continue
        each = []
        for lab in labels:
            h = g[g.label == lab]
            if h.empty:
                continue
            mine, p = h[metric].mean(), paper_value(d, lab, metric)
            vs = f", paper {p:.4f}, {100 * (mine / p - 1):+.0f}%" if not math.isnan(p) else ""
            each.append(f"{lab} {mine:.4f} ({h.seed.nunique()} seed{'s' if h.seed.nunique() > 1 else ''}{vs})")
        ours.append(f"on {_name(d)}, {'; '.join(each)}")
    ours = [o if i == 0 else o[0].upper() + o[1:] for i, o in enumerate(ours)]     # "...-40%. On Instruments, ..."
    text = paper + (f" **Ours** ({m}, mean over seeds): {'. '.join(ours)}." if ours else
                    f" **Ours:** no stored run of these models yet ({NOT_MEASURED}).")
    pending = [new for base, new in PAIRS if new in labels and (df.empty or new not in set(df.label))]
    measured = [(base, new) for base, new in PAIRS if new in labels and len(df) and new in set(df.label)
                and base in set(df.label)]
    for base, new in measured:
        for d in datasets:
            r = paired_improvement(df, d, base, new, metric)
            if r["seeds"]:
                text += f" {new} over our {base} on {_name(d)}: {_ci(r)}."
    if pending and ours:
        text += f" {_and(pending)}: {NOT_MEASURED}."
    return Page(Markdown(text), main_figure(df, datasets, labels, metric), main_table(df, datasets, labels))


def main_figure(df: pd.DataFrame, datasets, labels, metric: str = "ndcg@10") -> Figure:
    shown = [d for d in datasets if (len(df) and (df.dataset == d).any())
             or PAPER_TABLE2.dataset.eq(d).any()] or list(datasets)[:1]
    ncols = min(2, len(shown))                   # two panels a row: three side by side would be too small to read
    nrows = -(-len(shown) // ncols)
    fig = Figure(figsize=(5 * ncols, (0.32 * len(labels) + 1.2) * nrows), dpi=100, layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    axes = list(grid.flat)
    for ax in axes[len(shown):]:
        ax.remove()
    y = np.arange(len(labels))
    for ax, d in zip(axes, shown):
        paper = [paper_value(d, lab, metric) for lab in labels]
        g = df[df.dataset == d] if len(df) else df
        mean = [g[g.label == lab][metric].mean() if len(g) else np.nan for lab in labels]
        std = [g[g.label == lab][metric].std(ddof=1) if len(g) and (g.label == lab).sum() > 1 else np.nan
               for lab in labels]
        ax.barh(y - 0.2, paper, 0.38, color=_GREY, label="paper (Table 2)")
        ax.barh(y + 0.2, mean, 0.38, xerr=std, color=_OURS, capsize=2, label="ours, mean ± std over seeds")
        for i, v in enumerate(mean):
            if math.isnan(v):
                ax.text(0.001, i + 0.2, "not yet measured", va="center", fontsize=7, color="0.3", style="italic")
        ax.set(title=_name(d), xlabel=f"test {SHORT[metric]}")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set(yticks=y, yticklabels=labels)
    axes[0].invert_yaxis()
    for row in grid:
        row[0].tick_params(labelleft=True)
    axes[0].legend(fontsize=7, loc="lower right")
    return fig


def main_table(df: pd.DataFrame, datasets, labels) -> Table:
    """Our means ± std over seeds beside the paper, for the datasets with a stored run (all of them in the CSV)."""
    rows = []
    for d in datasets:
        g = df[df.dataset == d] if len(df) else df
        for lab in labels:
            h = g[g.label == lab] if len(g) else g
            paper = {f"paper {k}": paper_value(d, lab, k) for k in METRICS}
            if h.empty and all(math.isnan(v) for v in paper.values()):
                continue
            row = {"dataset": d, "model": lab, "seeds": int(h.seed.nunique()) if len(h) else 0}
            for k in METRICS:
                row[k] = h[k].mean() if len(h) else np.nan
                row[f"{k} std"] = h[k].std(ddof=1) if len(h) > 1 else np.nan
            rows.append({**row, **paper})
    data = pd.DataFrame(rows, columns=["dataset", "model", "seeds", *[c for k in METRICS for c in (k, f"{k} std")],
                                       *[f"paper {k}" for k in METRICS]])

    def ours(r, k):
        if not r.seeds:
            return "–"
        return _num(r[k]) + (f" ±{r[f'{k} std']:.4f}" if r.seeds > 1 else "")
    measured = [d for d in datasets if (data[data.dataset == d].seeds > 0).any()]
    unmeasured = [_name(d) for d in datasets if d not in measured and (data.dataset == d).any()]
    data = data.assign(_shown=data.dataset.isin(measured or list(datasets)[:1]))
    full, data = data.drop(columns="_shown"), data[data._shown]
    note = f"Test metrics, mean ± std over seeds. –: {NOT_MEASURED}."
    if measured and unmeasured:
        note += f" Nothing measured yet on {_and(unmeasured)} (its paper rows are in the CSV)."
    shown = pd.DataFrame({"dataset": [_name(d) for d in data.dataset], "model": data.model, "seeds": data.seeds,
                          "R@10": [ours(r, "recall@10") for _, r in data.iterrows()],
                          "paper R@10": data["paper recall@10"].map(_num),
                          "N@10": [ours(r, "ndcg@10") for _, r in data.iterrows()],
                          "paper N@10": data["paper ndcg@10"].map(_num)})
    if shown.dataset.nunique() == 1:
        note = f"{shown.dataset.iloc[0]}. {note}"
        shown = shown.drop(columns="dataset")
    return Table(shown, full, "main_table", note)


def public_table(records: list[dict], datasets) -> Table:
    """Our backbones beside the best public numbers on the same split, per dataset of ``datasets`` that has some
    (:func:`drlib.report.backbones_vs_public`): test N@10 and our mean over the stored seeds."""
    data = backbones_vs_public(records, datasets)
    ours = lambda r: f"{r.ours} {_num(r['ours ndcg@10'])}" + (f" ({r.seeds} seeds)" if 0 < r.seeds < 3 else "")
    shown = pd.DataFrame({"dataset": [_name(d) for d in data.dataset],
                          "public number": [f"{r.public} — {r.protocol}" for _, r in data.iterrows()],
                          "public N@10": data["public ndcg@10"].map(_num),
                          "ours": [ours(r) for _, r in data.iterrows()],
                          "ours / public": data["ours / public (N@10)"].map(lambda v: _num(v, 2))})
    note = ("Test N@10; only masked numbers with histories of 20 are strictly comparable with ours."
            + (f" –: {NOT_MEASURED}." if data["ours ndcg@10"].isna().any() else ""))
    if data.empty:
        note = "No public number on these datasets. " + note
    if shown.dataset.nunique() == 1:
        note = f"{shown.dataset.iloc[0]}. {note}"
        shown = shown.drop(columns="dataset")
    return Table(shown, data, "backbones_vs_public", note)


def cost_table(records: list[dict]) -> Table:
    """What the stored runs cost: epochs, training minutes and ms per batch, means over seeds."""
    data = summary(records)
    if data.empty:
        data = pd.DataFrame(columns=["dataset", "label", "profile", "seeds", "epochs", "train_seconds",
                                     "train_ms_per_batch", "eval_seconds"])
    mixed = list(data["mixed_devices"]) if "mixed_devices" in data else [False] * len(data)
    mark = lambda v, m: _num(v, 1) + (MIXED if m else "")
    shown = pd.DataFrame({"dataset": [_name(d) for d in data.dataset], "model": data.label, "seeds": data.seeds,
                          "epochs": data.epochs.map(lambda v: _num(v, 1)),
                          "train min": [mark(v / 60, m) for v, m in zip(data.train_seconds, mixed)],
                          "ms / batch": [mark(v, m) for v, m in zip(data.train_ms_per_batch, mixed)]})
    return Table(shown, data, "training_cost", _note_mixed("Means over seeds; each record names its machine.", mixed))


def improvement_table(records: list[dict], datasets) -> Table:
    """Each DiffuReason model against its backbone on the seeds both ran, beside the paper (the verdict's rows)."""
    data = verdict_table(records, ("ndcg@10", "recall@10"), [d for d in datasets if d in PAPER_DATASETS] or datasets)
    return Table(verdict_shown(data), data, "improvement", f"–: {NOT_MEASURED}.")


# the comparisons the per-user table makes: each DiffuReason model against its backbone, the reasoning baselines and
# HSTU against SASRec
USER_PAIRS = PAIRS + (("SASRec", "ReaRec-ERL"), ("SASRec", "ReaRec-PRL"), ("SASRec", "LARES"), ("SASRec", "HSTU"))


def user_paired_table(records: list[dict], datasets, metric: str = "ndcg@10", n_boot: int = 2000) -> Table:
    """Per test user, paired: for each comparison of :data:`USER_PAIRS` with stored runs of both on common seeds,
    the relative change in ``metric`` (mean over those seeds), its 95% interval over seeds (t) and over users
    (paired bootstrap on the ranks each record stores, :func:`drlib.paired.paired_bootstrap`), and the p-value."""
    rows = []
    for d in datasets:
        recs = [r for r in records if r["config"]["dataset"] == d]
        for base, new in USER_PAIRS:
            t = paired_table(recs, base, new, metrics=(metric,), n_boot=n_boot)
            if len(t):
                rows.append({"dataset": d, "against": base, "model": new, **t.iloc[0].to_dict()})
    data = pd.DataFrame(rows)
    if data.empty:
        shown = pd.DataFrame({"comparison": [f"{n} vs {b}" for b, n in USER_PAIRS], "seeds": "–", SHORT[metric]: "–",
                              "users 95%": "–", "p": "–"})
        return Table(shown, shown, f"paired_users_{metric}", f"–: {NOT_MEASURED}.")
    has = "user p" in data
    shown = pd.DataFrame({
        "data": data.dataset.map(_name), "comparison": data.model + " vs " + data.against, "seeds": data["seed list"],
        SHORT[metric]: data["relative %"].map(_pct),
        "users 95%": [_users_ci(lo, hi) for lo, hi in zip(data.get("user ci_low", np.nan * data.seeds),
                                                          data.get("user ci_high", np.nan * data.seeds))],
        "p": [_p(p) for p in data.get("user p", np.nan * data.seeds)]})
    return Table(shown, data, f"paired_users_{metric}",
                 f"Relative change of the mean test {SHORT[metric]} over the common seeds; users 95%: the paired "
                 f"bootstrap interval of the per-user difference ({n_boot} resamples, seeds averaged per user).")


def training_curves(records: list[dict], datasets) -> Plot:
    """Validation NDCG@10 per epoch of every run, one panel per dataset: one colour per model, one line style per
    seed (solid, dashed, dotted), the legend beside the axes with one entry per model."""
    shown = [d for d in datasets if any(r["config"]["dataset"] == d for r in records)]
    if not shown:
        return Plot(placeholder_figure("validation NDCG@10 per epoch", "epoch", "validation NDCG@10",
                                  "no stored runs of these models"))
    fig = Figure(figsize=(10, 3.8 * len(shown)), dpi=100, layout="constrained")
    axes = fig.subplots(len(shown), 1, squeeze=False)[:, 0]
    styles = ("-", "--", ":", "-.")
    for ax, d in zip(axes, shown):
        here = [r for r in records if r["config"]["dataset"] == d]
        labels = list(dict.fromkeys(r["label"] for r in here))
        for r in sorted(here, key=lambda r: (labels.index(r["label"]), r["config"]["seed"])):
            h = pd.DataFrame(r["history"])
            i, seed = labels.index(r["label"]), r["config"]["seed"]
            ax.plot(h["epoch"], h["ndcg@10"], color=f"C{i % 10}", ls=styles[seed % len(styles)], lw=1.2,
                    label=r["label"] if seed == min(x["config"]["seed"] for x in here if x["label"] == r["label"])
                    else None)
        ax.set(xlabel="epoch", ylabel="validation NDCG@10",
               title=f"Training curves on {_name(d)} (validation; line style: seed 0 solid, 1 dashed, 2 dotted)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return Plot(fig)


# ----------------------------------------------------------------------------------------------- 03 ablations

def _paper_ablation(dataset: str) -> pd.DataFrame:
    p = PAPER_TABLE3[PAPER_TABLE3.dataset == dataset].set_index("row")
    if p.empty:
        return p
    return p.assign(change=100 * (p["ndcg@10"] / p.loc["DiffuReason", "ndcg@10"] - 1))


def ablations(records: list[dict], dataset: str) -> Page:
    """Table 3: each row's test N@10 change against the full model, ours per backbone beside the paper's (HSTU)."""
    table = ablation_table(records)
    paper = _paper_ablation(dataset)
    if len(paper):
        rows = paper.drop("DiffuReason")
        worst, least = rows.change.idxmin(), rows.change.idxmax()
        text = (f"**Paper** (Table 3, {PAPER_TABLE3_BACKBONE} on {_name(dataset)}): every row is below the full "
                f"model on N@10; the largest drop is {worst} ({rows.change.min():+.1f}%), the smallest {least} "
                f"({rows.change.max():+.1f}%).")
    else:
        text = f"**Paper:** Table 3 has no {_name(dataset)} column."
    ours = []
    for bb, g in (table.groupby("backbone", sort=False) if len(table) else []):
        g = g[(g.row != "DiffuReason") & g["vs full % (N@10)"].notna()]
        if g.empty:
            continue
        best, worst = g.loc[g["vs full % (N@10)"].idxmax()], g.loc[g["vs full % (N@10)"].idxmin()]
        above = int((g["vs full % (N@10)"] > 0).sum())
        seeds = sorted({s for ss in g.seeds for s in ss.split(",")}, key=int)
        ours.append(f"on {bb} (seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}), {above} of {len(g)} rows are "
                    f"above the full model, from {worst.row} ({worst['vs full % (N@10)']:+.1f}%) to {best.row} "
                    f"({best['vs full % (N@10)']:+.1f}%)")
    text += f" **Ours:** {'; '.join(ours)}." if ours else f" **Ours:** {NOT_MEASURED}."
    return Page(Markdown(text), ablation_figure(table, paper, dataset), ablation_shown(table, paper, dataset))


def ablation_figure(table: pd.DataFrame, paper: pd.DataFrame, dataset: str) -> Figure:
    rows = [r for r in ABLATIONS if r != "DiffuReason"]
    parts = [(bb, g.set_index("row")) for bb, g in table.groupby("backbone", sort=False)] if len(table) else []
    parts = [(bb, g) for bb, g in parts if g.drop("DiffuReason", errors="ignore")["vs full % (N@10)"].notna().any()]
    if not parts:
        parts = [(PAPER_TABLE3_BACKBONE, None)]
    fig, axes = _figure(5.2 * len(parts), 0.42 * len(rows) + 1.3, len(parts), sharey=True)
    y = np.arange(len(rows))
    for ax, (bb, g) in zip(axes, parts):
        if bb == PAPER_TABLE3_BACKBONE and len(paper):
            ax.barh(y - 0.2, [paper.change.get(r, np.nan) for r in rows], 0.38, color=_GREY,
                    label="paper (Table 3, HSTU)")
        if g is not None:
            mine = [g["vs full % (N@10)"].get(r, np.nan) for r in rows]
            ax.barh(y + 0.2, mine, 0.38, color=_OURS, label="ours")
            for i in y[np.isnan(mine)]:
                ax.text(0, i + 0.2, " not yet measured", va="center", fontsize=7.5, color="0.35", style="italic")
            title = f"{bb} backbone, seed(s) {', '.join(sorted(set(g.seeds)))}"
        else:
            for i in y:
                ax.text(0.2, i + 0.2, "not yet measured", va="center", fontsize=7.5, color="0.35", style="italic")
            title = f"{bb} backbone: ours {NOT_MEASURED_PLAIN.splitlines()[0]}"
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlabel="test NDCG@10 against the full model (%)", title=title)
        ax.grid(axis="x", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower left")
    axes[0].set(yticks=y, yticklabels=rows)
    axes[0].invert_yaxis()
    return fig


def ablation_shown(table: pd.DataFrame, paper: pd.DataFrame, dataset: str) -> Table:
    out = pd.DataFrame({"row": list(ABLATIONS)})
    if len(paper):
        out["paper N@10"] = [_num(paper["ndcg@10"].get(r, np.nan)) for r in out.row]
        out["paper Δ"] = [_pct(paper.change.get(r, np.nan)) if r != "DiffuReason" else "" for r in out.row]
    for bb, g in (table.groupby("backbone", sort=False) if len(table) else []):
        g = g.set_index("row")
        out[f"{bb} N@10"] = [_num(g["ndcg@10"].get(r, np.nan)) for r in out.row]
        out[f"{bb} Δ"] = [_pct(g["vs full % (N@10)"].get(r, np.nan)) if r != "DiffuReason" else ""
                          for r in out.row]
    if not len(table):
        out["ours"] = "–"
    data = table if len(table) else out
    return Table(out, data, f"ablations_{dataset}", f"Test N@10; Δ: change against the full model of the same "
                 f"backbone and seeds. –: {NOT_MEASURED}.")


def ablation_settings_table() -> Table:
    """What each Table 3 row changes, as the ``--set`` overrides a user would type."""
    data = pd.DataFrame({"row": list(ABLATIONS), "overrides": [describe(r) or "(the full model)" for r in ABLATIONS]})
    return Table(data, data, "ablation_rows")


# ---------------------------------------------------------------------------------------------- 04 efficiency

def _paper_cost(dataset: str) -> pd.DataFrame:
    p = PAPER_TABLE6[PAPER_TABLE6.dataset == dataset]
    if p.empty:
        return p
    base = p[(p.reasoning_steps == 0) & (p.group_size == 0)].iloc[0]
    p = p[p.reasoning_steps > 0]
    return p.assign(train_x=p.train_ms_per_batch / base.train_ms_per_batch,
                    inference_x=p.inference_seconds / base.inference_seconds)


def efficiency(table: pd.DataFrame, dataset: str, model: str = "diffureason-s", backbone: str = "sasrec") -> Page:
    """Table 6 / Fig. 2: the cost of DiffuReason as multiples of its backbone (``table``:
    :func:`drlib.efficiency.relative_table`, empty when nothing is measured), ours beside the paper's. ``model`` and
    ``backbone``: the registry names of the measured pair (the paper's pair is DiffuReason-H on HSTU)."""
    paper = _paper_cost(dataset if dataset in set(PAPER_TABLE6.dataset) else "beauty")
    ref = paper[(paper.reasoning_steps == 3) & (paper.group_size == 8)]
    text = ""
    if len(ref):
        r = ref.iloc[0]
        text = (f"**Paper** (Table 6, DiffuReason-H on {_name(r.dataset)}, GPU): at R = 3, G = 8 a training batch costs "
                f"x{r.train_x:.2f} the backbone's and test inference x{r.inference_x:.2f}.")
    ours = table[table.R.notna()] if len(table) and "train_x" in table else pd.DataFrame()
    if len(ours):
        mine = ours[(ours.R == 3) & (ours.G == 8)]
        devices = sorted(set(table.device))
        if len(mine):
            m = mine.iloc[0]
            text += (f" **Ours** ({_label(model)} on {_label(backbone)}, {_name(m.dataset)}, {_and(devices)}): "
                     f"x{m.train_x:.2f} per training "
                     f"batch and x{m.inference_x:.2f} for test inference at R = 3, G = 8; from x{ours.train_x.min():.2f} "
                     f"to x{ours.train_x.max():.2f} per batch over the settings measured.")
        else:
            text += f" **Ours:** {len(ours)} settings measured on {_and(devices)}, not R = 3, G = 8."
    else:
        text += f" **Ours:** {NOT_MEASURED}."
    return Page(Markdown(text), efficiency_figure(ours, paper), efficiency_shown(ours, paper, dataset))


def efficiency_figure(ours: pd.DataFrame, paper: pd.DataFrame) -> Figure:
    fig, axes = _figure(10, 3.3, 2)
    for ax, (col, other, fixed, name) in zip(axes, (("R", "G", 8, "reasoning steps R (G = 8)"),
                                                    ("G", "R", 3, "policy samples G (R = 3)"))):
        pcol = {"R": "reasoning_steps", "G": "group_size"}
        p = paper[paper[pcol[other]] == fixed].sort_values(pcol[col]) if len(paper) else paper
        if len(p):
            ax.plot(p[pcol[col]], p.train_x, "s-", color=_GREY, label="paper: training / batch")
            ax.plot(p[pcol[col]], p.inference_x, "s:", color=_GREY, label="paper: test inference")
        o = ours[ours[other] == fixed].sort_values(col) if len(ours) else ours
        if len(o):
            ax.plot(o[col], o.train_x, "o-", color=_OURS, label="ours: training / batch")
            ax.plot(o[col], o.inference_x, "o:", color=_OURS, label="ours: test inference")
        else:
            ax.set_title("ours: " + NOT_MEASURED_PLAIN.splitlines()[0], fontsize=9, color="0.35", style="italic")
        ax.axhline(1, color="k", lw=0.8)
        ax.set(xlabel=name, ylabel="x backbone")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="center right")
    return fig


def efficiency_shown(ours: pd.DataFrame, paper: pd.DataFrame, dataset: str) -> Table:
    rows = []
    for _, p in paper.iterrows():
        o = ours[(ours.R == p.reasoning_steps) & (ours.G == p.group_size)] if len(ours) else ours
        o = o.iloc[0] if len(o) else None
        rows.append({"R": int(p.reasoning_steps), "G": int(p.group_size), "paper train x": p.train_x,
                     "paper inference x": p.inference_x,
                     "ours train x": o.train_x if o is not None else np.nan,
                     "ours inference x": o.inference_x if o is not None else np.nan,
                     "ours ms / batch": o.train_ms_per_batch if o is not None else np.nan,
                     "ours inference s": o.eval_seconds if o is not None else np.nan})
    data = pd.DataFrame(rows)
    shown = data.copy()
    for c in shown.columns[2:]:
        shown[c] = shown[c].map(lambda v: _num(v, 2))
    return Table(shown, data, f"efficiency_{dataset}", f"Multiples of the backbone's cost. –: {NOT_MEASURED}.")


def benchmark_page(record: dict, curves: pd.DataFrame, table: pd.DataFrame) -> tuple[Markdown, Plot, Table]:
    """The RecBole comparison (``benchmarks/recbole_sasrec.py``): a sentence, the time-to-accuracy curves, a table
    (``curves`` / ``table``: :func:`drlib.report.benchmark_curves` / :func:`~drlib.report.benchmark_summary`)."""
    tt = record.get("time_to_target") or {}
    ratio = (tt.get("train_seconds") or {}).get("ratio_recbole_over_drlib")
    text = (f"On {record['env'].get('device_name', 'this machine')}, our SASRec reaches RecBole's best validation "
            f"N@10 ({tt['target']:.4f}) after {tt['train_seconds']['drlib'] / 60:.1f} training minutes, RecBole after "
            f"{tt['train_seconds']['recbole'] / 60:.1f}: {ratio:.1f}x sooner." if ratio else
            "No time-to-target ratio in this record.")
    fig, (ax,) = _figure(7, 3.3)
    for name, g in curves.groupby("model"):
        ax.plot(g.train_seconds_cum / 60, g["ndcg@10"], marker=".", label=name)
    if tt:
        ax.axhline(tt["target"], ls="--", color="grey", lw=0.8)
    ax.set(xlabel="training minutes (cumulative)", ylabel="validation NDCG@10", title=record["label"])
    ax.legend(fontsize=8)
    shown = pd.DataFrame({"model": table.model, "best epoch": table["best epoch"], "epochs": table.epochs,
                          "train min": (table["train s"] / 60).map(lambda v: _num(v, 1)),
                          "test R@10": table["test recall@10"].map(_num), "test N@10": table["test ndcg@10"].map(_num),
                          "min to target": (table["s to target"].astype(float) / 60).map(lambda v: _num(v, 1))})
    return Markdown(text), Plot(fig), Table(shown, table, "recbole_benchmark")


# --------------------------------------------------------------------------------------------- 05 sensitivity

FIELDS = ("alpha", "beta", "reasoning_steps", "group_size")
_PAPER_FIELD = {"reasoning_steps": ("group_size", 8), "group_size": ("reasoning_steps", 3)}


def sensitivity_frame(found: dict[str, list[dict]]) -> pd.DataFrame:
    """One row per stored run of the sensitivity grid (``found``: field -> records): field, value, test R@10 and
    N@10, validation N@10."""
    frames = []
    for field, recs in found.items():
        if recs:
            f = records_frame(recs)
            f["valid ndcg@10"] = records_frame(recs, "valid")["ndcg@10"].to_numpy()
            f["field"], f["value"] = field, [float(module_setting(r, field)) for r in recs]
            frames.append(f)
    cols = ["field", "value", "recall@10", "ndcg@10", "valid ndcg@10", "label", "seed", "run_id"]
    return pd.concat(frames)[cols].reset_index(drop=True) if frames else pd.DataFrame(columns=cols)


def _paper_curve(field: str, dataset: str) -> pd.DataFrame:
    if field not in _PAPER_FIELD:
        return PAPER_TABLE6.iloc[:0]
    other, fixed = _PAPER_FIELD[field]
    p = PAPER_TABLE6[(PAPER_TABLE6.dataset == dataset) & (PAPER_TABLE6[other] == fixed)]
    return p.sort_values(field)


def sensitivity(df: pd.DataFrame, model: str, dataset: str) -> Page:
    """Fig. 3 and the quality side of Fig. 2: test and validation N@10 per setting, the paper's R and G curves
    (Table 6, HSTU) beside ours."""
    label = _label(model)
    pdata = dataset if dataset in set(PAPER_TABLE6.dataset) else "beauty"
    r, g = _paper_curve("reasoning_steps", pdata), _paper_curve("group_size", pdata)
    text = (f"**Paper:** {PAPER_CLAIMS['sensitivity']}; on HSTU (Table 6, "
            f"{_name(pdata)}) N@10 peaks at R = {int(r.loc[r['ndcg@10'].idxmax(), 'reasoning_steps'])} "
            f"({r['ndcg@10'].max():.4f}) and is highest at G = {int(g.loc[g['ndcg@10'].idxmax(), 'group_size'])} "
            f"({g['ndcg@10'].max():.4f}).")
    if BACKBONE_OF.get(model) != PAPER_TABLE3_BACKBONE:
        text += f" It gives no numbers for {label}."
    parts = []
    for field in FIELDS:
        s = df[df.field == field]
        if len(s) < 2:
            continue
        best = s.loc[s["valid ndcg@10"].idxmax()]
        parts.append(f"{_sym(field)} best on validation at {best.value:g} (test N@10 {best['ndcg@10']:.4f}; "
                     f"{s['ndcg@10'].min():.4f} to {s['ndcg@10'].max():.4f} over {len(s)} values)")
    text += (f" **Ours** ({label} on {_name(dataset)}): {'; '.join(parts)}." if parts else
             f" **Ours** ({label}): {NOT_MEASURED}.")
    return Page(Markdown(text), sensitivity_figure(df, pdata), sensitivity_shown(df, pdata, model, dataset))


def _sym(field: str) -> str:
    return {"alpha": "α", "beta": "β", "reasoning_steps": "R", "group_size": "G"}.get(field, field)


def sensitivity_figure(df: pd.DataFrame, pdata: str) -> Figure:
    fig = Figure(figsize=(9, 5.6), dpi=100, layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    names = {"alpha": "alpha (L_diff weight)", "beta": "beta (L_align weight)", "reasoning_steps": "reasoning steps R",
             "group_size": "policy samples G"}
    for ax, f in zip(axes, FIELDS):
        s = df[df.field == f].sort_values("value")
        if len(s):
            ax.plot(s.value, s["ndcg@10"], "o-", color=_OURS, label="ours, test")
            ax.plot(s.value, s["valid ndcg@10"], "s--", color="C1", label="ours, valid")
        else:
            ax.set_title("ours: not yet measured", fontsize=9, color="0.35", style="italic")
        pc = _paper_curve(f, pdata)
        if len(pc):
            ax2 = ax.twinx() if len(s) else ax
            ax2.plot(pc[f], pc["ndcg@10"], "d:", color="0.45", label="paper test (Table 6, HSTU)")
            if ax2 is not ax:
                ax2.tick_params(axis="y", colors="0.45")
            ax2.legend(fontsize=7, loc="lower right", framealpha=0.6)
        ax.set(xlabel=names[f], ylabel="NDCG@10")
        if not len(s) and not len(pc):
            ax.set(xlim=(-0.1, 2.1), xticks=[0, 0.5, 1, 2], yticks=[])
        if len(s):
            ax.legend(fontsize=7, loc="upper left")
    return fig


def sensitivity_shown(df: pd.DataFrame, pdata: str, model: str, dataset: str) -> Table:
    rows = []
    for f in FIELDS:
        s = df[df.field == f].set_index("value")
        pc = _paper_curve(f, pdata)
        pc = pc.set_index(pc[f].astype(float)) if len(pc) else pd.DataFrame({"ndcg@10": []})
        for v in sorted(set(s.index) | set(pc.index)):
            rows.append({"field": f, "value": v,
                         "test ndcg@10": s["ndcg@10"].get(v, np.nan) if len(s) else np.nan,
                         "valid ndcg@10": s["valid ndcg@10"].get(v, np.nan) if len(s) else np.nan,
                         "test recall@10": s["recall@10"].get(v, np.nan) if len(s) else np.nan,
                         "paper ndcg@10 (HSTU)": pc["ndcg@10"].get(v, np.nan)})
    data = pd.DataFrame(rows, columns=["field", "value", "test ndcg@10", "valid ndcg@10", "test recall@10",
                                       "paper ndcg@10 (HSTU)"])
    shown = pd.DataFrame({"setting": [f"{_sym(f)} = {v:g}" for f, v in zip(data.field, data.value)],
                          "test N@10": data["test ndcg@10"].map(_num), "valid N@10": data["valid ndcg@10"].map(_num),
                          "paper N@10 (HSTU)": data["paper ndcg@10 (HSTU)"].map(_num)})
    return Table(shown, data, f"sensitivity_{model}_{dataset}", f"–: {NOT_MEASURED} (or not in the paper).")


# -------------------------------------------------------------------------------------------- 06 trajectories

def trajectories(probes: list[dict], model: str) -> Page:
    """Fig. 4: per stage (thinking tokens, then the diffusion output) the target's rank and the test metrics."""
    label = _label(model)
    text = f"**Paper:** {PAPER_CLAIMS['trajectories']}."
    rows = [{"seed": p["config"]["seed"], "stage": s, **m, "median rank": p["median_rank"][s]}
            for p in probes for s, m in p["stage_metrics"].items()]
    data = pd.DataFrame(rows, columns=["seed", "stage", *METRICS, "median rank"])
    if probes:
        g = data.groupby("stage", sort=False)[["ndcg@10", "median rank"]].mean()
        up = sum(g.loc[b, "ndcg@10"] > g.loc[a, "ndcg@10"] for a, b in zip(g.index[:-1], g.index[1:]))
        text += (f" **Ours** ({label}, {len(probes)} seed{'s' if len(probes) > 1 else ''}): test N@10 goes from "
                 f"{g['ndcg@10'].iloc[0]:.4f} at {g.index[0]} to {g['ndcg@10'].iloc[-1]:.4f} after {g.index[-1]}, "
                 f"rising at {up} of {len(g) - 1} transitions; the median target rank goes from "
                 f"{g['median rank'].iloc[0]:.0f} to {g['median rank'].iloc[-1]:.0f}.")
        if g["ndcg@10"].idxmax() != g.index[-1]:
            text += f" The best stage is {g['ndcg@10'].idxmax()}, not the last."
        text += _later_tokens(probes)
        fig = trajectory_figure(probes[0])
    else:
        text += f" **Ours** ({label}): {NOT_MEASURED}."
        fig = placeholder_figure(f"{label}: target rank along the trajectory", "stage", "target rank")
        data = pd.DataFrame({"seed": np.nan, "stage": [f"step {r + 1}" for r in range(3)] + ["diffusion"]},
                            columns=data.columns)     # the stages of the default R = 3, nothing measured
    shown = pd.DataFrame({"seed": data.seed, "stage": data.stage, "R@10": data["recall@10"].map(_num),
                          "N@10": data["ndcg@10"].map(_num), "median rank": data["median rank"].map(lambda v: _num(v, 0))})
    return Page(Markdown(text), fig, Table(shown, data, f"trajectories_{model}",
                                           "Test users; a Semantic-ID backbone ranks a target outside the beam last."))


def _later_tokens(probes: list[dict]) -> str:
    """A sentence on how alike the thinking tokens after the first are (Fig. 4's heatmap: the mean cosine of
    tau_2 and tau_R over the probes that store a similarity matrix and have R >= 3), or "" when none does."""
    cos = []
    for p in probes:
        R = sum(st.startswith("step") for st in p["stages"])
        if p.get("similarity") is not None and R >= 3:
            cos.append((np.array(p["similarity"])[1, R - 1], R))
    if not cos:
        return ""
    c, R = float(np.mean([v for v, _ in cos])), cos[0][1]
    said = f"{c:.3f}" if c < 0.9995 else "above 0.999"                  # not a rounded "1.000"
    text = f" The cosine between thinking tokens 2 and {R} is {said}"
    return text + (f": step {R} points almost where step 2 does." if c >= 0.95 else ".")


def trajectory_figure(probe: dict) -> Figure:
    names, ranks = probe["stages"], np.array(probe["sample_ranks"]) + 1
    fig, axes = _figure(11, 3.6, 2)
    for row in ranks[:60]:
        axes[0].plot(names, row, color=_OURS, alpha=0.15)
    axes[0].plot(names, np.median(ranks, 0), "k-o", label=f"median of {len(ranks)} sampled users")
    axes[0].set(yscale="log", ylabel="target rank (1 = top)", title="rank along the trajectory")
    axes[0].invert_yaxis()
    axes[0].legend(fontsize=8)
    sim = np.array(probe["similarity"]) if probe.get("similarity") is not None else np.eye(len(names))
    im = similarity_heatmap(axes[1], sim, names)
    axes[1].set(title=f"mean cosine similarity (seed {probe['config']['seed']})")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    return fig


def similarity_heatmap(ax, sim: np.ndarray, names: list[str]):
    """The stages' mean cosine similarities ``sim [S, S]`` as an annotated heatmap on ``ax``; returns the image."""
    im = ax.imshow(sim, cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="w" if sim[i, j] < 0.6 else "k")
    ax.set(xticks=range(len(names)), xticklabels=names, yticks=range(len(names)), yticklabels=names)
    return im


# ------------------------------------------------------------------------------------------ 07 sparsity groups

def groups_frame(probes: list[dict]) -> pd.DataFrame:
    """The last stage's group metrics of each probe record, with its label and seed."""
    frames = []
    for p in probes:
        g = pd.DataFrame(p["groups"])
        frames.append(g[g.stage == p["stages"][-1]].assign(label=p["label"], seed=p["config"]["seed"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sparsity_groups(groups: pd.DataFrame, base: str, model: str, metric: str = "ndcg@10") -> Page:
    """Fig. 5 / 7: test ``metric`` per user group (history length) and item group (target popularity), the
    DiffuReason model against its backbone (means over the seeds both have)."""
    b, m = _label(base), _label(model)
    text = f"**Paper:** {PAPER_CLAIMS['groups']}."
    table = pd.DataFrame()
    if len(groups) and {b, m} <= set(groups.label):
        seeds = sorted(set(groups[groups.label == b].seed) & set(groups[groups.label == m].seed))
        g = groups[groups.seed.isin(seeds)]
        table = g.groupby(["grouping", "group", "label"])[metric].mean().unstack("label")[[b, m]].reset_index()
        table["change %"] = 100 * (table[m] / table[b] - 1)
    if len(table):
        worst, best = table.loc[table["change %"].idxmin()], table.loc[table["change %"].idxmax()]
        text += (f" **Ours** ({m} against {b}, test {SHORT.get(metric, metric)}, seed{'s' if len(seeds) > 1 else ''} "
                 f"{', '.join(map(str, seeds))}): better in {int((table['change %'] > 0).sum())} of {len(table)} "
                 f"groups, from {worst['change %']:+.0f}% ({worst.group}) to {best['change %']:+.0f}% ({best.group}).")
        fig = groups_figure(table, b, m, metric)
        shown = pd.DataFrame({"group": table.group, b: table[b].map(_num), m: table[m].map(_num),
                              "change": table["change %"].map(lambda v: _pct(v, 0))})
    else:
        missing = [lab for lab in (b, m) if not len(groups) or lab not in set(groups.label)]
        text += f" **Ours** ({m} against {b}): {NOT_MEASURED} (no probe record of {_and(missing)})."
        fig = placeholder_figure(f"{m} against {b} by user and item group", "group", f"test {metric}")
        shown = pd.DataFrame({"group": [f"UG-{i}" for i in range(4)] + [f"IG-{i}" for i in range(4)], b: "–", m: "–",
                              "change": "–"})
    return Page(Markdown(text), fig, Table(shown, table if len(table) else shown, f"groups_{model}",
                                           "UG: users by history length (UG-0 shortest); IG: items by popularity of "
                                           "the target (IG-0 rarest)."))


def groups_figure(table: pd.DataFrame, b: str, m: str, metric: str) -> Figure:
    fig, axes = _figure(11, 3.4, 2)
    for ax, grouping in zip(axes, ("user", "item")):
        t = table[table.grouping == grouping]
        x = np.arange(len(t))
        ax.bar(x - 0.2, t[b], 0.4, color=_GREY, label=b)
        ax.bar(x + 0.2, t[m], 0.4, color=_OURS, label=m)
        ax.set(xticks=x, xticklabels=t.group, ylabel=f"test {metric}", title=f"{grouping} groups")
        ax2 = ax.twinx()
        ax2.plot(x, t["change %"], "k-o")
        ax2.axhline(0, color="k", lw=0.5, ls=":")
        ax2.set_ylabel("change %")
    axes[0].legend(fontsize=8)
    return fig


# ------------------------------------------------------------------------------------------------- 09 readings

def readings(table: pd.DataFrame, chosen: pd.DataFrame, dataset: str = "beauty",
             backbones: dict[str, float] | None = None, seeds: dict[str, list[float]] | None = None,
             answer: str = "") -> Page:
    """The validation grid over the readings of the paper (:func:`drlib.readings.grid`) and the reading chosen per
    backbone (:func:`drlib.readings.choose`): validation NDCG@10 only, never test. ``backbones``: the stand-alone
    backbones' validation NDCG@10 on the same seed (``{"SASRec": 0.072}``), drawn as a line and said in the text.
    ``seeds``: validation NDCG@10 per seed of the backbones and the literal readings
    (:func:`drlib.readings.valid_by_seed`): their spread is said as the scale of one seed's noise, and the best two
    readings of a backbone closer than it are said not to be told apart. ``answer``: a paragraph the finding opens
    with (:func:`readings_answer`)."""
    text = (f"{answer}\n\n" if answer else "") + (
        "**Paper:** one configuration (Sec. 3, Appendix A.1 and C, Table 5), with several places that admit more "
        f"than one reading ({len(READINGS) - 1} alternatives to the literal one, listed below). ")
    t = table[table.dataset == dataset] if len(table) else table
    if len(t):
        parts = []
        for _, c in (chosen[chosen.dataset == dataset] if len(chosen) else chosen).iterrows():
            g = t[t.backbone == c.backbone]
            lit = "" if c.reading == "literal" or pd.isna(c["vs literal %"]) else \
                f", {c['vs literal %']:+.1f}% over the literal reading"
            own = (backbones or {}).get(c.backbone)
            gap = "" if own is None else \
                f"; {c.backbone} alone {own:.4f}, {_pct(100 * (c['valid ndcg@10'] / own - 1))}"
            home = c.get("chosen on", dataset)
            if home != dataset:                   # carried over: this dataset trains no grid of its own
                parts.append(f"on {c.backbone}, the reading chosen on {_name(home)}'s grid, *{c.reading}* "
                             f"(validation NDCG@10 here {c['valid ndcg@10']:.4f}{lit}{gap}; {len(g)} readings "
                             "stored here)")
                continue
            plan = planned(t, MODEL_OF[c.backbone], dataset)
            done = sum(r in set(g.reading) for r in plan)       # as `python -m drlib readings` counts them
            ahead = len(g) - done
            many = ahead > 1
            extra = (f" (and {ahead} combination{'s' if many else ''} trained ahead of {'their' if many else 'its'} "
                     "turn)") if ahead else ""
            parts.append(f"on {c.backbone}, {done} of {len(plan)} readings stored{extra}, the best is *{c.reading}* "
                         f"(validation NDCG@10 {c['valid ndcg@10']:.4f}{lit}{gap})")
        text += f"**Ours** ({_name(dataset)}, seed 0, chosen on validation only): {'; '.join(parts)}."
        text += _seed_noise(t, seeds or {})
        fig = readings_figure(t, backbones, seeds)
        shown = pd.DataFrame({"backbone": t.backbone, "reading": t.reading, "valid N@10": t["valid ndcg@10"].map(_num),
                              "vs literal": t["vs literal %"].map(_pct),
                              "best / epochs": [_epochs(b, e, c) for b, e, c in
                                                zip(t["best epoch"], t.epochs, t["stopped at cap"])],
                              "train min": [_minutes(v, m) for v, m in zip(t["train min"], t["mixed devices"])]})
        data = t
    else:
        text += f"**Ours:** {NOT_MEASURED} " + (
            "(the grid is training: `tools/jobs/readings.txt`)." if dataset == HOME else
            f"({_name(dataset)} trains no grid of its own: it carries the reading chosen on {_name(HOME)}'s grid, "
            "`tools/jobs/other_datasets.txt`).")
        fig = placeholder_figure("validation NDCG@10 per reading", "validation NDCG@10")
        shown = pd.DataFrame({"reading": list(READINGS), "settings": [describe(r) or "(as written)" for r in READINGS],
                              "valid N@10": "–"})
        data = shown
    note = ("Seed 0; literal = the plain model (results/main/), the others results/readings/. Test metrics are not "
            "used to choose.")
    return Page(Markdown(text), fig, Table(shown, data, f"readings_{dataset}", _note_marks(note, data)))


def _seed_noise(t: pd.DataFrame, seeds: dict[str, list[float]]) -> str:
    """The sentence on one seed's noise in the grid: the validation range over seeds of each backbone and literal
    reading with two or more seeds, and, per backbone, whether its best two readings are closer than the widest
    of those ranges (its own and its literal reading's)."""
    spread = {k: (min(v), max(v), len(v)) for k, v in seeds.items() if len(v) >= 2}
    if not spread:
        return ""
    said = ", ".join(f"{k}{' alone' if k in MODEL_OF else ''} {lo:.4f} to {hi:.4f} over {n} seeds ({hi - lo:.4f})"
                     for k, (lo, hi, n) in spread.items())
    text = (f" For scale, one seed's noise on validation NDCG@10: {said}. Readings closer than that are not told "
            f"apart by one seed")
    close = []
    for bb, g in t.groupby("backbone", sort=False):
        width = max((spread[k][1] - spread[k][0] for k in (bb, literal_label(MODEL_OF[bb])) if k in spread),
                    default=None)
        if width is not None and len(g) >= 2:
            top = g.sort_values("valid ndcg@10", ascending=False).head(2)
            gap = float(top["valid ndcg@10"].iloc[0] - top["valid ndcg@10"].iloc[1])
            if gap < width:
                close.append(f"on {bb} the best two, *{top.reading.iloc[0]}* and *{top.reading.iloc[1]}*, are "
                             f"{gap:.4f} apart")
    return text + (": " + "; ".join(close) + "." if close else ".")


def readings_figure(t: pd.DataFrame, backbones: dict[str, float] | None = None,
                    seeds: dict[str, list[float]] | None = None) -> Figure:
    """Validation NDCG@10 per reading, one panel per backbone stacked on a shared axis (the readings' long labels
    get the width), each bar labelled with its value; the backbone alone on the same seed as a dashed line and,
    where ``seeds`` has two or more of its seeds, their range as a grey band (one seed's noise)."""
    parts = list(t.groupby("backbone", sort=False))
    sizes = [len(g) for _, g in parts]
    fig = Figure(figsize=(10, 0.3 * sum(sizes) + 1.1 * len(parts)), dpi=100, layout="constrained")
    axes = fig.subplots(len(parts), 1, sharex=True, squeeze=False, height_ratios=sizes)[:, 0]
    for ax, (bb, g) in zip(axes, parts):
        g = g.iloc[::-1]
        colors = [_GREY if r == "literal" else _OURS for r in g.reading]
        y = np.arange(len(g))
        ax.barh(y, g["valid ndcg@10"], color=colors, height=0.7)
        for yi, v in zip(y, g["valid ndcg@10"]):
            ax.text(v, yi, f" {v:.4f}", va="center", fontsize=7)
        if (backbones or {}).get(bb) is not None:
            ax.axvline(backbones[bb], color="k", ls="--", lw=1, label=f"{bb} alone (seed 0)")
        own = (seeds or {}).get(bb, [])
        if len(own) >= 2:
            ax.axvspan(min(own), max(own), color=_GREY, alpha=0.25, lw=0, label=f"{bb} alone, {len(own)} seeds")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right")
        ax.set(yticks=y, ylim=(-0.6, len(g) - 0.4), title=f"DiffuReason on {bb} (grey: literal)")
        ax.set_yticklabels(g.reading, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("validation NDCG@10 (seed 0)")
    return fig


def readings_curves(grid_runs: list[dict], backbone_runs: list[dict]) -> Plot:
    """Validation NDCG@10 per epoch of every reading in the grid (``grid_runs``: :func:`drlib.readings.grid_records`)
    beside the stand-alone backbone's run on the same seed (``backbone_runs``, dashed): how fast each one learns.
    The literal reading is grey, the best on validation (the choice) thick blue, the others thin; a dot marks each
    run's best epoch, the one its record keeps."""
    by = {}
    for r in grid_runs:
        by.setdefault(r["config"]["model"], []).append(r)
    if not by:
        return Plot(placeholder_figure("validation NDCG@10 per epoch", "epoch", "validation NDCG@10"))
    fig = Figure(figsize=(11, 3.8 * len(by)), dpi=100, layout="constrained")
    axes = fig.subplots(len(by), 1, squeeze=False)[:, 0]
    others = [f"C{i}" for i in range(1, 10) if i != 7]            # C0 is the choice, C7 is grey like the literal
    for ax, (model, runs) in zip(axes, by.items()):
        bb = BACKBONE_OF.get(model, model)
        for r in (r for r in backbone_runs if r["label"] == bb):
            h = pd.DataFrame(r["history"])
            ax.plot(h["epoch"], h["ndcg@10"], "k--", lw=1.2, label=f"{bb} alone")
        best = max(runs, key=lambda r: r["metrics"]["valid"]["ndcg@10"])
        rest = iter(others * 2)
        for r in sorted(runs, key=lambda r: (r["label"] != "literal", r is best, r["label"])):
            h = pd.DataFrame(r["history"])
            if r["label"] == "literal":
                style = dict(color=_GREY, lw=1.8, zorder=2)
            elif r is best:
                style = dict(color=_OURS, lw=2.2, zorder=3)
            else:
                style = dict(color=next(rest), lw=0.9, alpha=0.8, zorder=1)
            label = r["label"] + (" (best on validation)" if r is best and r["label"] != "literal" else "")
            ax.plot(h["epoch"], h["ndcg@10"], label=label, **style)
            top = h.loc[h["ndcg@10"].idxmax()]
            ax.plot(top["epoch"], top["ndcg@10"], "o", ms=3.5, color=style["color"], zorder=4)
        # a diverged run falls to ~0: the axis starts at half the lowest best score, so the rest stay readable
        low = min(r["metrics"]["valid"]["ndcg@10"] for r in runs) / 2
        ax.set(xlabel="epoch", ylabel="validation NDCG@10", title=f"DiffuReason on {bb}", ylim=(low, None))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return Plot(fig)


def readings_settings_table() -> Table:
    """What each reading changes, as the ``--set`` overrides a user would type."""
    data = pd.DataFrame({"reading": list(READINGS), "overrides": [describe(r) or "(the paper as written)"
                                                                  for r in READINGS]})
    return Table(data, data, "reading_settings")


def _rel_ci(r) -> str:
    """``-12.3% (-20.1 to -4.5)``: a :func:`drlib.paired.paired_table` row's relative difference, t interval over
    seeds in % of the base mean (``(1 seed)`` without one)."""
    if r["seeds"] < 2:
        return f"{_pct(r['relative %'])} (1 seed)"
    return f"{_pct(r['relative %'])} ({100 * r['ci_low'] / r['base']:+.1f} to {100 * r['ci_high'] / r['base']:+.1f})"


ALPHA = 0.05   # the per-user paired test's level for "above" / "below" in a finding


def _paper_gain(dataset: str, backbone: str, metric: str) -> float:
    """Table 2's relative improvement (%) of DiffuReason over ``backbone`` (``SASRec``, ``HSTU``) on ``metric``."""
    return 100 * (paper_value(dataset, literal_label(MODEL_OF[backbone]), metric)
                  / paper_value(dataset, backbone, metric) - 1)


def readings_answer(compared: pd.DataFrame, dataset: str = "beauty", metric: str = "ndcg@10") -> str:
    """The answer to "does DiffuReason improve a strong backbone?" in one sentence, with which the readings page
    opens: for each backbone, the reading chosen on validation (the literal one where it won) against the backbone
    on test ``metric``, called above or below it where the per-user paired test says so at level :data:`ALPHA`
    (two-sided), else not told apart from it; the number of seeds is said where it is under three. ``compared``:
    :func:`drlib.readings.comparison`. "" while no chosen reading has a test comparison."""
    if not len(compared):
        return ""
    c = compared[(compared.metric == metric) & (compared.dataset == dataset)]
    said, above = [], []
    for _, r in c[c.against.isin(list(MODEL_OF))].iterrows():
        lit = literal_label(MODEL_OF[r.against])
        if r.model != (lit if r.reading == "literal" else lit + BEST):
            continue
        p, rel = r.get("user p"), r["relative %"]
        where = (("above" if rel > 0 else "below") if p is not None and not pd.isna(p) and p < ALPHA
                 else "not told apart from")
        n = int(r["seeds"])
        few = f", {n} seed{'s' if n > 1 else ''} so far" if n < 3 else ""
        said.append(f"{where} {r.against} ({_pct(rel)}, per test user p {_p(p)}{few})")
        if where == "above":
            above.append(r.against)
    if not said:
        return ""
    paper = ", ".join(f"{literal_label(MODEL_OF[b])} {_pct(_paper_gain(dataset, b, metric))}"
                      for b in c[c.against.isin(list(MODEL_OF))].against.unique())
    verdict = (f"it improves {_and(above)}" if above else "it improves neither backbone" if len(said) > 1
               else "it does not improve the backbone")
    homes = set(c["chosen on"]) - {dataset} if "chosen on" in c else set()
    where = f" on {_and([_name(h) for h in sorted(homes)])}'s validation grid" if homes else " on validation"
    return (f"**Paper** ({_name(dataset)}, Table 2, test {SHORT[metric]}): {paper} over the backbone. **Ours, in "
            f"short:** the reading of the paper chosen{where} is {'; '.join(said)}: {verdict}. The sections "
            f"below give the grid that chose it and the seeds behind each number.")


def readings_seeds(records: list[dict], chosen: pd.DataFrame, compared: pd.DataFrame, dataset: str = "beauty",
                   gaps: dict | None = None, metric: str = "ndcg@10") -> Page:
    """The test comparison after the grid: the backbone's seeds, the literal reading's and the chosen reading's
    (``records``: :func:`drlib.readings.compared_records`; ``compared``: :func:`drlib.readings.comparison`;
    ``gaps``: :func:`drlib.readings.missing`, said in the finding while the choice can still change)."""
    m = SHORT[metric]
    recs = [r for r in records if r["config"]["dataset"] == dataset]
    ch = chosen[chosen.dataset == dataset] if len(chosen) else chosen
    paper = "; ".join(f"{literal_label(MODEL_OF[b])} {_pct(_paper_gain(dataset, b, metric))} over {b}"
                      for b in (ch.backbone if len(ch) else MODEL_OF))
    text = f"**Paper** ({_name(dataset)}, Table 2, test {m}): {paper}. "
    c = compared[(compared.metric == metric) & (compared.dataset == dataset)] if len(compared) else compared
    if not len(c):
        text += f"**Ours:** {NOT_MEASURED}: " + (
            "the grid chooses the reading on validation first (`python -m drlib readings` says what is missing)."
            if dataset == HOME else f"the literal reading and the one chosen on {_name(HOME)}'s grid train here "
            f"(`python -m drlib readings --dataset {dataset}` says what is missing).")
        fig = placeholder_figure(f"test {m} per seed", ylabel=f"test {m}")
        shown = pd.DataFrame({"model": [], "reading": [], "seed": [], m: []})
        return Page(Markdown(text), fig, Table(shown, shown, f"readings_seeds_{dataset}"))
    parts = []
    for _, r in c[c.against.isin(list(MODEL_OF))].iterrows():
        home = r.get("chosen on", dataset)
        which = "literal" if not r.model.endswith(BEST) else f"best reading, *{r.reading}*" + (
            "" if pd.isna(home) or home == dataset else f", chosen on {_name(home)}")
        seeds = r["seed list"]
        parts.append(f"{r.model.removesuffix(BEST)} ({which}) {_rel_ci(r)} over {r.against} on seed"
                     f"{'s' if ',' in seeds else ''} {seeds} (per test user p {_p(r.get('user p'))})")
    lit_best = [b for b in ch.backbone if (ch.reading[ch.backbone == b] == "literal").all()]
    if lit_best:
        parts.append(f"on {_and(lit_best)} the best reading on validation is the literal one")
    text += (f"**Ours** (test {m}, mean paired difference over the seeds both ran, 95% interval over seeds; the "
             f"reading chosen on validation only): {'; '.join(parts)}.")
    carried = set(zip(ch["chosen on"], ch.backbone)) if "chosen on" in ch else set()   # (grid that chose, backbone)
    open_ = [f"{b} lacks {len(v)} of its readings" + ("" if d == dataset else f" on {_name(d)}")
             for (d, b), v in (gaps or {}).items() if d == dataset or (d, b) in carried]
    if open_:
        text += f" The grid is not complete ({_and(open_)}): the best reading can still change."
    return Page(Markdown(text), readings_seeds_figure(recs, metric), readings_seeds_table(recs, dataset))


def readings_patience(pairs: list[tuple[dict, dict]], literal: list[dict], backbones: list[dict],
                      dataset: str = "beauty", metric: str = "ndcg@10") -> Page:
    """Whether early stopping ended a run on noise: each run retrained with a longer patience beside the stored run
    it repeats (``pairs``: :func:`drlib.readings.patience_pairs`), validation ``metric`` per epoch, and both runs'
    test ``metric`` against the backbone's run of the same seed (``backbones``). ``literal``: the literal readings'
    runs in ``main``, whose largest epoch-to-epoch swing of validation ``metric`` the finding gives."""
    m = SHORT[metric]
    here = [r for r in literal if r["config"]["dataset"] == dataset]
    swings = [f"{r['label']} seed {r['config']['seed']} {_num(largest_swing(r, metric))} (stopped at epoch "
              f"{r['timing']['epochs']}, best {r['timing']['best_epoch']})"
              for r in sorted(here, key=lambda r: (r["label"], r["config"]["seed"]))]
    text = (f"**Paper** (Sec. 4.2, Table 5): 300 training epochs for SASRec and HSTU; it does not say whether "
            f"training stops early. **Ours** ({_name(dataset)}): DiffuReason stops 10 epochs after its best "
            f"validation {m} (patience 10), and a noisy run can stop on a dip. The largest change from one epoch to "
            f"the next: {'; '.join(swings) or 'no run stored'}. ")
    base = {(r["label"], r["config"]["seed"]): r["metrics"]["test"][metric]
            for r in backbones if r["config"]["dataset"] == dataset}
    def row(r):
        t = r["metrics"]["test"][metric]
        bb = base.get((BACKBONE_OF.get(r["config"]["model"]), r["config"]["seed"]), float("nan"))
        return {"model": r["label"], "seed": r["config"]["seed"], "patience": r["config"]["train"]["patience"],
                "best epoch": r["timing"]["best_epoch"], "epochs": r["timing"]["epochs"],
                "train min": r["timing"]["train_seconds"] / 60, "largest swing": largest_swing(r, metric),
                f"valid {m}": r["metrics"]["valid"][metric], f"test {m}": t, "test vs backbone %": 100 * (t / bb - 1),
                "commit": (r.get("env") or {}).get("git_commit", "")[:7], "devices": devices_text(r),
                "mixed devices": mixed_devices(r), "stopped at cap": stopped_at_cap(r), "run_id": r["run_id"]}

    # the pairs, or while none is stored the runs a rerun would repeat
    data = pd.DataFrame([row(r) for pair in pairs for r in pair] if pairs else
                        [row(r) for r in sorted(here, key=lambda r: (r["label"], r["config"]["seed"]))])
    shown = data[["model", "seed", "patience"]].assign(
        **{"best / epochs": [_epochs(b, e, c) for b, e, c in zip(data["best epoch"], data.epochs,
                                                                 data["stopped at cap"])],
           "swing": data["largest swing"].map(_num), f"valid {m}": data[f"valid {m}"].map(_num),
           f"test {m}": data[f"test {m}"].map(_num), "vs backbone": data["test vs backbone %"].map(_pct),
           "train min": [_minutes(v, m) for v, m in zip(data["train min"], data["mixed devices"])]}) \
        if len(data) else data
    note = ("Swing: the largest change of validation " + m + " from one epoch to the next. Test is read after the "
            "fact, not to choose; results/patience/ (the longer patience) and results/main/ or results/readings/. "
            "A rerun at another commit (the CSV's commit column) may draw other random numbers (e.g. dropout "
            "masks), so its curve can part from the stored run's before that run stopped.")
    table = Table(shown, data, f"readings_patience_{dataset}",
                  _note_marks(note, data))
    if not pairs:
        text += ("No run is retrained with a longer patience yet (`python -m drlib train "
                 "--model diffureason-h --seed 0 1 2 --experiment patience --set train.patience=20` stores them "
                 "under `results/patience/`; the main table is not touched). The table lists the stored runs a "
                 "rerun would repeat.")
        fig = placeholder_figure(f"validation {m} per epoch", "epoch", f"validation {m}", note="not run yet")
        return Page(Markdown(text), fig, table)
    parts = []
    for short, long in pairs:
        a, b = short["metrics"], long["metrics"]
        same = short["timing"]["best_epoch"] == long["timing"]["best_epoch"]
        parts.append(f"{long['label']} seed {long['config']['seed']}, patience {short['config']['train']['patience']}"
                     f" to {long['config']['train']['patience']} ({_follows(short, long, metric)}): "
                     + ("the same best epoch " + str(long["timing"]["best_epoch"]) if same else
                        f"best epoch {short['timing']['best_epoch']} to {long['timing']['best_epoch']}")
                     + f", validation {m} {_num(a['valid'][metric])} to {_num(b['valid'][metric])}, test "
                     f"{_num(a['test'][metric])} to {_num(b['test'][metric])}")
    text += (f"Each run retrained with a longer patience (the best epoch kept, as always, is chosen on "
             f"validation): {'; '.join(parts)}.")
    effect = _patience_effect(pairs, backbones, dataset, metric)
    if effect:
        text += f" Against the backbone on test {m}, on the seeds retrained: {effect}."
    return Page(Markdown(text), readings_patience_figure(pairs, metric), table)


def _patience_effect(pairs: list[tuple[dict, dict]], backbones: list[dict], dataset: str, metric: str,
                     n_boot: int = 2000) -> str:
    """Each retrained model against its backbone on test ``metric`` at both patiences, over the seeds it was
    retrained on (:func:`drlib.paired.paired_table`: mean relative difference with its t interval over seeds, and the
    per-user paired bootstrap): ``"DiffuReason-H at patience 20 -18.0% (-30.1 to -5.9, per test user p < 0.001),
    at patience 10 -35.0% (...), against HSTU on seeds 0,1,2"``; "" without a backbone run of those seeds."""
    groups: dict[tuple, list] = {}
    for short, long in pairs:
        key = (long["label"], long["config"]["model"], short["config"]["train"]["patience"],
               long["config"]["train"]["patience"])
        groups.setdefault(key, []).append((short, long))
    said = []
    for (label, model, p_short, p_long), ps in groups.items():
        bb = BACKBONE_OF.get(model)
        base = [r for r in backbones if r["label"] == bb and r["config"]["dataset"] == dataset]
        recs = base + [dict(s, label="short") for s, _ in ps] + [dict(lg, label="long") for _, lg in ps]
        rows = {k: paired_table(recs, bb, k, metrics=(metric,), n_boot=n_boot) for k in ("short", "long")}
        if any(t.empty for t in rows.values()):
            continue
        def one(r) -> str:
            ci = "1 seed" if r["seeds"] < 2 else \
                f"{100 * r['ci_low'] / r['base']:+.1f} to {100 * r['ci_high'] / r['base']:+.1f}"
            user = f", per test user p {_p(r['user p'])}" if pd.notna(r.get("user p", np.nan)) else ""
            return f"{_pct(r['relative %'])} ({ci}{user})"
        long_r, short_r = rows["long"].iloc[0], rows["short"].iloc[0]
        said.append(f"{label} at patience {p_long} {one(long_r)}, at patience {p_short} {one(short_r)}, against "
                    f"{bb} on seed{'s' if ',' in long_r['seed list'] else ''} {long_r['seed list']}")
    return "; ".join(said)


def _follows(short: dict, long: dict, metric: str) -> str:
    """Whether a rerun repeated the stored run: ``"the stored run's curve through its 16 epochs"``, ``"the stored
    run's curve through epoch 9, then its own"`` or, parting at once, ``"another draw: stored at commit c96990f,
    rerun at 7b0ecb2"`` (:func:`drlib.readings.shared_epochs`)."""
    n, total = shared_epochs(short, long, metric), len(short["history"])
    if n >= total:
        return f"the stored run's curve through its {total} epochs"
    if n:
        return f"the stored run's curve through epoch {n}, then its own"
    commit = lambda r: ((r.get("env") or {}).get("git_commit") or "?")[:7]
    return f"another draw: stored at commit {commit(short)}, rerun at {commit(long)}"


def readings_patience_figure(pairs: list[tuple[dict, dict]], metric: str = "ndcg@10") -> Figure:
    """One panel per rerun: validation ``metric`` per epoch of the stored run (grey) and of the rerun with the longer
    patience (blue), a dot at each run's best epoch."""
    fig, axes = _figure(4.0 * len(pairs), 3.2, len(pairs), sharey=True)
    for ax, (short, long) in zip(axes, pairs):
        for r, color, lw in ((long, _OURS, 1.6), (short, _GREY, 2.4)):
            h = pd.DataFrame(r["history"])
            ax.plot(h["epoch"], h[metric], color=color, lw=lw, label=f"patience {r['config']['train']['patience']}")
            top = h.loc[h[metric].idxmax()]
            ax.plot(top["epoch"], top[metric], "o", ms=5, color=color)
        ax.set(xlabel="epoch", title=f"{long['label']}, seed {long['config']['seed']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"validation {SHORT[metric]}")
    return fig


def readings_probes(probes: list[dict], lacking: list[str] | None = None, dataset: str = "beauty") -> Page:
    """The Sec. 4.6 probes of the grid's outcome, per backbone: the target's median rank and test NDCG@10 at every
    stage (thinking tokens, diffusion output) of the literal and the chosen reading, beside the stand-alone
    backbone (``probes``: :func:`drlib.readings.stage_probes`, relabelled; ``lacking``: run ids without a probe)."""
    text = f"**Paper** (Fig. 4): {PAPER_CLAIMS['trajectories']}. "
    here = [p for p in probes if p["config"]["dataset"] == dataset]
    rows = [{"model": p["label"], "stage": st, "median rank": p["median_rank"][st], **p["stage_metrics"][st]}
            for p in here for st in p["stages"]]
    data = pd.DataFrame(rows, columns=["model", "stage", "median rank", *METRICS])
    parts = []
    for b in MODEL_OF:
        alone = data[(data.model == b)]
        for lab in (literal_label(MODEL_OF[b]), literal_label(MODEL_OF[b]) + BEST):
            d = data[data.model == lab]
            if not len(d):
                continue
            first, last = d.iloc[0], d.iloc[-1]
            vs = "" if not len(alone) else f" ({b} alone {alone['median rank'].iloc[-1]:.0f}, N@10 " \
                                           f"{alone['ndcg@10'].iloc[-1]:.4f})"
            parts.append(f"{lab}: median target rank {first['median rank']:.0f} at {first.stage} (N@10 "
                         f"{first['ndcg@10']:.4f}), {last['median rank']:.0f} after the {last.stage} (N@10 "
                         f"{last['ndcg@10']:.4f}){vs}")
    if parts:
        text += f"**Ours** ({_name(dataset)}, seed 0, test users): {'; '.join(parts)}."
        fig = readings_probes_figure(data)
    else:
        text += f"**Ours:** {NOT_MEASURED}."
        fig = placeholder_figure("median target rank per stage", "stage", "median target rank")
    if lacking:
        text += (" Not probed yet: " + ", ".join(f"`{r}`" for r in lacking) +
                 " (`python -m drlib probe RUN_ID` on the machine that kept the run's weights).")
    shown = pd.DataFrame({"model": data.model, "stage": data.stage, "median rank": data["median rank"].map(
        lambda v: _num(v, 0)), "R@10": data["recall@10"].map(_num), "N@10": data["ndcg@10"].map(_num)})
    return Page(Markdown(text), fig, Table(shown, data, f"readings_probes_{dataset}",
                                           "Seed 0, every test user; rank 1 is the top; results/probes/."))


def readings_probes_figure(data: pd.DataFrame) -> Figure:
    """Per backbone: the median target rank at each stage, the literal (grey) and the chosen reading; the
    stand-alone backbone's rank as a dashed line."""
    backbones = [b for b in MODEL_OF if data.model.isin([b, literal_label(MODEL_OF[b])]).any()]
    fig, axes = _figure(4.6 * len(backbones), 3.2, len(backbones), sharey=True)
    for ax, b in zip(axes, backbones):
        lit = literal_label(MODEL_OF[b])
        for lab, color in ((lit, _GREY), (lit + BEST, _OURS)):
            d = data[data.model == lab]
            if len(d):
                ax.plot(d.stage, d["median rank"], "-o", color=color,
                        label="literal" if lab == lit else "best reading")
        alone = data[data.model == b]
        if len(alone):
            ax.axhline(alone["median rank"].iloc[-1], color="k", ls="--", lw=1, label=f"{b} alone")
        ax.set(yscale="log", xlabel="stage", title=f"DiffuReason on {b}")
        ax.invert_yaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("median target rank (1 = top)")
    return fig


def readings_stages(probes: list[dict], dataset: str = "beauty") -> Page:
    """The rest of Sec. 4.6 for the literal and the chosen reading (seed 0): how alike the stages' latents are
    (mean cosine similarity, Fig. 4's heatmap) and the last stage against the stand-alone backbone per user group
    (history length) and item group (target popularity), Fig. 5 / 7. ``probes``: :func:`drlib.readings.stage_probes`."""
    here = [p for p in probes if p["config"]["dataset"] == dataset]
    by_label = {p["label"]: p for p in here}
    groups = groups_frame(here)
    rows, parts, pairs = [], [], []
    for b, model in MODEL_OF.items():
        lit = literal_label(model)
        for lab, short in ((lit, "literal"), (lit + BEST, "best")):
            p = by_label.get(lab)
            if p is None:
                continue
            pairs.append((b, short, p))
            sim, stages = np.array(p["similarity"]), p["stages"]
            R, last = sum(st.startswith("step") for st in stages), stages[-1]
            note = f"{lab}: the {'diffusion' if last == 'diffusion' else last} output's cosine with step 1 is " \
                   f"{sim[0, -1]:.2f}"
            if R >= 3:                                         # how alike the later thinking tokens tau_2..tau_R are
                note += f", between thinking tokens 2 and {R} {sim[1, R - 1]:.2f}"
            if b in by_label and len(groups):
                g = groups[groups.label.isin([b, lab])].pivot_table(index=["grouping", "group"], columns="label",
                                                                     values="ndcg@10").dropna()
                if len(g):
                    change = 100 * (g[lab] / g[b] - 1)
                    rows += [{"backbone": b, "reading": short, "grouping": k[0], "group": k[1], "alone": g.loc[k, b],
                              "model": g.loc[k, lab], "change %": change[k]} for k in g.index]
                    note += (f"; against {b} alone better in {int((change > 0).sum())} of {len(change)} groups, from "
                             f"{change.min():+.1f}% ({change.idxmin()[1]}) to {change.max():+.1f}% "
                             f"({change.idxmax()[1]})")
            parts.append(note)
    text = f"**Paper:** {PAPER_CLAIMS['trajectories']}; {PAPER_CLAIMS['groups']}. "
    data = pd.DataFrame(rows, columns=["backbone", "reading", "grouping", "group", "alone", "model", "change %"])
    caption = ("Test N@10 of the last stage against the backbone alone, per group; UG: users by history length (UG-0 "
               "shortest), IG: items by target popularity (IG-0 rarest); results/probes/.")
    if not pairs:
        text += f"**Ours:** {NOT_MEASURED}."
        fig = placeholder_figure("stage similarity and user / item groups", "group", "change %")
    else:
        text += f"**Ours** ({_name(dataset)}, seed 0, test users, N@10 of the last stage): {'; '.join(parts)}."
        fig = readings_stages_figure(pairs, data)
    if not len(data):
        shown = pd.DataFrame({"backbone": ["–"], "group": ["–"], "alone N@10": ["–"], "literal: change": ["–"],
                              "best: change": ["–"]})
        return Page(Markdown(text), fig, Table(shown, data, f"readings_groups_{dataset}", caption))
    wide = data.pivot_table(index=["backbone", "group"], columns="reading", values="change %", sort=False)
    shown = pd.DataFrame({"backbone": [k[0] for k in wide.index], "group": [k[1] for k in wide.index],
                          "alone N@10": [_num(data[(data.backbone == k[0]) & (data.group == k[1])].alone.iloc[0])
                                         for k in wide.index],
                          **{f"{c}: change": wide[c].map(lambda v: _pct(v, 1)).to_numpy() for c in wide.columns}})
    return Page(Markdown(text), fig, Table(shown, data, f"readings_groups_{dataset}", caption))


def readings_stages_figure(pairs: list[tuple[str, str, dict]], data: pd.DataFrame) -> Figure:
    """One row per backbone: the stage-similarity heatmap of the literal and the chosen reading, then the change
    over the backbone per user and item group for both."""
    backbones = list(dict.fromkeys(b for b, _, _ in pairs))
    fig = Figure(figsize=(9.5, 3.1 * len(backbones)), dpi=100, layout="constrained")
    axes = fig.subplots(len(backbones), 3, squeeze=False, gridspec_kw={"width_ratios": [1, 1, 1.25]})
    for row, b in zip(axes, backbones):
        for ax, short in zip(row[:2], ("literal", "best")):
            p = next((q for bb, s, q in pairs if bb == b and s == short), None)
            if p is None:
                ax.set_axis_off()
                continue
            sim = np.array(p["similarity"])
            names = [n.replace("step ", "s").replace("diffusion", "diff.") for n in p["stages"]]
            similarity_heatmap(ax, sim, names)
            ax.set(title=f"{p['label']}: cosine", xlabel="stage (s = thinking token)")
        ax = row[2]
        d = data[data.backbone == b]
        groups = list(dict.fromkeys(d.group))
        x = np.arange(len(groups))
        for off, short, color in ((-0.2, "literal", _GREY), (0.2, "best", _OURS)):
            v = d[d.reading == short].set_index("group")["change %"].reindex(groups)
            if v.notna().any():
                ax.bar(x + off, v, 0.4, color=color, label="literal" if short == "literal" else "best reading")
        ax.axhline(0, color="k", lw=0.7)
        ax.set(xticks=x, xticklabels=groups, ylabel="test N@10 change (%)", title=f"against {b} alone, per group")
        ax.tick_params(axis="x", labelsize=8, rotation=45)
        ax.grid(axis="y", alpha=0.3)
        if len(d):
            ax.legend(fontsize=8)
    return fig


def readings_seeds_figure(records: list[dict], metric: str = "ndcg@10") -> Figure:
    """Per backbone: every seed's test ``metric`` (dots) and their mean (bar) for the backbone, the literal and the
    chosen reading."""
    df = records_frame(records)
    backbones = [b for b in MODEL_OF if b in set(df.label)]
    fig, axes = _figure(4.2 * max(len(backbones), 1), 3.0, max(len(backbones), 1), sharey=True)
    for ax, b in zip(axes, backbones):
        labels = [b, literal_label(MODEL_OF[b]), literal_label(MODEL_OF[b]) + BEST]
        for i, lab in enumerate(labels):
            v = df[df.label == lab][metric].to_numpy()
            if len(v):
                ax.bar(i, v.mean(), 0.6, color=_GREY if i == 0 else _OURS, alpha=0.5 if i == 0 else 0.35 + 0.3 * i)
                ax.plot(np.full(len(v), i), v, "o", color="k", ms=4)
        ax.set(xticks=range(3), xticklabels=[b, "literal", "best"], title=f"DiffuReason on {b}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"test {SHORT[metric]} (dots: seeds)")
    return fig


def readings_seeds_table(records: list[dict], dataset: str) -> Table:
    """One row per run: model (the chosen reading as ``... (best)``), reading, seed, test R@5/10 and N@5/10, best
    and last epoch, training minutes."""
    rows = []
    for r in sorted(records, key=lambda r: (r["label"], r["config"]["seed"])):
        t, tm = r["metrics"]["test"], r["timing"]
        rows.append({"model": r["label"], "seed": r["config"]["seed"], **{SHORT[k]: t[k] for k in METRICS},
                     "best epoch": tm["best_epoch"], "epochs": tm["epochs"], "train min": tm["train_seconds"] / 60,
                     "devices": devices_text(r), "mixed devices": mixed_devices(r),
                     "stopped at cap": stopped_at_cap(r), "run_id": r["run_id"]})
    data = pd.DataFrame(rows)
    shown = data[["model", "seed"]].assign(
        **{k: data[k].map(_num) for k in SHORT.values()},
        **{"best / epochs": [_epochs(b, e, c) for b, e, c in zip(data["best epoch"], data.epochs,
                                                                 data["stopped at cap"])],
           "train min": [_minutes(v, m) for v, m in zip(data["train min"], data["mixed devices"])]})
    return Table(shown, data, f"readings_seeds_{dataset}", _note_marks(
        "Test metrics; results/main/ (backbones, literal) and results/readings/ (the chosen reading).", data))


def readings_paired_table(compared: pd.DataFrame, dataset: str = "beauty", wide: bool = False) -> Table:
    """:func:`drlib.readings.comparison` as the page shows it: per comparison and metric the relative difference with
    its 95% interval over seeds, the per-user bootstrap interval of the difference and its p-value. ``wide`` (the
    terminal's ``readings --compare``) adds the seeds compared and both means, which the page leaves to the CSV."""
    c = compared[compared.dataset == dataset] if len(compared) else compared
    if not len(c):
        shown = pd.DataFrame({"comparison": [], "metric": [], "relative (seeds 95%)": [], "users 95%": [], "p": []})
        return Table(shown, shown, f"readings_paired_{dataset}")
    extra = {"seeds": list(c["seed list"]), "base": c.base.map(_num), "new": c.new.map(_num)} if wide else {}
    shown = pd.DataFrame({
        "comparison": c.model + " vs " + c.against, "metric": c.metric.map(SHORT), **extra,
        "relative (seeds 95%)": [_rel_ci(r) for _, r in c.iterrows()],
        "users 95%": [_users_ci(r.get("user ci_low"), r.get("user ci_high")) for _, r in c.iterrows()],
        "p": [_p(r.get("user p")) for _, r in c.iterrows()]})
    return Table(shown, c, f"readings_paired_{dataset}", "Seeds: t over the seeds' paired differences; users: paired "
                 "bootstrap over test users (seeds averaged per user).")
