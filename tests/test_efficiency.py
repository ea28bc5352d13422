"""The efficiency records count each step's arithmetic beside its time (drlib.efficiency)."""
import torch

from drlib.efficiency import benchmark, relative_table, step_flops
from drlib.registry import make_config, with_module
from drlib.runner import build_for, get_dataset


def test_benchmark_stores_the_arithmetic_of_a_step_and_of_inference(tmp_results):
    base = make_config("sasrec", "synthetic", "smoke", experiment="efficiency")
    ours = make_config("diffureason-s", "synthetic", "smoke", experiment="efficiency")
    recs = [benchmark(c, n_batches=2, warmup=0, log=lambda s: None) for c in (base, ours)]
    B, d, n_items = base.train.batch_size, base.model.d_model, get_dataset(base).n_items
    out_layer = 2 * B * d * n_items                                          # one [B, d] x [d, N-1] matmul
    t0, t1 = recs[0]["timing"], recs[1]["timing"]
    assert t0["train_gflop_per_step"] * 1e9 >= 3 * out_layer * 0.99          # forward + two backward matmuls
    G = ours.model.module.group_size                                         # rewards: G samples scored
    assert t1["train_gflop_per_step"] - t0["train_gflop_per_step"] >= G * out_layer / 1e9 * 0.99
    assert t0["eval_gflop_per_user"] * 1e9 >= 2 * d * n_items * 0.99
    table = relative_table(recs, "SASRec")
    assert table.train_arith_x.iloc[0] == 1.0 and table.train_arith_x.iloc[1] > 1.0


def test_the_counted_arithmetic_of_the_rewards_is_exactly_G_scorings_of_the_catalogue():
    cfgs = [with_module(make_config("diffureason-s", "synthetic", "smoke"), group_size=g) for g in (2, 8)]
    ds = get_dataset(cfgs[0])
    x, y = torch.from_numpy(ds.train_inputs[:64]), torch.from_numpy(ds.train_targets[:64])
    flops = []
    for cfg in cfgs:
        torch.manual_seed(0)
        flops.append(step_flops(build_for(cfg, ds).train(), x, y))
    d = cfgs[0].model.backbone.d_model
    assert flops[1] - flops[0] == (8 - 2) * 2 * 64 * d * ds.n_items
