"""The run sets behind the paper's artifacts point where the command line stores those runs."""
import dataclasses

from drlib import cli
from drlib.diffureason.ablations import ABLATIONS
from drlib.experiments import ablation_configs, collect, sensitivity_configs
from drlib.results import save_record


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
    record = {"label": cfg.label, "config": cfg.to_dict(), "config_hash": cfg.config_hash,
              "metrics": {"valid": {}, "test": {}}}
    save_record(record, cfg)
    found, missing = collect([cfg])
    assert [r["label"] for r in found] == ["w/o RL"] and not missing
    found, missing = collect([dataclasses.replace(cfg, experiment="main")])
    assert not found and len(missing) == 1
