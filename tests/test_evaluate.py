import math

import numpy as np
import torch

from drlib.data import make_synthetic, split_leave_one_out, table1_stats
from drlib.evaluate import compute_ranks, mask_scores, metrics_from_ranks, target_ranks


def brute_force(scores: np.ndarray, targets: np.ndarray, ks=(5, 10)):
    """Reference: sort candidates by score, ties placed *before* the target (pessimistic)."""
    out = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    for s, t in zip(scores, targets):
        others = [j for j in range(len(s)) if j != t]
        ranking = sorted(others + [t], key=lambda j: (-s[j], j == t))   # target last among equals
        pos = ranking.index(t)
        for k in ks:
            if pos < k:
                out[f"recall@{k}"] += 1
                out[f"ndcg@{k}"] += 1 / math.log2(pos + 2)
    return {k: v / len(targets) for k, v in out.items()}


def test_metrics_match_brute_force_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(300, 40)).astype(np.float32)   # many ties
    targets = rng.integers(0, 40, size=300)
    ranks = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets))
    got = metrics_from_ranks(ranks, (1, 5, 10))
    ref = brute_force(scores, targets, (1, 5, 10))
    for k in ref:
        assert abs(got[k] - ref[k]) < 1e-12, k


def test_constant_scores_get_the_worst_rank():
    ranks = target_ranks(torch.zeros(3, 50), torch.tensor([0, 7, 49]))
    assert ranks.tolist() == [49, 49, 49]


def test_compute_ranks_masks_full_history_and_is_batch_invariant():
    seqs = make_synthetic(n_users=60, n_items=40, max_len=30, seed=2)
    ds = split_leave_one_out("syn", seqs, max_len=4, n_items=40)
    torch.manual_seed(0)
    table = torch.randn(41, 41)

    def score_fn(x):                      # depends on the last item only
        return table[x[:, -1]]

    r1 = compute_ranks(score_fn, ds.test, batch_size=7, mask_history=True)
    r2 = compute_ranks(score_fn, ds.test, batch_size=1000, mask_history=True)
    assert (r1 == r2).all()
    # reference with an explicit mask of the whole (untruncated) history
    for u in range(len(ds.test)):
        s = table[ds.test.inputs[u, -1]].clone()
        s[0] = -np.inf
        s[list(seqs[u][:-1])] = -np.inf
        t = ds.test.targets[u]
        assert r1[u] == int((s >= s[t]).sum()) - 1
    r3 = compute_ranks(score_fn, ds.test, mask_history=False)
    assert (r3 >= r1).all() and (r3 > r1).any()


def test_several_rankings_per_user_rank_each_as_alone():
    """Scores ``[B, S, N]`` (one ranking per stage of a trajectory) give ranks ``[U, S]``, column ``s`` equal to
    ranking the ``s``-th scores alone, history masked the same way."""
    ds = split_leave_one_out("syn", make_synthetic(n_users=60, n_items=40, max_len=30, seed=2), max_len=4,
                             n_items=40)
    torch.manual_seed(1)
    tables = torch.randint(0, 5, (3, 41, 41)).float()          # integer scores: many ties

    def stacked(x):
        return torch.stack([t[x[:, -1]] for t in tables], 1)

    r = compute_ranks(stacked, ds.test, batch_size=9)
    assert r.shape == (60, 3)
    for s in range(3):
        assert (r[:, s] == compute_ranks(lambda x, s=s: tables[s][x[:, -1]], ds.test, batch_size=9)).all()
    assert len({tuple(r[:, s]) for s in range(3)}) == 3        # the columns differ: nothing was broadcast
    sc = torch.from_numpy(np.random.default_rng(0).integers(0, 4, size=(5, 2, 12)).astype(np.float32))
    tg = torch.tensor([0, 3, 11, 5, 5])
    assert torch.equal(target_ranks(sc, tg), torch.stack([target_ranks(sc[:, j], tg) for j in range(2)], 1))


def test_a_repeated_target_is_never_masked_out_of_its_own_ranking():
    """Repeat consumption: a user whose target is an item of their history. Masking the history hides every other
    seen item but not the target; without that rule the target would get the worst rank whatever the model."""
    seqs = [[1, 2, 3, 2, 4, 2], [5, 6, 7, 8, 9, 10]]          # user 0 comes back to item 2 for its test target
    ds = split_leave_one_out("repeats", seqs, max_len=5, n_items=10)
    assert ds.test.targets.tolist() == [2, 10]
    assert table1_stats(seqs)["repeat_share"] == 2 / 12
    assert table1_stats([[1, 2, 3], [3, 4, 5]])["repeat_share"] == 0.0
    scores = torch.arange(11, dtype=torch.float32).repeat(2, 1)          # the higher the id, the better
    masked = mask_scores(scores.clone(), ds.test, np.arange(2))
    assert masked[0, 2] == 2 and torch.isinf(masked[0, [1, 3, 4]]).all()   # the target keeps its score
    assert torch.isinf(masked[1, [5, 6, 7, 8, 9]]).all() and masked[1, 10] == 10
    ranks = compute_ranks(lambda x: torch.arange(11, dtype=torch.float32).repeat(len(x), 1), ds.test)
    assert ranks.tolist() == [6, 0]          # user 0: the unseen items 5..10 score higher; 1, 3, 4 are masked
    hidden = masked.clone()
    hidden[0, 2] = float("-inf")              # the old rule: the target masked with the rest of the history
    assert target_ranks(hidden, torch.from_numpy(ds.test.targets))[0] == 10   # the worst rank, whatever the model
