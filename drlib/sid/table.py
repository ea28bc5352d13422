"""Tokenization records as text: the table ``python -m drlib sids`` prints."""
from __future__ import annotations

from typing import Sequence


def stats_table(records: Sequence[dict]) -> str:
    """A plain-text table, one column per record: per-level codes used / utilisation / perplexity / distinct
    prefixes, then collisions, disambiguation and time."""
    if not records:
        return ""
    names = [r["config"]["features"] for r in records]
    levels = max(len(r["stats"]["codes_used"]) for r in records)
    rows: list[tuple[str, list[str]]] = []

    def per_level(key, fmt):
        for m in range(levels):
            rows.append((f"{key} L{m + 1}", [fmt(r["stats"][key][m]) if m < len(r["stats"][key]) else "-"
                                             for r in records]))

    rows.append(("items", [str(r["stats"]["n_items"]) for r in records]))
    per_level("codes_used", str)
    per_level("utilization", lambda v: f"{v:.3f}")
    per_level("perplexity", lambda v: f"{v:.1f}")
    per_level("distinct_prefixes", str)
    st = [r["stats"] for r in records]
    rows += [
        ("unique SIDs (M codes)", [str(s["unique_sids"]) for s in st]),
        ("collision rate", [f"{s['collision_rate']:.4f}" for s in st]),
        ("collision floor (dup. features)", [f"{s['collision_floor']:.4f}" if "collision_floor" in s else "-"
                                             for s in st]),
        ("items sharing a SID", [str(s["collided_items"]) for s in st]),
        ("shared SIDs (groups)", [str(s["collision_groups"]) for s in st]),
        ("items with disamb. token > 0", [str(s["items_disambiguated"]) for s in st]),
        ("largest group / extra vocab", [str(s["max_collision"]) for s in st]),
        ("SID length", [str(s["sid_length"]) for s in st]),
        ("RQ-VAE epochs", [str(r["train"].get("epochs", "-")) if r["train"] else "-" for r in records]),
        ("final recon MSE", [f"{r['train']['final']['recon']:.4f}" if r["train"] else "-" for r in records]),
        ("train seconds", [f"{r['timing']['train_seconds']:.0f}" for r in records]),
        ("total seconds", [f"{r['timing']['total_seconds']:.0f}" for r in records]),
    ]
    w0 = max(len(k) for k, _ in rows)
    w = [max(len(n), *(len(v[i]) for _, v in rows)) for i, n in enumerate(names)]
    lines = [" " * w0 + "  " + "  ".join(n.rjust(wi) for n, wi in zip(names, w))]
    lines += [k.ljust(w0) + "  " + "  ".join(v.rjust(wi) for v, wi in zip(vals, w)) for k, vals in rows]
    return "\n".join(lines)


__all__ = ["stats_table"]
