"""From measured transfers to ground truth: affinities, seed agreement and flat targets.

``long`` tables have one row per (source, target, budget, head_seed) with the test ``loss`` and
``metric``. The affinity of a source for a target is its relative improvement over the
random-encoder control, ``1 - loss / loss(random)`` (mean test loss over head seeds): 0 means no
better than random features, higher is better, and it is comparable across targets.

>>> import pandas as pd
>>> rows = [("a", "t", 0.5), ("b", "t", 0.8), ("random", "t", 1.0)]
>>> long = pd.DataFrame([dict(source=s, target=t, budget=10, head_seed=h, loss=l + h * 0.01, metric=0.0)
...                      for s, t, l in rows for h in (0, 1)])
>>> affinity_table(long, 10).set_index("source")["affinity"].round(3).to_dict()
{'a': 0.498, 'b': 0.199, 'random': 0.0}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from depara_core.compare.ranks import spearman
from depara_core.zoos.minitaskonomy.assets import RANDOM, parse_model_name

__all__ = ["affinity_table", "candidates", "seed_agreement", "flatness", "FLAT_SNR", "FLAT_SPEARMAN"]

FLAT_SNR = 2.0
"""A target is flat when the spread of its candidates' losses is below this many noise standard deviations..."""
FLAT_SPEARMAN = 0.5
"""...or when its source ranking agrees with itself across head seeds or across encoder seeds below this Spearman correlation."""


def affinity_table(long: pd.DataFrame, budget: int, control: str = RANDOM) -> pd.DataFrame:
    """Columns source, target, affinity, loss_mean, loss_std, metric_mean, heads for one budget."""
    d = long[long["budget"] == budget]
    if d.empty:
        raise ValueError(f"no measurements at budget {budget}")
    g = d.groupby(["source", "target"], sort=False).agg(
        loss_mean=("loss", "mean"), loss_std=("loss", "std"), metric_mean=("metric", "mean"), heads=("loss", "size")
    )
    g = g.reset_index()
    ctrl = g[g["source"] == control].set_index("target")["loss_mean"]
    if ctrl.empty:
        raise ValueError(f"the control {control!r} was not measured at budget {budget}")
    g["affinity"] = 1.0 - g["loss_mean"] / g["target"].map(ctrl)
    g["loss_std"] = g["loss_std"].fillna(0.0)
    return g[["source", "target", "affinity", "loss_mean", "loss_std", "metric_mean", "heads"]]


def candidates(sources: list[str], target: str, seed: int = 1, include_random: bool = False) -> list[str]:
    """The candidate sources of ``target`` in the ground truth: encoders of seed ``seed`` of the other tasks.

    The target's own task is never a candidate (as in taskonomy, where a target ranks the other
    tasks); the random control is one only when ``include_random``.
    """
    out = []
    for s in sources:
        task, k = parse_model_name(s)
        if s == RANDOM:
            if include_random:
                out.append(s)
        elif k == seed and task != target:
            out.append(s)
    return out


def _mean_loss(d: pd.DataFrame) -> pd.Series:
    return d.groupby("source")["loss"].mean()


def _spearman(a: pd.Series, b: pd.Series) -> float:
    common = a.index.intersection(b.index)
    if len(common) < 3:
        return float("nan")
    return float(spearman(a[common].to_numpy(), b[common].to_numpy()))


def seed_agreement(long: pd.DataFrame) -> dict:
    """Spearman agreement of source rankings per target: between head seeds, encoder seeds and budgets.

    ``head_seeds``: encoder-seed-1 candidates ranked by the loss of head seed a vs head seed b
    (averaged over pairs of head seeds). ``encoder_seeds``: the other tasks ranked through their
    seed-1 encoders vs their seed-2 encoders (mean over head seeds). ``budgets``: seed-1 candidates
    ranked at one budget vs another. Each entry has the mean over targets and the per-target values.
    """
    sources = sorted(long["source"].unique())
    targets = list(dict.fromkeys(long["target"]))
    budgets = sorted(long["budget"].unique(), reverse=True)
    heads = sorted(long["head_seed"].unique())
    enc_seeds = sorted({parse_model_name(s)[1] for s in sources if s != RANDOM})
    out: dict = {"head_seeds": {}, "encoder_seeds": {}, "budgets": {}}
    for b in budgets:
        db = long[long["budget"] == b]
        per_h, per_e = {}, {}
        for t in targets:
            dt = db[db["target"] == t]
            cands = candidates(sources, t)
            by_head = [_mean_loss(dt[dt["head_seed"] == h]).reindex(cands).dropna() for h in heads]
            pairs = [_spearman(by_head[i], by_head[j]) for i in range(len(heads)) for j in range(i + 1, len(heads))]
            if pairs:
                per_h[t] = float(np.nanmean(pairs))
            if len(enc_seeds) > 1:
                means = _mean_loss(dt)
                tasks_by_seed = []
                for k in enc_seeds[:2]:
                    sel = {parse_model_name(s)[0]: means[s] for s in candidates(sources, t, seed=k) if s in means}
                    tasks_by_seed.append(pd.Series(sel))
                per_e[t] = _spearman(*tasks_by_seed)
        out["head_seeds"][str(b)] = _summary(per_h)
        if per_e:
            out["encoder_seeds"][str(b)] = _summary(per_e)
    for i in range(len(budgets)):
        for j in range(i + 1, len(budgets)):
            per_b = {}
            for t in targets:
                cands = candidates(sources, t)
                a = _mean_loss(long[(long["budget"] == budgets[i]) & (long["target"] == t)]).reindex(cands).dropna()
                c = _mean_loss(long[(long["budget"] == budgets[j]) & (long["target"] == t)]).reindex(cands).dropna()
                per_b[t] = _spearman(a, c)
            out["budgets"][f"{budgets[i]}-vs-{budgets[j]}"] = _summary(per_b)
    return out


def _summary(per_target: dict[str, float]) -> dict:
    vals = np.array([v for v in per_target.values() if np.isfinite(v)])
    return {
        "mean": float(vals.mean()) if vals.size else float("nan"),
        "min": float(vals.min()) if vals.size else float("nan"),
        "per_target": {k: round(v, 4) for k, v in per_target.items()},
    }


def flatness(long: pd.DataFrame, budget: int, snr_threshold: float = FLAT_SNR, spearman_threshold: float = FLAT_SPEARMAN) -> dict[str, dict]:
    """Per target: signal, noise, signal-to-noise ratio, seed agreement, and whether its ground truth is flat.

    ``signal`` is the std over the seed-1 candidates of their mean test loss. ``noise`` combines
    the head-seed spread (pooled std of a mean over head seeds) and the encoder-seed spread (the
    median over candidate tasks of ``|loss(seed 1) - loss(seed 2)| / sqrt(2)``; the median, so that
    one task whose second seed trained badly does not make every target look noisy). A target is
    flat when ``signal / noise < snr_threshold`` or when its ranking agreement across head seeds or
    across encoder seeds is below ``spearman_threshold``.
    """
    d = long[long["budget"] == budget]
    sources = sorted(d["source"].unique())
    n_heads = max(d["head_seed"].nunique(), 1)
    agreement = seed_agreement(d)
    by_head = agreement["head_seeds"].get(str(budget), {}).get("per_target", {})
    by_encoder = agreement["encoder_seeds"].get(str(budget), {}).get("per_target", {})
    out = {}
    for t in dict.fromkeys(d["target"]):
        dt = d[d["target"] == t]
        cands = candidates(sources, t)
        means = _mean_loss(dt)
        signal = float(means.reindex(cands).dropna().std())
        head_var = dt[dt["source"].isin(cands)].groupby("source")["loss"].var().dropna()
        head_noise = float(np.sqrt(head_var.mean() / n_heads)) if len(head_var) else 0.0
        diffs = [abs(means[s] - means[f"{parse_model_name(s)[0]}#2"]) for s in cands if s in means.index and f"{parse_model_name(s)[0]}#2" in means.index]
        enc_noise = float(np.median(diffs) / np.sqrt(2)) if diffs else 0.0
        noise = float(np.hypot(head_noise, enc_noise))
        snr = signal / noise if noise > 0 else float("inf")
        rho_h, rho_e = by_head.get(t, float("nan")), by_encoder.get(t, float("nan"))
        low = [r for r in (rho_h, rho_e) if np.isfinite(r) and r < spearman_threshold]
        out[t] = {
            "signal": signal, "head_noise": head_noise, "encoder_noise": enc_noise, "snr": snr,
            "head_seed_spearman": rho_h, "encoder_seed_spearman": rho_e, "flat": bool(snr < snr_threshold or low),
        }  # fmt: skip
    return out
