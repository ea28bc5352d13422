"""The run sets behind the paper's artifacts point where the command line stores those runs."""
import dataclasses

from drlib import cli
from drlib.diffureason.ablations import ABLATIONS
from drlib.experiments import ablation_configs, collect, sensitivity_configs
from drlib.efficiency import relative_table
from drlib.registry import make_config
from drlib.results import module_setting, result_path, write_record

EMPTY = {"metrics": {"valid": {}, "test": {}}}


def _store(cfg):
    """A record of ``cfg`` where the CLI would store it (metrics left empty)."""
    return write_record(result_path(cfg), EMPTY, cfg=cfg, command="test")


def _cli_config(argv):
    """The RunConfig the `train` command would run for ``argv`` (first seed)."""
    return cli.configs_from_args(cli.build_parser().parse_args(argv))[0]


def test_ablation_rows_match_the_command_line():
    cfgs = {c.label: c for c in ablation_configs("beauty", "cpu", (0,))}
    assert set(cfgs) == {"DiffuReason-S"} | (set(ABLATIONS) - {"DiffuReason"})
    for row in ABLATIONS:
        if row == "DiffuReason":
            continue
        cli_cfg = _cli_config(["train", "--model", "diffureason-s", "--dataset", "beauty", "--profile", "cpu",
                               "--ablation", row])
        assert (cfgs[row].experiment, cfgs[row].config_hash) == (cli_cfg.experiment, cli_cfg.config_hash), row


def test_sensitivity_configs_match_the_command_line():
    sens = sensitivity_configs("beauty", "cpu", 0, betas=(2.0,), alphas=(0.5,))
    cli_cfg = _cli_config(["train", "--model", "diffureason-s", "--dataset", "beauty", "--profile", "cpu",
                           "--experiment", "sensitivity", "--set", "model.module.beta=2"])
    assert sens["beta"][0].config_hash == cli_cfg.config_hash and sens["beta"][0].experiment == "sensitivity"


def test_collect_finds_a_stored_ablation_row(tmp_results):
    (cfg,) = ablation_configs("synthetic", "smoke", (0,), rows=["w/o RL"])
    _store(cfg)
    found, missing = collect([cfg])
    assert [r["label"] for r in found] == ["w/o RL"] and not missing
    # the same config asked for under another artifact's folder is found by its hash, not retrained
    found, missing = collect([dataclasses.replace(cfg, experiment="main")])
    assert [r["config_hash"] for r in found] == [cfg.config_hash] and not missing
    # a different config is not
    (other,) = ablation_configs("synthetic", "smoke", (0,), rows=["with KL"])
    found, missing = collect([other])
    assert not found and missing == [other]


def test_collect_labels_a_sensitivity_run_stored_by_the_cli(tmp_results):
    """A sensitivity run trained by `python -m drlib train ... --experiment sensitivity --set ...` is stored with the
    model's label; collect returns it under the variant label the notebook parses (`beta=2.0`)."""
    (cfg,) = sensitivity_configs("synthetic", "smoke", 0, alphas=(), betas=(2.0,), reasoning_steps=(),
                                 group_sizes=())["beta"]
    stored = dataclasses.replace(cfg, variant=None)
    _store(stored)
    found, missing = collect([cfg])
    assert [r["label"] for r in found] == ["beta=2.0"] and not missing


def test_collect_reuses_a_table3_run_for_the_same_sensitivity_setting(tmp_results):
    """R = 1 in the sensitivity grid is the same config as Table 3's w/o CoT: the stored ablation run is reused."""
    (row,) = ablation_configs("synthetic", "smoke", (0,), rows=["w/o CoT"])
    _store(row)
    (r1,) = sensitivity_configs("synthetic", "smoke", 0, alphas=(), betas=(), reasoning_steps=(1,),
                                group_sizes=())["reasoning_steps"]
    assert r1.config_hash == row.config_hash and r1.experiment != row.experiment
    found, missing = collect([r1])
    assert [r["label"] for r in found] == ["reasoning_steps=1"] and not missing


def test_module_settings_come_from_the_stored_config(tmp_results):
    """Tables read R, G, alpha ... from each record's config, never from its label."""
    (cfg,) = sensitivity_configs("synthetic", "smoke", 0, alphas=(0.5,), betas=(), reasoning_steps=(),
                                 group_sizes=())["alpha"]
    rec = _store(dataclasses.replace(cfg, variant="a label that says nothing"))
    assert module_setting(rec, "alpha") == 0.5 and module_setting(rec, "group_size") == cfg.model.module.group_size
    base = _store(make_config("sasrec", "synthetic", "smoke", 0))
    assert module_setting(base, "alpha") is None
    timing = {"timing": {"train_ms_per_batch": 2.0, "eval_seconds": 1.0}}
    table = relative_table([{**base, **timing}, {**rec, **timing}], base["label"])
    assert table.R.isna().tolist() == [True, False] and table.G.iloc[1] == cfg.model.module.group_size
