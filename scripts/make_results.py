"""Regenerate docs/RESULTS.md (and its PNG figures) from the committed mini-taskonomy zoo.

Task transferability, for each built-in probe set and both labelled-data budgets: every label-free
method (DEPARA with λ chosen leave-one-target-out, DEPARA at the paper's λ = 1, the node and edge
terms, centred edges, RSA, linear and debiased CKA, DDS, pseudo-label LogME) and the controls
(target-agnostic prior, seed-twin ceiling, random, oracle) against measured transfer: Spearman with
95% bootstrap intervals over targets, Spearman with the prior partialled out, NDCG, P@K and R@K at
several K; paired bootstrap differences against RSA, CKA, DDS and the prior; seed-swap checks;
the fixed-λ sweep, labelled in-sample. Layer selection, on two benchmarks (mini-taskonomy sources
fine-tuned into shifted scenes; EfficientNet-Lite0/1/2 on three photo tasks): per (source, target,
budget), each method's per-layer scores against measured transfer, with the depth rules, on the
targets that beat their constant predictor.

Run: ``python scripts/make_results.py [--count 200] [--out docs]`` (graphs are cached on disk).
Every statement under "Findings" is read off a paired interval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from depara_core.cache import GraphCache
from depara_core.compare.baselines import PSEUDO_LABELS, logme_matrix
from depara_core.compare.layers import LayerScores, layer_scores
from depara_core.compare.ranks import spearman, standardised_ranks
from depara_core.compare.terms import BASELINES, SimilarityTerms
from depara_core.compare.workflows import zoo_terms
from depara_core.engine.graph import GraphOptions
from depara_core.engine.run import compute_graphs
from depara_core.evaluation.controls import depth_rule, target_agnostic_prior
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.lambda_cv import suggest_lambda
from depara_core.evaluation.ranking import RankingEvaluator, random_baseline
from depara_core.evaluation.statistics import Interval, bootstrap_ci, paired_difference
from depara_core.models.spec import OUTPUT, load_model
from depara_core.probes.registry import load_builtin
from depara_core.zoos import load_zoo

PROBE_SETS = ("scenes", "scenes-shifted", "noise", "photos")
IN_DOMAIN = "scenes"
RELEVANT = 3
KS = (1, 3, 5)
SWEEP = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0)
LABEL_FREE = ("DEPARA (λ CV)", "DEPARA λ=1", "DEPARA centred (λ CV)", "DEPARA-V", "DEPARA-E", "DEPARA-E centred",
              "RSA", "CKA", "debiased CKA", "DDS", "PL-LogME", "PL-H-score", "PL-NCE")  # fmt: skip
REFERENCES = ("RSA", "CKA", "DDS", "prior")
SUMMARY_METHODS = ("DEPARA (λ CV)", "DEPARA λ=1", "DEPARA centred (λ CV)", "RSA", "CKA", "DDS", "PL-LogME", "prior")
RESEARCH_PROBES = ("scenes", "photos")
CONSTANT_MARGIN = 0.05
"""A layer-selection target is kept when its best layer's loss is at least 5% below its constant predictor's."""


# ---- score matrices ------------------------------------------------------------------------
def label_free_matrices(terms: SimilarityTerms, ev: RankingEvaluator) -> tuple[dict[str, np.ndarray], dict[str, pd.DataFrame]]:
    """Every label-free method's score matrix; the "λ CV" ones take, for each target, the λ chosen
    on the other targets (so the held-out target's score is honest). Also the CV folds."""
    out, folds = {}, {}
    for method in ("DEPARA", "DEPARA centred"):
        sug = suggest_lambda(terms, ev, metric="spearman", method=method)
        m = terms.matrix(method, 1.0).copy()
        for row in sug.folds.itertuples():
            j = terms.names.index(row.target)
            m[:, j] = terms.matrix(method, row.lam)[:, j]
        out[f"{method} (λ CV)"] = m
        folds[method] = sug.folds
    out["DEPARA λ=1"] = terms.matrix("DEPARA", 1.0)
    for method in ("DEPARA-V", "DEPARA-E", "RSA", "CKA", *[b for b in BASELINES if b != "DEPARA centred"]):
        out[method] = terms.matrix(method)
    return {k: out[k] for k in LABEL_FREE}, folds


def seed_twin_scores(names: tuple[str, ...], budget: int) -> np.ndarray:
    """The ceiling control: measured transfer of each source's seed-2 twin used as the prediction."""
    from depara_core.zoos.minitaskonomy import ground_truth

    twin = ground_truth(budget=budget, seed=2).affinity.rename(index=lambda n: n.split("#")[0])
    return twin.reindex(index=list(names), columns=list(names)).to_numpy(dtype=float)


def swapped(terms: SimilarityTerms, mapping: dict[str, str], axis: int) -> SimilarityTerms:
    """Terms whose rows (axis 0: sources) or columns (axis 1: targets) of model ``a`` hold those of ``mapping[a]``."""
    idx = np.array([terms.names.index(mapping.get(n, n)) for n in terms.names])

    def take(m: np.ndarray | None) -> np.ndarray | None:
        return None if m is None else (m[idx] if axis == 0 else m[:, idx])

    return replace(terms, s_V=take(terms.s_V), s_E=take(terms.s_E), rsa=take(terms.rsa), cka=take(terms.cka),
                   baselines={k: take(v) for k, v in terms.baselines.items()})  # fmt: skip


# ---- evaluation ----------------------------------------------------------------------------
def evaluate_all(matrices: dict[str, np.ndarray], ev: RankingEvaluator, prior: np.ndarray) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Per method: summary row, PR points, and the per-target Spearman (for paired differences)."""
    rows, curves, per_target = [], {}, {}
    for name, m in matrices.items():
        r = ev.metrics(m, name, full=True)
        rho = r.per_target["spearman"].to_numpy()
        per_target[name] = rho
        ci = bootstrap_ci(rho)
        partial = ev.partial_per_target(m, prior)
        row = {"method": name, "Spearman": ci.mean, "95% CI": f"[{ci.lo:+.2f}, {ci.hi:+.2f}]",
               "partial ρ (prior out)": float(np.nanmean(partial)), "NDCG": r.ndcg}  # fmt: skip
        row.update({f"P@{k}": r.precision[k - 1] for k in KS if k <= ev.kmax})
        row[f"R@{KS[-1]}"] = r.recall[KS[-1] - 1]
        rows.append(row)
        curves[name] = (r.recall, r.precision)
    ks, rp, rr = random_baseline(ev.kmax, ev.relevant)
    rows.append({"method": "random (expected)", "Spearman": 0.0, "95% CI": "", "partial ρ (prior out)": 0.0, "NDCG": np.nan,
                 **{f"P@{k}": rp[k - 1] for k in KS if k <= ev.kmax}, f"R@{KS[-1]}": rr[KS[-1] - 1]})  # fmt: skip
    curves["random"] = (rr, rp)
    return pd.DataFrame(rows), curves, pd.DataFrame(per_target, index=ev.targets)


def paired_table(per_target: pd.DataFrame, methods: tuple[str, ...]) -> tuple[pd.DataFrame, dict[tuple[str, str], Interval]]:
    """Paired bootstrap differences of per-target Spearman, each method against each reference."""
    rows, cis = [], {}
    for m in methods:
        row = {"method": m}
        for ref in REFERENCES:
            if ref == m:
                row[f"− {ref}"] = ""
                continue
            d = paired_difference(per_target[m].to_numpy(), per_target[ref].to_numpy())
            cis[m, ref] = d
            row[f"− {ref}"] = d.text() + (" *" if d.excludes_zero else "")
        rows.append(row)
    return pd.DataFrame(rows), cis


def verdict(d: Interval, ref: str) -> str:
    if d.lo > 0:
        return f"beats {ref} ({d.text()})"
    if d.hi < 0:
        return f"loses to {ref} ({d.text()})"
    return f"no significant difference from {ref} ({d.text()})"


def pr_figure(curves: dict, title: str, path: Path, keep: tuple[str, ...]) -> None:
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    for name, (r, p) in curves.items():
        if name not in keep and name not in ("random", "oracle"):
            continue
        style = {"random": dict(color="grey", ls="--"), "oracle": dict(color="black", ls=":")}.get(name, {})
        ax.plot(r, p, marker="o", ms=3, label=name, **style)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.05), title=title)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def md(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".2f")


# ---- one probe set × budget ----------------------------------------------------------------
def transfer_section(terms: SimilarityTerms, budget: int, probe_name: str, out: Path) -> tuple[list[str], dict]:
    from depara_core.zoos.minitaskonomy import ground_truth

    gt = ground_truth(budget=budget)
    ev = RankingEvaluator(terms.names, gt, RELEVANT)
    prior = target_agnostic_prior(terms.names, gt)
    matrices, folds = label_free_matrices(terms, ev)
    controls = {"prior": prior, "seed twin (ceiling)": seed_twin_scores(terms.names, budget), "oracle": ev.oracle()}
    table, curves, per_target = evaluate_all({**matrices, **controls}, ev, prior)
    paired, cis = paired_table(per_target, LABEL_FREE)
    fig = out / "figures" / f"pr_{probe_name}_{budget}.png"
    pr_figure(curves, f"{probe_name} probes, {budget} labelled scenes", fig, ("DEPARA (λ CV)", "RSA", "CKA", "DDS", "PL-LogME", "prior"))
    lam_text = "; ".join(f"{m}: {f['lam'].min():g}–{f['lam'].max():g}" for m, f in folds.items())
    sweep = pd.DataFrame([{"λ": lam, **{m: float(np.mean(ev.per_target(terms.matrix(m, lam)))) for m in ("DEPARA", "DEPARA centred")}} for lam in SWEEP])
    lines = [f"### {budget} labelled scenes ({len(ev.targets)} targets, {ev.kmax} candidate sources each)", "", md(table), "",
             f"λ chosen leave-one-target-out ranged {lam_text}.", "",
             "Paired differences of per-target Spearman (95% bootstrap over targets; * = interval excludes 0):", "", md(paired), "",
             "<details><summary>Fixed-λ sweep (in-sample: λ is not chosen on held-out targets here)</summary>", "", md(sweep), "", "</details>", "",
             f"![PR curve]({fig.relative_to(out)})", ""]  # fmt: skip
    means = dict(zip(table["method"], table["Spearman"]))
    return lines, {"probes": probe_name, "budget": budget, "means": means, "cis": cis, "per_target": per_target}


def seed_swaps(terms: SimilarityTerms, budget: int) -> pd.DataFrame:
    """Mean Spearman of each label-free method with seed-1 networks, with the target networks swapped
    for their seed-2 twins, and with the seed-2 twins as sources (against their own measured transfer)."""
    from depara_core.zoos.minitaskonomy import ground_truth

    twins = {n: f"{n}#2" for n in terms.names if f"{n}#2" in terms.names}
    gt1 = ground_truth(budget=budget)
    gt2 = GroundTruth(ground_truth(budget=budget, seed=2).affinity.rename(index=lambda n: n.split("#")[0]), "seed-2 sources")
    runs = {"seed-1 networks": (terms, gt1), "seed-2 targets": (swapped(terms, twins, 1), gt1), "seed-2 sources": (swapped(terms, twins, 0), gt2)}
    cols = {}
    for label, (t, gt) in runs.items():
        ev = RankingEvaluator(t.names, gt, RELEVANT)
        mats, _ = label_free_matrices(t, ev)
        mats["prior"] = target_agnostic_prior(t.names, gt)
        cols[label] = {m: ev.metrics(v, m).spearman for m, v in mats.items()}
    return pd.DataFrame(cols).rename_axis("method").reset_index()


# ---- research: attempts to make the node term carry signal --------------------------------
def encoder_graphs(models, probes, cache: GraphCache) -> list:
    """Each model's encoder graph on ``probes`` (from the cache the terms were computed with)."""
    return [compute_graphs(m, probes, [m.spec.encoder], cache=cache)[m.spec.encoder] for m in models]


def node_rank_similarity(graphs: list) -> np.ndarray:
    """s_V with Spearman instead of cosine: per probe, the rank correlation of two models'
    attribution maps (robust to a few dominant pixels), averaged over probes."""
    r = np.stack([standardised_ranks(g.nodes.astype(np.float32), axis=1) for g in graphs])  # (models, probes, pixels), mean 0, mean square 1
    return np.einsum("apd,bpd->ab", r, r) / (r.shape[1] * r.shape[2])


LOGME_COMPONENTS = (4, 8, 32)
"""Other numbers of the target's principal components for PL-LogME (the default is 16): is the best
estimator's lead a choice of this one setting?"""


def logme_sensitivity(graphs: list, terms: SimilarityTerms) -> dict[str, np.ndarray]:
    """PL-LogME at :data:`LOGME_COMPONENTS`, after checking that these graphs give the terms' own PL-LogME at the default."""
    np.testing.assert_allclose(logme_matrix(graphs, pseudo_labels=PSEUDO_LABELS), terms.matrix("PL-LogME"), rtol=1e-5, atol=1e-8)
    return {f"PL-LogME, {k} components (sensitivity)": logme_matrix(graphs, pseudo_labels=k) for k in LOGME_COMPONENTS}


def spread_lambda(terms: SimilarityTerms) -> np.ndarray:
    """Per-target λ from unlabelled statistics: the λ that gives s_V and λ·s_E the same spread over
    the candidate sources of each target (std of s_V's column over std of s_E's)."""
    off = ~np.eye(len(terms.names), dtype=bool)
    lam = np.empty(len(terms.names))
    for j in range(len(terms.names)):
        sv, se = terms.s_V[off[:, j], j], terms.s_E[off[:, j], j]
        lam[j] = sv.std() / se.std() if se.std() > 0 else 1.0
    return lam


RANK_MEAN_SUFFIX = " + PL-LogME (rank mean)"


def rank_mean(*matrices: np.ndarray) -> np.ndarray:
    """Per target (column), the mean of the methods' standardised ranks of the sources: a label-free combination."""
    return np.mean([standardised_ranks(m, axis=0) for m in matrices], axis=0)


def research_section(terms: SimilarityTerms, node_ranks: np.ndarray, probe_name: str, more: dict[str, np.ndarray]) -> list[str]:
    """Every attempt, scored like the methods above (mean Spearman, paired differences against RSA, CKA, DDS)."""
    from depara_core.zoos.minitaskonomy import ground_truth

    lam = spread_lambda(terms)
    attempts = {
        "DEPARA λ=1 (reference)": terms.matrix("DEPARA", 1.0),
        "DEPARA-V (reference)": terms.s_V,
        "DEPARA-V rank (Spearman of maps)": node_ranks,
        "DEPARA with rank s_V, λ=1": node_ranks + terms.s_E,
        "DEPARA, per-target λ from spreads": terms.s_V + lam[None, :] * terms.s_E,
        "DEPARA λ=1 + PL-LogME (rank mean)": rank_mean(terms.matrix("DEPARA", 1.0), terms.matrix("PL-LogME")),
        "DEPARA-E centred + PL-LogME (rank mean)": rank_mean(terms.matrix("DEPARA-E centred"), terms.matrix("PL-LogME")),
        "PL-LogME (reference)": terms.matrix("PL-LogME"),
        **more,
    }
    refs = {"RSA": terms.matrix("RSA"), "CKA": terms.matrix("CKA"), "DDS": terms.matrix("DDS")}
    lines = [f"### Probes `{probe_name}`", ""]
    spread: dict[int, list[float]] = {}
    for budget in (1000, 100):
        ev = RankingEvaluator(terms.names, ground_truth(budget=budget), RELEVANT)
        per = {name: ev.per_target(m) for name, m in {**attempts, **refs}.items()}
        rows, wins = [], []
        for name in attempts:
            ci = bootstrap_ci(per[name])
            row = {"attempt": name, "Spearman": ci.mean, "95% CI": f"[{ci.lo:+.2f}, {ci.hi:+.2f}]"}
            diffs = [paired_difference(per[name], per[ref]) for ref in refs]
            for ref, d in zip(refs, diffs):
                row[f"− {ref}"] = d.text() + (" *" if d.excludes_zero else "")
            rows.append(row)
            if name in more or name == "PL-LogME (reference)":
                spread.setdefault(budget, []).append(ci.mean)
            if all(d.lo > 0 for d in diffs):
                wins.append(name)
        lines += [f"{budget} labelled scenes:", "", md(pd.DataFrame(rows)), "",
                  f"Above RSA, CKA and DDS with every paired interval above 0: {', '.join(wins) if wins else 'none'}.", ""]
    lines += [f"Per-target λ from spreads ranged {lam.min():.2g}–{lam.max():.2g} (median {np.median(lam):.2g}).", ""]
    if more:
        ranges = "; ".join(f"{min(v):.2f}–{max(v):.2f} at {b} labels" for b, v in spread.items())
        steady = all(max(v) - min(v) <= 0.1 for v in spread.values())
        verdict = "within 0.1 of each other: the estimator does not hang on this setting" if steady else "more than 0.1 apart: the setting matters"
        lines += [f"PL-LogME's mean Spearman over {min(LOGME_COMPONENTS + (PSEUDO_LABELS,))} to {max(LOGME_COMPONENTS + (PSEUDO_LABELS,))} "
                  f"principal components: {ranges}, {verdict}.", ""]
    return lines


# ---- layer selection -----------------------------------------------------------------------
def layer_selection(
    table: pd.DataFrame, specs: dict, probes, cache: GraphCache, variants: dict[str, GraphOptions] | None = None, target_outputs: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (source, target, budget): Spearman of each method's layer scores with measured transfer
    (``table``: source, target, layer, budget, loss; ``constant`` rows the trivial predictor, ``scratch``
    rows ignored), and the constant-predictor check of each target. ``specs``: models by name;
    ``variants``: other graph options, scored as "DEPARA-V <label>" and "DEPARA λ=1 <label>";
    ``target_outputs``: PL-LogME also with the target network's outputs (not its encoder) as pseudo-labels."""
    layers_only = table[~table["layer"].isin(["scratch", "constant"])]
    checks = []
    for (target, budget), g in table.groupby(["target", "budget"]):
        best = g[~g["layer"].isin(["scratch", "constant"])].groupby(["source", "layer"])["loss"].mean().min()
        const = g.loc[g["layer"] == "constant", "loss"].mean()
        checks.append({"target": target, "budget": budget, "best layer loss": best, "constant loss": const,
                       "kept": bool(np.isfinite(const) and best <= (1 - CONSTANT_MARGIN) * const)})  # fmt: skip
    checks = pd.DataFrame(checks)
    rows = []
    for (source, target), pair in layers_only.groupby(["source", "target"]):
        if source not in specs or target not in specs:
            continue
        src, tgt = load_model(specs[source]), load_model(specs[target])
        layers = list(dict.fromkeys(pair["layer"]))

        def scored(options: GraphOptions = GraphOptions(), target_layer: str = tgt.spec.encoder) -> LayerScores:
            graphs = compute_graphs(src, probes, layers, options, cache=cache)
            return layer_scores((graphs[k] for k in layers), compute_graphs(tgt, probes, [target_layer], options, cache=cache)[target_layer])

        own = scored()
        scores = {"DEPARA λ=1": own.scores(1.0), "DEPARA λ=0.25": own.scores(0.25)}
        scores.update({m: own.scores(1.0, m) for m in ("DEPARA-V", "DEPARA-E", "DEPARA-E centred", "RSA", "CKA", "debiased CKA", "DDS", "PL-LogME", "PL-H-score", "PL-NCE")})
        for m in ("DEPARA λ=1", "DEPARA-E centred"):  # research: DEPARA combined with PL-LogME, as for task transfer
            scores[m + RANK_MEAN_SUFFIX] = rank_mean(scores[m], scores["PL-LogME"])
        for label, options in (variants or {}).items():
            other = scored(options)
            scores[f"DEPARA-V {label}"], scores[f"DEPARA λ=1 {label}"] = other.scores(1.0, "DEPARA-V"), other.scores(1.0)
        if target_outputs:
            scores["PL-LogME (target outputs)"] = scored(target_layer=OUTPUT).scores(1.0, "PL-LogME")
        scores.update({f"{rule} layer": depth_rule(len(layers), rule) for rule in ("shallowest", "deepest")})
        for budget, b in pair.groupby("budget"):
            loss = b.groupby("layer")["loss"].mean().reindex(layers).to_numpy()
            best = int(np.argmin(loss))
            kept = bool(checks.loc[(checks["target"] == target) & (checks["budget"] == budget), "kept"].iloc[0])
            for method, s in scores.items():
                pick = int(np.argmax(s))
                rows.append({"source": source, "target": target, "budget": budget, "kept": kept, "method": method,
                             "Spearman": spearman(s, -loss), "best picked": pick == best, "regret": loss[pick] / loss[best] - 1})  # fmt: skip
    return pd.DataFrame(rows), checks


def shifted_benchmark(count: int, cache: GraphCache) -> dict | None:
    """Layer selection of mini-taskonomy sources for shifted-scene targets (fine-tuned from each layer)."""
    from depara_core.zoos.minitaskonomy import layer_ground_truth
    from depara_core.zoos.minitaskonomy.assets import ASSET_DIR

    try:
        table = layer_ground_truth()
    except Exception as exc:  # the layer-transfer build is optional
        print(f"layer selection (shifted scenes) skipped: {exc}")
        return None
    zoo = load_zoo("mini-taskonomy-shifted")
    rows, checks = layer_selection(table, {s.name: s for s in zoo.specs}, load_builtin("scenes-shifted", count), cache)
    manifest = json.loads((ASSET_DIR / "shifted" / "manifest.json").read_text())
    lt = manifest["layer_transfer"]
    stopping = lt.get("stopping") or f"{lt['steps']} fine-tuning steps per run"
    protocol = (f"Protocol, as built (`assets/minitaskonomy/shifted/manifest.json`): {len(manifest['sources'])} sources "
                f"({', '.join(manifest['sources'])}), targets {', '.join(manifest['targets'])}; {stopping}; "
                f"{len(lt['seeds'])} seeds per (source, layer, budget).")  # fmt: skip
    intro = ("For each layer k of a source, layers up to k are frozen and the rest retrained on the target "
             "(`assets/minitaskonomy/layer_transfer.csv`). Scores compare each source layer's graph with the target "
             "model's encoder graph on `scenes-shifted` probes.")  # fmt: skip
    return {"label": "shifted scenes", "title": "Layer selection (shifted scene domain)", "intro": intro, "protocol": protocol, "rows": rows, "checks": checks}


def photo_benchmark(count: int, cache: GraphCache) -> dict | None:
    """Layer selection of EfficientNet-Lite0/1/2 for the photo tasks (a linear head on each frozen layer)."""
    from depara_core.zoos.photo_tasks import TASKS, layer_ground_truth, read_manifest

    zoo = load_zoo("efficientnet-lite-photo-tasks")
    if not zoo.available:
        print(f"layer selection (photos) skipped: {zoo.unavailable_reason}")
        return None
    pixels = {"pixels": GraphOptions(input_space="pixels")}  # EfficientNet's input zero is grey, the targets' black
    rows, checks = layer_selection(layer_ground_truth(), {s.name: s for s in zoo.specs}, load_builtin("photos", count), cache, pixels, target_outputs=True)
    manifest = read_manifest()
    p = manifest["protocol"]
    targets = ", ".join(f"{m['name']} (test accuracy {m['test_accuracy']:.2f})" for m in manifest["models"])
    protocol = (f"Protocol, as built (`assets/photo_tasks/manifest.json`, a reduced protocol): images: {p['images']}; "
                f"{p['counts']['train']} labelled, {p['counts']['val']} validation and {p['counts']['test']} test images; "
                f"transfer: {p['transfer']}; {p['seeds_at_small_budgets']} disjoint label draws below {max(p['budgets'])} labels; "
                f"{p['reduced']}. Target networks: {p['targets']} — {targets}.")  # fmt: skip
    intro = ("EfficientNet-Lite0/1/2 (ImageNet weights) as sources for three tasks on natural photos: "
             + "; ".join(f"`{t.name}`: {t.description}" for t in TASKS.values())
             + ". For each layer of a source a linear head is fitted on that frozen layer's output "
             "(`assets/photo_tasks/layer_transfer.csv`). Scores compare each source layer's graph with the target "
             "network's encoder graph on `photos` probes. The sources' input is normalised around grey, the targets' is not, so "
             "Gradient×Input in each model's own input space has different baselines; *pixels*: the same graphs with "
             "Gradient×Input taken in the probes' pixel space (`GraphOptions(input_space=\"pixels\")`, a black baseline for all). "
             "*PL-LogME (target outputs)*: the pseudo-labels are the principal components of the target network's class outputs "
             "instead of its encoder's features (the targets are classifiers).")  # fmt: skip
    return {"label": "photos", "title": "Layer selection (EfficientNet-Lite on photo tasks)", "intro": intro, "protocol": protocol, "rows": rows, "checks": checks}


def layer_lines(bench: dict) -> tuple[list[str], pd.DataFrame]:
    layer_rows, checks = bench["rows"], bench["checks"]
    kept = layer_rows[layer_rows["kept"]]
    agg = kept.groupby(["budget", "method"]).agg(Spearman=("Spearman", "mean"), best_picked=("best picked", "mean"), regret=("regret", "mean")).reset_index()
    ci = kept.groupby(["budget", "method"])["Spearman"].apply(lambda v: bootstrap_ci(v.to_numpy())).reset_index(name="ci")
    agg = agg.merge(ci, on=["budget", "method"])
    agg["95% CI"] = agg.pop("ci").map(lambda c: f"[{c.lo:+.2f}, {c.hi:+.2f}]")
    agg = agg.sort_values(["budget", "Spearman"], ascending=[True, False])
    lines = [f"## {bench['title']}", "",
             bench["intro"] + " `best picked`: share of (source, target) pairs whose "
             "top-scored layer is the measured best; `regret`: relative loss increase of the picked layer. The depth "
             "rules always pick the shallowest or the deepest layer. *Rank mean* (research, label-free): per pair, the mean "
             "of the two methods' standardised ranks of the layers.", "",
             f"**Target check.** A target is scored only if its best layer beats the constant predictor (one output for every image, "
             f"fitted to the labels) by at least {CONSTANT_MARGIN:.0%} in loss:", "", md(checks), "",
             "Mean over the kept (source, target) pairs (95% bootstrap interval over pairs):", "", md(agg), "",
             bench["protocol"], "",
             "<details><summary>Per pair</summary>", "", md(layer_rows), "", "</details>", ""]  # fmt: skip
    return lines, agg


# ---- findings ------------------------------------------------------------------------------
def findings(results: list[dict], benches: list[dict]) -> list[str]:
    from depara_core.zoos.minitaskonomy.assets import ASSET_DIR

    out = ["## Findings", "", "Each statement follows a paired 95% bootstrap interval over targets (per-target Spearman).", ""]
    for r in results:
        cis, means = r["cis"], r["means"]
        best = max(LABEL_FREE, key=lambda m: means[m])
        parts = [f"`{r['probes']}` probes, {r['budget']} labels: best label-free method {best} (ρ {means[best]:.2f}); "
                 f"DEPARA with λ by cross-validation ρ {means['DEPARA (λ CV)']:.2f}, RSA {means['RSA']:.2f}, CKA {means['CKA']:.2f}, "
                 f"DDS {means['DDS']:.2f}, PL-LogME {means['PL-LogME']:.2f}, target-agnostic prior {means['prior']:.2f}."]  # fmt: skip
        for m in ("DEPARA (λ CV)", "PL-LogME"):
            parts.append(f"{m} " + "; ".join(verdict(cis[m, ref], ref) for ref in REFERENCES if (m, ref) in cis) + ".")
        out.append("- " + " ".join(parts))
    goal = [r for r in results if r["probes"] == IN_DOMAIN]
    for r in goal:
        cis = r["cis"]
        wins = [m for m in LABEL_FREE if all(cis.get((m, ref), Interval(0, 0, 0, 0)).lo > 0 for ref in ("RSA", "CKA", "DDS") if ref != m)]
        out.append(f"- In-domain goal ({IN_DOMAIN}, {r['budget']} labels) — a label-free method above RSA, CKA and DDS with every paired interval above 0: "
                   + (", ".join(wins) if wins else "none") + ".")  # fmt: skip
    agreement = json.loads((ASSET_DIR / "agreement.json").read_text())
    enc = agreement.get("encoder_seeds", {}).get("1000", {}).get("mean")
    if enc is not None:
        out.append(f"- Ceiling: the ground truth of one encoder seed predicts the other's with mean Spearman {enc:.2f} (1,000 labels).")
    manifest = json.loads((ASSET_DIR / "manifest.json").read_text())
    dropped = {b: v for b, v in manifest.get("flat_targets", {}).items() if v}
    if dropped:
        out.append("- Targets left out as flat (every source within seed noise): " + "; ".join(f"{b} labels: {', '.join(v)}" for b, v in dropped.items()) + ".")
    for bench in benches:
        for budget, g in bench["agg"].groupby("budget"):
            top = g.iloc[0]
            out.append(f"- Layer selection ({bench['label']}), {budget} labels (kept targets): best {top['method']} ρ {top['Spearman']:+.2f} {top['95% CI']}; "
                       + ", ".join(f"{row.method} {row.Spearman:+.2f}" for row in g.iloc[1:].itertuples()) + ".")  # fmt: skip
        for method, rule in depth_twins(bench["rows"]):
            out.append(f"- Layer selection ({bench['label']}): {method} ranks the layers of every (source, target) pair exactly as the {rule} rule "
                       "does (the same per-pair Spearman everywhere): for layer selection there it is that rule, not a label-free estimate of transfer.")  # fmt: skip
        for budget, line in variant_lines(bench["rows"]):
            out.append(f"- Layer selection ({bench['label']}), {budget} labels: {line}.")
        out.append(f"- Layer-selection goal ({bench['label']}) — a label-free method with ρ ≥ 0.6 at every budget and above both depth rules: "
                   + (", ".join(layer_goal(bench["agg"])) or "none") + ".")  # fmt: skip
    return out + [""]


def variant_lines(rows: pd.DataFrame) -> list[tuple[int, str]]:
    """Per budget, each variant ("DEPARA-V pixels", "PL-LogME (target outputs)") against its default, and each rank-mean
    combination against PL-LogME, paired over the kept pairs."""
    kept = rows[rows["kept"]]
    out = []
    for budget, g in kept.groupby("budget"):
        wide = g.pivot_table(index=["source", "target"], columns="method", values="Spearman")
        parts = []
        for method in wide.columns:
            if method.endswith(RANK_MEAN_SUFFIX):  # a combination against its stronger part
                base = "PL-LogME"
            else:
                base = next((b for b in ("DEPARA-V", "DEPARA λ=1", "PL-LogME") if method.startswith(b + " ")), None)
            if base is not None and base in wide:
                d = paired_difference(wide[method].to_numpy(), wide[base].to_numpy())
                parts.append(f"{method} ρ {wide[method].mean():+.2f} vs {base} {wide[base].mean():+.2f}: " + verdict(d, base))
        if parts:
            out.append((int(budget), "; ".join(parts)))
    return out


def layer_goal(agg: pd.DataFrame) -> list[str]:
    """Label-free methods whose mean layer Spearman is ≥ 0.6 at every budget and above both depth rules there."""
    rules = ("shallowest layer", "deepest layer")
    wins = []
    for method in dict.fromkeys(agg["method"]):
        if method in rules:
            continue
        ok = True
        for _, g in agg.groupby("budget"):
            by = g.set_index("method")["Spearman"]
            ok &= bool(method in by and by[method] >= 0.6 and all(by[method] > by.get(r, -np.inf) for r in rules))
        if ok:
            wins.append(method)
    return wins


def depth_twins(layer_rows: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(method, depth rule) pairs where the method's per-pair Spearman equals the rule's on every pair."""
    if layer_rows is None or not len(layer_rows):
        return []
    wide = layer_rows.pivot_table(index=["source", "target", "budget"], columns="method", values="Spearman")
    rules = [r for r in ("shallowest layer", "deepest layer") if r in wide]
    return [(m, r.split()[0] + "-layer") for m in wide.columns if m not in rules for r in rules if np.allclose(wide[m], wide[r], atol=1e-9)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200, help="probes per probe set")
    ap.add_argument("--out", default="docs")
    ap.add_argument("--probe-sets", nargs="+", default=list(PROBE_SETS))
    args = ap.parse_args()
    out = Path(args.out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    zoo = load_zoo("mini-taskonomy")
    if not zoo.available:
        sys.exit(f"the mini-taskonomy zoo is not available: {zoo.unavailable_reason}")
    cache = GraphCache()
    models = [load_model(s) for s in zoo.specs]
    t0 = time.time()
    lines = [
        "# Results: does DEPARA find the best source models and layers?",
        "",
        f"Generated by `python scripts/make_results.py --count {args.count}` from the committed mini-taskonomy zoo "
        f"({len(models)} networks; see `assets/minitaskonomy/manifest.json`). Ground truth: the measured transfer of each "
        "frozen source encoder to each target task with a fresh head, at 1,000 and 100 labelled scenes "
        "(`assets/minitaskonomy/`). For each target the other tasks' seed-1 encoders are the candidates; "
        f"the top {RELEVANT} measured sources are relevant for P@K and R@K (so P@{RELEVANT} = R@{RELEVANT}; R@{KS[-1]} is reported instead). "
        "Intervals: 95% percentile bootstrap over targets; differences between methods are paired (targets resampled together).",
        "",
        "Methods. Label-free: DEPARA (s_V + λ·s_E; **λ CV**: λ chosen on the other targets, leave-one-target-out, "
        "applied to the held-out one), DEPARA at the paper's λ = 1, its node and edge terms, *centred* edges (features "
        "centred over probes before the cosine, as the original code), RSA, linear and debiased CKA, DDS (duality diagram "
        "similarity: RBF kernel, debiased CKA; the z-scored Laplacian variant needs raw features, which graphs do not keep), "
        "PL-LogME (LogME of the source's features for the target network's own top-16 principal components on the probes), "
        "PL-H-score (the shrinkage-regularised H-score of the source's features for 8 k-means classes of those components) and "
        "PL-NCE (−H(target's classes | source's classes), both labellings found that way). "
        "Controls: the target-agnostic **prior** (a source's mean measured transfer to the other targets: it uses labels and "
        "knows nothing of the target), the seed-twin ceiling (the seed-2 twins' measured transfer), random and oracle. "
        "`partial ρ`: Spearman with the prior partialled out, i.e. credit for finding *related* sources rather than generally good ones.",
        "",
    ]
    results, swaps, research = [], [], []
    for probe_name in args.probe_sets:
        probes = load_builtin(probe_name, args.count)
        terms = zoo_terms(models, probes, cache=cache)
        if probe_name in RESEARCH_PROBES:
            graphs = encoder_graphs(models, probes, cache)
            research += research_section(terms, node_rank_similarity(graphs), probe_name, logme_sensitivity(graphs, terms))
        lines += [f"## Task transferability — probes `{probe_name}` ({len(probes)} images)", ""]
        for budget in (1000, 100):
            section, result = transfer_section(terms, budget, probe_name, out)
            lines += section
            results.append(result)
        swap = seed_swaps(terms, 1000)
        swaps.append(swap.assign(probes=probe_name))
        lines += ["### Seed swaps (1,000 labels)", "", "Mean Spearman when the target networks, or the sources, are replaced by their seed-2 twins:", "", md(swap), ""]
    summary = pd.DataFrame([{"probes": r["probes"], "budget": r["budget"], **{m: r["means"][m] for m in SUMMARY_METHODS}} for r in results])
    benches = [b for b in (shifted_benchmark(args.count, cache), photo_benchmark(args.count, cache)) if b is not None and len(b["rows"])]
    for bench in benches:
        section, bench["agg"] = layer_lines(bench)
        lines += section
    if research:
        lines += ["## Research: can the node term carry signal?", "",
                  "Every attempt is reported, failures too, scored as above (mean Spearman over targets, 95% interval; paired "
                  "differences; * = interval excludes 0). All are label-free: no λ or weight is fitted to measured transfer. "
                  "*Rank s_V*: per probe, the Spearman correlation of two models' attribution maps instead of their cosine. "
                  "*Per-target λ from spreads*: for each target, λ = std(s_V)/std(s_E) over its candidate sources, so that both terms "
                  "move the ranking equally. *Rank mean*: per target, the mean of two methods' standardised ranks of the sources. "
                  f"*Sensitivity*: PL-LogME with another number of the target's principal components than its default {PSEUDO_LABELS}. "
                  "A common input space across zoos is not tested here: every mini-taskonomy network sees the same input "
                  "(images in [0, 1]), so Gradient×Input already shares its baseline within this zoo.", "", *research]
    lines += ["## Summary: mean Spearman over targets", "", md(summary), "", f"_Computed in {time.time() - t0:.0f} s._", ""]
    lines[6:6] = findings(results, benches)
    (out / "RESULTS.md").write_text("\n".join(lines))
    print(f"wrote {out / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
