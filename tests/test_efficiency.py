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
    # the rewards score the catalogue at least once per user (the screen's short list, models.rewards)
    assert t1["train_gflop_per_step"] - t0["train_gflop_per_step"] >= out_layer / 1e9 * 0.99
    assert t0["eval_gflop_per_user"] * 1e9 >= 2 * d * n_items * 0.99
    table = relative_table(recs, "SASRec")
    assert table.train_arith_x.iloc[0] == 1.0 and table.train_arith_x.iloc[1] > 1.0


def test_the_rewards_score_the_catalogue_once_per_user_plus_the_samples_the_screen_leaves():
    from torch.utils.flop_counter import FlopCounterMode

    from drlib.models.rewards import _screened_out, latent_rewards
    g = torch.Generator().manual_seed(0)
    B, G, d, N, m = 16, 8, 32, 301, 32
    items = torch.randn(N, d, generator=g)
    targets = torch.randint(1, N, (B,), generator=g)
    z = torch.randn(B, G, d, generator=g)
    z[:4] = 3 * items[targets[:4]][:, None] + 0.1 * torch.randn(4, G, d, generator=g)   # 4 users' samples hit
    counted = []
    for cand in (0, m):
        with FlopCounterMode(display=False) as fc:
            latent_rewards(z, items, targets, "hit@1", candidates=cand)
        counted.append(fc.get_total_flops())
    full_rows = int((~_screened_out(z, items[1:].t(), targets - 1, 1, m)).sum())
    assert 4 * G <= full_rows < B * G                                        # the hits are scored in full
    assert counted[0] == 2 * B * G * d * (N - 1)                              # no screen: G scorings per user
    assert counted[1] == 2 * d * (N - 1) * (B + full_rows) + 2 * B * G * m * d
    assert counted[1] < counted[0] / 2
