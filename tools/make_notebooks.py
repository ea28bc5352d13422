"""Writes notebooks/03..08 (and rewrites 02) from the cell sources below. Run: python tools/make_notebooks.py

The notebooks are the committed artefacts; this script only keeps their source easy to review.
"""
import nbformat as nbf
from pathlib import Path

NB = Path(__file__).resolve().parents[1] / "notebooks"


def write(name, cells):
    nb = nbf.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    out = []
    for i, (kind, src, *tags) in enumerate(cells):
        c = nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
        c.id = f"{name[:2]}-cell-{i}"          # stable ids: regenerating gives no spurious diff
        if tags:
            c.metadata["tags"] = tags[0]
        out.append(c)
    nb.cells = out
    nbf.validator.normalize(nb)
    nbf.write(nb, NB / f"{name}.ipynb")


write("02_main_table", [
    ("md", "# Main results (Table 2)\n\nOur stored test results (mean and standard deviation over seeds) beside the paper's Table 2, "
           "and DiffuReason-S against its SASRec backbone. Model selection used validation NDCG@10 only; "
           "runs missing from `results/` are trained only when `train_missing` is true (the book build only reads)."),
    ("code", "profile = 'cpu'\ndatasets = ['beauty', 'instruments']\nmodels = ['sasrec', 'rearec-erl', 'rearec-prl', 'lares', 'diffureason-s', 'hstu', 'diffureason-h', 'tiger', 'diffureason-t']\n"
             "seeds = [0, 1, 2]\noverrides = []\ntrain_missing = False", ["parameters"]),
    ("code", "import pandas as pd\nimport matplotlib.pyplot as plt\n"
             "from drlib.experiments import collect, main_table_configs\n"
             "from drlib.report import compare_with_paper, improvement, summary\n\n"
             "from drlib.config import apply_overrides\n"
             "cfgs = [apply_overrides(c, overrides) for c in main_table_configs(datasets, models, profile, seeds)]\n"
             "records, missing = collect(cfgs, train_missing=train_missing)\n"
             "gone = {}\nfor c in missing:\n    gone.setdefault(f'{c.data.dataset} {c.label}', []).append(c.seed)\n"
             "print(f'{len(records)} stored runs; missing (seeds): ' + ('; '.join(f'{k} {v}' for k, v in gone.items()) or 'none'))\n"
             "pd.set_option('display.float_format', '{:.4f}'.format)\nsummary(records)"),
    ("md", "## Beside the paper\n\n`ours - paper` is in absolute metric units. The paper trained Table 5's full-size models "
           "for up to 300 epochs on a GPU; our `cpu` profile is smaller (see the reproduction notes)."),
    ("code", "table = compare_with_paper('main', profile)\n"
             "table = table[table.dataset.isin(datasets)] if len(table) else table\n"
             "table.pivot_table(index=['dataset', 'model', 'seeds'], columns='metric', values=['ours (mean)', 'paper']) if len(table) else table"),
    ("md", "## Our backbones beside the best public implementations\n\nOn Beauty, our SASRec and HSTU (mean over "
           "the stored seeds) beside the best public numbers on the same split, each with its protocol; only masked "
           "numbers with histories of 20 are strictly comparable with ours (`drlib.report.PUBLIC_BEAUTY`)."),
    ("code", "from drlib.report import backbones_vs_public\n"
             "bb = backbones_vs_public([r for r in records if r['label'] in ('SASRec', 'HSTU')])\n"
             "bb[['ours', 'public', 'public R@10', 'public N@10', 'ours R@10', 'ours N@10', 'seeds', 'protocol']] "
             "if 'beauty' in datasets else 'Beauty is not among the datasets of this page'"),
    ("md", "## DiffuReason against its backbone\n\nRelative improvement of the means, as the paper's `Improv.` column, and the spread of the per-seed paired differences, for each backbone with stored runs of both."),
    ("code", "pairs = [('SASRec', 'DiffuReason-S'), ('HSTU', 'DiffuReason-H'), ('TIGER', 'DiffuReason-T')]\n"
             "parts = [improvement(records, a, b).assign(backbone=a).rename(columns={a: 'backbone mean', b: 'DiffuReason mean'})\n"
             "         for a, b in pairs]\n"
             "parts = [p for p in parts if len(p)]\n"
             "pd.concat(parts, ignore_index=True) if parts else 'no backbone with both runs stored'"),
    ("code", "shown = [d for d in datasets if any(r['config']['dataset'] == d for r in records)]\n"
             "fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(7 * max(1, len(shown)), 3.4), squeeze=False)\n"
             "for ax, d in zip(axes[0], shown):\n"
             "    for r in (r for r in records if r['config']['dataset'] == d):\n"
             "        h = pd.DataFrame(r['history'])\n"
             "        ax.plot(h['epoch'], h['ndcg@10'], label=f\"{r['label']} seed {r['config']['seed']}\")\n"
             "    ax.set(xlabel='epoch', ylabel='validation NDCG@10', title=f'Training curves on {d} (validation)')\n"
             "    ax.legend(fontsize=7, ncol=2)\nplt.tight_layout()"),
])

write("03_ablations", [
    ("md", "# Ablations (Table 3)\n\nEvery row of the paper's Table 3 is a set of typed changes of a DiffuReason model's module settings "
           "(`drlib.diffureason.ablations.ABLATIONS`). The paper ran them on HSTU (its Table 3 full-model row is DiffuReason-H's "
           "Table 2 entry); we run them on our SASRec backbone (DiffuReason-S) and on HSTU (DiffuReason-H), with the seeds listed "
           "per model below. Rows without a stored run are counted as missing; "
           "`python -m drlib train --model diffureason-h --seed 1 --ablation 'w/o RL'` trains one."),
    ("code", "dataset = 'beauty'\nprofile = 'cpu'\nseeds_per_model = {'diffureason-s': [0], 'diffureason-h': [1]}\n"
             "rows = None\noverrides = []\ntrain_missing = False", ["parameters"]),
    ("code", "import pandas as pd\nfrom drlib.config import apply_overrides\n"
             "from drlib.diffureason.ablations import ABLATIONS, describe\nfrom drlib.experiments import ablation_configs, collect\n"
             "from drlib.report import ablation_table\n\n"
             "cfgs = [apply_overrides(c, overrides) for m, seeds in seeds_per_model.items()\n"
             "        for c in ablation_configs(dataset, profile, seeds, model=m, rows=rows)]\n"
             "records, missing = collect(cfgs, train_missing=train_missing)\n"
             "for m in seeds_per_model:\n"
             "    gone = sorted({c.label for c in missing if c.model_name == m})\n"
             "    print(f'{m}: missing rows:', gone or 'none')\n"
             "pd.set_option('display.float_format', '{:.4f}'.format)\n"
             "table = ablation_table(records)\n"
             "if len(table):\n"
             "    table.insert(3, 'overrides', table.row.map(lambda r: describe(r) or '(full model)'))\n"
             "table"),
    ("md", "Each bar is a row's change in test NDCG@10 against the full model of the same backbone and seeds; the paper's "
           "change (its Table 3, HSTU) is drawn beside ours for the HSTU backbone."),
    ("code", "import matplotlib.pyplot as plt\n"
             "if len(table):\n"
             "    parts = [(bb, g[g.row != 'DiffuReason']) for bb, g in table.groupby('backbone')]\n"
             "    parts = [(bb, g) for bb, g in parts if len(g)]\n"
             "    fig, axes = plt.subplots(1, max(1, len(parts)), figsize=(6 * max(1, len(parts)), 0.45 * len(ABLATIONS) + 1.2),\n"
             "                             squeeze=False)\n"
             "    for ax, (bb, g) in zip(axes[0], parts):\n"
             "        y = range(len(g))\n"
             "        ax.barh([i + 0.2 for i in y], g['vs full % (N@10)'], 0.4, label='ours')\n"
             "        if g['paper vs full % (N@10)'].notna().any():\n"
             "            ax.barh([i - 0.2 for i in y], g['paper vs full % (N@10)'], 0.4, label='paper (Table 3)', color='C7')\n"
             "        ax.axvline(0, color='k', lw=0.8)\n"
             "        ax.set(yticks=list(y), yticklabels=g.row, xlabel='test NDCG@10 vs full model (%)',\n"
             "               title=f'{bb} backbone, seed(s) {\", \".join(sorted(set(g.seeds)))}')\n"
             "        ax.invert_yaxis(); ax.legend(fontsize=8)\n"
             "    plt.tight_layout()"),
])

write("04_efficiency", [
    ("md", "# Efficiency (Table 6, Fig. 2)\n\nTraining milliseconds per batch and total test inference time, measured back to back "
           "on the same batches in one process (`drlib.efficiency.benchmark`), for the backbone alone and for DiffuReason-S "
           "with R = 1..5 thinking steps and G = 2..16 policy samples. The paper measured HSTU on a GPU; we measure our SASRec "
           "backbone on the machine named in each record."),
    ("code", "dataset = 'beauty'\nprofile = 'cpu'\nn_batches = 30\nwarmup = 5\noverrides = []\nmeasure_missing = False", ["parameters"]),
    ("code", "import json\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
             "from drlib.efficiency import record_path, benchmark, relative_table, table6_configs\n\n"
             "recs = []\nfor cfg in table6_configs(dataset, profile, overrides=overrides):\n"
             "    p = record_path(cfg, n_batches)\n"
             "    if p.exists() or measure_missing:\n"
             "        recs.append(benchmark(cfg, n_batches, warmup))\n"
             "table = relative_table(recs, recs[0]['label'] if recs else '')\n"
             "print(f'{len(recs)} measurements; device: {sorted({r[\"env\"][\"device_name\"] for r in recs})}')\n"
             "pd.set_option('display.float_format', '{:.2f}'.format)\ntable"),
    ("code", "if len(table) > 1:\n"
             "    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))\n"
             "    for ax, prefix, name in ((axes[0], 'R=', 'reasoning steps R (G = 8)'), (axes[1], ', G=', 'policy samples G (R = 3)')):\n"
             "        sub = table[table.label.str.contains('R=')]\n"
             "        sub = sub[sub.label.str.endswith('G=8')] if prefix == 'R=' else sub[sub.label.str.startswith('R=3')]\n"
             "        x = [l.split(prefix)[1].split(',')[0] for l in sub.label]\n"
             "        ax.bar([i - 0.2 for i in range(len(x))], sub.train_x, 0.4, label='training time / batch')\n"
             "        ax.bar([i + 0.2 for i in range(len(x))], sub.inference_x, 0.4, label='test inference time')\n"
             "        ax.axhline(1, color='k', lw=0.8)\n"
             "        ax.set(xticks=range(len(x)), xticklabels=x, xlabel=name, ylabel='x backbone')\n"
             "    axes[0].legend(fontsize=8)\n    plt.tight_layout()"),
    ("md", "The paper's Table 6 (HSTU on Beauty) reports 52.55 ms vs 22.98 ms per batch (x2.29) and 24.08 s vs 21.81 s "
           "of inference (x1.10) at R = 3, G = 8."),    ("md", "## Our SASRec against RecBole's, time to accuracy\n\n`benchmarks/recbole_sasrec.py` trains RecBole 1.2.1's "
           "SASRec (its defaults: d 64, dropout 0.5, lr 1e-3, CE) and ours (`cpu` profile) one after the other in one process "
           "on the same machine and the same leave-one-out split of Beauty, and scores both with drlib's evaluator (full "
           "ranking, history masked) after every epoch. The curves show validation NDCG@10 against the cumulative seconds "
           "spent in training batches; the dashed line is RecBole's best validation score. Rerun it with its own "
           "environment: `python3 benchmarks/recbole_sasrec.py --setup`, then `python3 benchmarks/recbole_sasrec.py "
           "--seed 0 --threads 1` (see `benchmarks/README.md`)."),
    ("code", "from drlib.report import benchmark_curves, benchmark_records, benchmark_summary\n"
             "bench = benchmark_records()\n"
             "if not bench:\n"
             "    print('no RecBole benchmark stored yet (results/benchmarks/)')\n"
             "for rec in bench:\n"
             "    cur, tt = benchmark_curves(rec), rec.get('time_to_target') or {}\n"
             "    fig, ax = plt.subplots(figsize=(7, 3.4))\n"
             "    for name, g in cur.groupby('model'):\n"
             "        ax.plot(g.train_seconds_cum / 60, g['ndcg@10'], marker='.', label=name)\n"
             "    if tt:\n"
             "        ax.axhline(tt['target'], ls='--', color='grey', lw=0.8)\n"
             "    ax.set(xlabel='training minutes (cumulative)', ylabel='validation NDCG@10',\n"
             "           title=f\"{rec['label']}\\n{rec['env']['device_name']}\")\n"
             "    ax.legend(fontsize=8); plt.tight_layout(); plt.show()\n"
             "    r = (tt.get('train_seconds') or {}).get('ratio_recbole_over_drlib')\n"
             "    print(f'time to RecBole\\'s best validation NDCG@10: ours is {r:.1f}x faster' if r else 'ratio: n/a')\n"
             "    display(benchmark_summary(rec))"),
])

write("05_sensitivity", [
    ("md", "# Sensitivity (Fig. 3 and the quality side of Fig. 2)\n\nTest and validation NDCG@10 as one setting varies with the "
           "others at their defaults: the loss weights alpha (L_diff) and beta (L_align), the reasoning steps R and the policy "
           "samples G, for one DiffuReason model (`model`). A setting whose config matches a run stored for another artifact "
           "(R = 1 is Table 3's w/o CoT, beta = 0 its w/o RL) reuses that run. Settings without a stored run are listed as missing. "
           "The paper gives numbers for R and G only, on HSTU (its Table 6); they are drawn, in grey on the right axis, "
           "when `model` is DiffuReason-H."),
    ("code", "dataset = 'beauty'\nprofile = 'cpu'\nmodel = 'diffureason-s'\nseed = 0\nvalues = None\noverrides = []\n"
             "train_missing = False", ["parameters"]),
    ("code", "import pandas as pd\nimport matplotlib.pyplot as plt\nfrom drlib.config import apply_overrides\n"
             "from drlib.experiments import collect, sensitivity_configs\nfrom drlib.report import BACKBONE_OF, PAPER_TABLE6\n"
             "from drlib.results import records_frame\n\n"
             "grid = sensitivity_configs(dataset, profile, seed, model=model, **(values or {}))\n"
             "frames, missing = [], []\n"
             "for field, cfgs in grid.items():\n"
             "    recs, miss = collect([apply_overrides(c, overrides) for c in cfgs], train_missing=train_missing)\n"
             "    missing += [c.label for c in miss]\n"
             "    if recs:\n"
             "        f = records_frame(recs)\n"
             "        f['valid ndcg@10'] = records_frame(recs, 'valid')['ndcg@10']\n"
             "        f['field'], f['value'] = field, [float(l.split('=')[1]) for l in f.label]\n"
             "        frames.append(f)\n"
             "df = pd.concat(frames) if frames else pd.DataFrame()\n"
             "print(f'{model}, seed {seed}; missing:', missing or 'none')\n"
             "df[['field', 'value', 'recall@10', 'ndcg@10', 'valid ndcg@10']] if len(df) else df"),
    ("code", "paper = PAPER_TABLE6[PAPER_TABLE6.dataset == dataset] if BACKBONE_OF.get(model) == 'HSTU' else PAPER_TABLE6.iloc[:0]\n"
             "def paper_curve(field):\n"
             "    other, fixed = ('group_size', 8) if field == 'reasoning_steps' else ('reasoning_steps', 3)\n"
             "    if field not in ('reasoning_steps', 'group_size') or paper.empty:\n"
             "        return None\n"
             "    return paper[paper[other] == fixed].sort_values(field)\n"
             "if len(df):\n"
             "    fields = list(dict.fromkeys(df.field))\n"
             "    fig, axes = plt.subplots(1, len(fields), figsize=(3.4 * len(fields), 3), squeeze=False)\n"
             "    for ax, f in zip(axes[0], fields):\n"
             "        s = df[df.field == f].sort_values('value')\n"
             "        ax.plot(s.value, s['ndcg@10'], 'o-', label='test')\n"
             "        ax.plot(s.value, s['valid ndcg@10'], 's--', label='valid')\n"
             "        ax.set(xlabel=f, ylabel='NDCG@10 (ours)')\n"
             "        pc = paper_curve(f)\n"
             "        if pc is not None:\n"
             "            ax2 = ax.twinx()\n"
             "            ax2.plot(pc[f], pc['ndcg@10'], 'd:', color='0.5', label='paper test (Table 6)')\n"
             "            ax2.tick_params(axis='y', colors='0.5')\n"
             "            ax2.legend(fontsize=7, loc='upper left', framealpha=0.6)\n"
             "    axes[0][0].legend(fontsize=8)\n    plt.tight_layout()"),
])

write("06_trajectories", [
    ("md", "# Reasoning trajectories (Fig. 4)\n\nFor every test user of a trained DiffuReason model (`model`): the rank of the target "
           "item when the catalogue is scored with each thinking token tau_1..tau_R and with the diffusion output, and the mean "
           "cosine similarity between these representations. Each stage is decoded as the evaluation decodes the final latent: a "
           "dot product with the item table on SASRec, constrained beam search (width 20) on the Semantic-ID backbones, where a "
           "target outside the beam ranks last (so there the median rank is the catalogue size whenever most targets fall outside the "
           "beam, and the Recall and NDCG columns are the ones to read). Computed by `drlib.probes.probe_run` from the run's kept weights and stored "
           "in `results/probes/`."),
    ("code", "dataset = 'beauty'\nprofile = 'cpu'\nseeds = [0]\nmodel = 'diffureason-s'\noverrides = []\ntrain_missing = False", ["parameters"]),
    ("code", "import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\nimport seaborn as sns\n"
             "from drlib.registry import make_config\nfrom drlib.experiments import collect\nfrom drlib.probes import probe_run\n\n"
             "cfgs = [make_config(model, dataset, profile, s, overrides) for s in seeds]\n"
             "collect(cfgs, train_missing=train_missing)\n"
             "probes = [p for p in (probe_run(c) for c in cfgs) if p is not None]\n"
             "print(f'{len(probes)} probe records')\n"
             "pd.set_option('display.float_format', '{:.4f}'.format)\n"
             "pd.DataFrame([{'seed': p['config']['seed'], 'stage': s, **m, 'median rank': p['median_rank'][s]} "
             "for p in probes for s, m in p['stage_metrics'].items()])"),
    ("code", "for p in probes:\n"
             "    names, ranks = p['stages'], np.array(p['sample_ranks']) + 1\n"
             "    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))\n"
             "    for row in ranks[:60]:\n"
             "        axes[0].plot(names, row, color='C0', alpha=0.15)\n"
             "    axes[0].plot(names, np.median(ranks, 0), 'k-o', label='median of 300 sampled users')\n"
             "    axes[0].set(yscale='log', ylabel='target rank (1 = top)', title='rank along the trajectory')\n"
             "    axes[0].invert_yaxis(); axes[0].legend(fontsize=8)\n"
             "    sns.heatmap(np.array(p['similarity']), annot=True, fmt='.2f', xticklabels=names, yticklabels=names, "
             "cmap='viridis', ax=axes[1])\n"
             "    axes[1].set_title(f\"mean cosine similarity (seed {p['config']['seed']})\")\n"
             "    plt.tight_layout()"),
])

write("07_sparsity_groups", [
    ("md", "# Sparsity groups (Fig. 5, Fig. 7)\n\nTest NDCG@10 of a backbone (`base`) and its DiffuReason model (`model`) in four "
           "user groups by history length (UG-0 shortest, equal-sized) and four item groups by target popularity (IG-0 rarest), "
           "with the DiffuReason model's relative change. From the probe records of the main-table runs."),
    ("code", "dataset = 'beauty'\nprofile = 'cpu'\nseeds = [0]\nbase = 'sasrec'\nmodel = 'diffureason-s'\nmetric = 'ndcg@10'\n"
             "overrides = []\ntrain_missing = False", ["parameters"]),
    ("code", "import pandas as pd\nimport matplotlib.pyplot as plt\nfrom drlib.registry import make_config\n"
             "from drlib.experiments import collect\nfrom drlib.registry import get_model_entry\nfrom drlib.probes import probe_run\n\n"
             "frames = []\nfor name in (base, model):\n"
             "    cfgs = [make_config(name, dataset, profile, s, overrides) for s in seeds]\n"
             "    collect(cfgs, train_missing=train_missing)\n"
             "    for p in filter(None, map(probe_run, cfgs)):\n"
             "        g = pd.DataFrame(p['groups'])\n"
             "        g = g[g.stage == p['stages'][-1]].assign(label=p['label'], seed=p['config']['seed'])\n"
             "        frames.append(g)\n"
             "groups = pd.concat(frames) if frames else pd.DataFrame()\n"
             "table = groups.groupby(['grouping', 'group', 'label'])[metric].mean().unstack('label') if len(groups) else groups\n"
             "table"),
    ("code", "labels = list(table.columns) if len(table) else []\n"
             "if len(labels) == 2:\n"
             "    b, m = get_model_entry(base).label, get_model_entry(model).label\n"
             "    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))\n"
             "    for ax, grouping in zip(axes, ('user', 'item')):\n"
             "        t = table.loc[grouping]\n"
             "        x = range(len(t))\n"
             "        ax.bar([i - 0.2 for i in x], t[b], 0.4, label=b)\n"
             "        ax.bar([i + 0.2 for i in x], t[m], 0.4, label=m)\n"
             "        ax.set(xticks=list(x), xticklabels=t.index, ylabel=f'test {metric}')\n"
             "        ax2 = ax.twinx()\n"
             "        ax2.plot(list(x), 100 * (t[m] / t[b] - 1), 'k-o')\n"
             "        ax2.set_ylabel('improvement %')\n"
             "    axes[0].legend(fontsize=8)\n    plt.tight_layout()\n"
             "else:\n    print('need probe records of both models; run the main table with train_missing=True')"),
])

write("08_explorer", [
    ("md", "# Trajectory explorer\n\nOne test user at a time: the history the model reads, the target item, the target's rank "
           "and the top-10 items when the catalogue is scored with each thinking token tau_1..tau_R and with the diffusion "
           "output mu, the cosine similarity of these representations, and the G policy samples z_i = mu + sigma * eps_i "
           "(Eq. 6) around the anchor mu with the target item's embedding, projected on their first two principal axes. "
           "Ranks are 1-based with the user's history masked, as in the evaluation. Computed by `drlib.explorer` from the "
           "kept weights of a trained run (`runs/`, not committed)."),
    ("code", "dataset = 'beauty'\nprofile = 'cpu'\nseed = 0\nmodel = 'diffureason-s'\noverrides = []\n"
             "train_missing = False\nlive = False\nuser_index = 0\nn_offline = 8", ["parameters"]),
    ("code", "import matplotlib.pyplot as plt\nimport ipywidgets as widgets\nfrom IPython.display import HTML, display\n"
             "from drlib.registry import make_config\nfrom drlib.experiments import collect\n"
             "from drlib.runner import get_dataset, load_trained_model\n"
             "from drlib.explorer import plot_view, user_view, view_html, view_png\n\n"
             "cfg = make_config(model, dataset, profile, seed, overrides)\n"
             "collect([cfg], train_missing=train_missing)\n"
             "m = load_trained_model(cfg)\n"
             "if m is None:\n"
             "    sets = ''.join(f' --set {o}' for o in overrides)\n"
             "    print(f'No kept weights for run {cfg.run_id} ({cfg.label} on {dataset}, profile {profile}, seed {seed}).\\n'\n"
             "          f'Train it with:  python -m drlib train --model {model} --dataset {dataset} --profile {profile} '\n"
             "          f'--seed {seed}{sets}\\nthen run this notebook again; the cells below are skipped.')\n"
             "else:\n"
             "    ds = get_dataset(cfg)\n"
             "    test = ds.test\n"
             "    user_index = min(max(user_index, 0), len(test) - 1)\n"
             "    print(f'{cfg.label} on {dataset} ({profile} profile, seed {seed}): {len(test)} test users, '\n"
             "          f'{ds.n_items} items, R = {m.cfg.reasoning_steps} thinking steps, G = {m.cfg.group_size} samples')"),
    ("md", "## One user (static figure)\n\nThe default user, drawn once for readers without a running kernel."),
    ("code", "if m is not None:\n"
             "    view = user_view(m, test, user_index)\n"
             "    display(HTML(view_html(view)))\n"
             "    plot_view(view)\n"
             "    plt.show()"),
    ("md", "## Live explorer\n\nNeeds a running kernel: open the notebook in Jupyter and set `live = True` in the parameters "
           "cell; the slider then picks any test user and the views are recomputed. It is off when the notebook is executed "
           "for the book (executing an `interactive_output` without a browser can hang nbclient, jupyter/nbclient#312); "
           "the explorer below works without a kernel."),
    ("code", "if m is not None and not live:\n"
             "    print('live explorer off (set live = True in the parameters cell, in Jupyter)')\n"
             "if m is not None and live:\n"
             "    row = widgets.IntSlider(value=user_index, min=0, max=len(test) - 1, description='test user',\n"
             "                            continuous_update=False, layout=widgets.Layout(width='60%'))\n"
             "    note = widgets.HTML(f'<i>{cfg.label} on {dataset}, profile {profile}, seed {seed}</i>')\n\n"
             "    def show(row):\n"
             "        v = user_view(m, test, row)\n"
             "        display(HTML(view_html(v)))\n"
             "        plot_view(v)\n"
             "        plt.show()\n\n"
             "    display(widgets.VBox([widgets.HBox([row, note]), widgets.interactive_output(show, {'row': row})]))"),
    ("md", "## Offline explorer\n\nThe same views precomputed for `n_offline` users from `user_index` on; choosing a user "
           "switches between them in the browser (`jslink`), so this one also works in the static book."),
    ("code", "if m is not None:\n"
             "    rows = list(range(user_index, min(user_index + n_offline, len(test))))\n"
             "    views = [user_view(m, test, r) for r in rows]\n"
             "    pick = widgets.Dropdown(options=[(f\"user {v['user']} (row {v['row']})\", i) for i, v in enumerate(views)],\n"
             "                            value=0, description='test user')\n"
             "    pages = widgets.Stack([widgets.VBox([widgets.HTML(view_html(v)), widgets.Image(value=view_png(v), format='png')])\n"
             "                           for v in views], selected_index=0)\n"
             "    widgets.jslink((pick, 'index'), (pages, 'selected_index'))\n"
             "    display(widgets.VBox([pick, pages]))"),
])
