#!/usr/bin/env python
"""Layer-selection ground truth on natural photos: every layer of EfficientNet-Lite0/1/2 on three photo tasks.

    python scripts/build_photo_layer_transfer.py --out assets/photo_tasks      # full build (~25 min on 2 cores)
    python scripts/build_photo_layer_transfer.py --out /tmp/pt --tiny          # a smoke build in under a minute

The images (see :mod:`depara_core.zoos.photo_tasks`): a random square crop (30–100% of the shorter
side, random place, mirrored half the time) of one of the 14 package photos at 224 px, turned by
k·90° and blurred by one of four widths; photo, k and blur width are drawn independently, and
each task labels one of them, so the other two are nuisances it must ignore.

Measured transfer, a reduced protocol (fine-tuning EfficientNet's later stages costs about a
minute per run on a 2-core CPU, an hour per target): each source is frozen whole; for each of its
layers the output is average-pooled to 2x2 and standardised, and a multinomial logistic
regression is fitted on the labelled images, its L2 strength chosen on separate validation
images from a grid; the test cross-entropy and accuracy are recorded. The fit is convex and run
to convergence, so the head is trained to its optimum. Features are computed once per source and
kept in ``--work`` (the build resumes from them). ``constant`` rows predict the training label
frequencies for every image. Each task's target network is a :class:`PhotoTaskNet` trained from
scratch on that task alone.

Writes ``<out>/layer_transfer.csv`` (source, target, layer, budget, seed, loss, metric, C) and
``<out>/{manifest.json, <task>@photos.safetensors}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from minitaskonomy.store import code_version, file_sha256, save_weights, write_json
from minitaskonomy.train import round_to_half
from scipy.ndimage import gaussian_filter

from depara_core.engine.capture import capture_layers
from depara_core.models.spec import load_model
from depara_core.probes.photos import ATTRIBUTIONS, decoded_photos, square_crop
from depara_core.zoos.efficientnet_lite import efficientnet_lite_specs, weights_path
from depara_core.zoos.photo_tasks import BLUR_SIGMAS, CSV, PREPROCESS, TASKS, PhotoTaskNet, target_name

FORMAT = 1
SEEDS = {"train": 31, "val": 32, "test": 33, "target_train": 34, "target_val": 35}
FULL = {"counts": {"train": 1000, "val": 250, "test": 500, "target_train": 4000, "target_val": 500}, "budgets": (1000, 100), "seeds_100": 3}
TINY = {"counts": {"train": 48, "val": 24, "test": 32, "target_train": 64, "target_val": 32}, "budgets": (48, 16), "seeds_100": 2}
C_GRID = (0.01, 0.1, 1.0)
"""Inverse L2 strengths tried for each head (the one with the lowest validation loss is kept)."""
POOL = 2
SIZE = 224


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def make_images(count: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``count`` images (N, size, size, 3) uint8 and their labels per task, reproducible from ``seed``."""
    photos = decoded_photos()
    if len(photos) != TASKS["photo"].classes:
        raise SystemExit(f"{len(photos)} package photos are installed; the photo task needs {TASKS['photo'].classes} (pip install scikit-image scikit-learn matplotlib)")
    rng = np.random.default_rng(seed)
    labels = {"photo": rng.integers(0, len(photos), count), "rotation": rng.integers(0, 4, count), "blur": rng.integers(0, len(BLUR_SIGMAS), count)}
    images = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        rgb = photos[labels["photo"][i]][1]
        h, w = rgb.shape[:2]
        side = rng.uniform(0.3, 1.0) * min(h, w)
        top, left = rng.uniform(0, h - side), rng.uniform(0, w - side)
        im = np.rot90(square_crop(rgb, (left, top, left + side, top + side), size, bool(rng.random() < 0.5)), labels["rotation"][i])
        sigma = BLUR_SIGMAS[labels["blur"][i]] * size / SIZE
        if sigma:
            im = np.clip(np.rint(gaussian_filter(im.astype(np.float32), (sigma, sigma, 0), mode="reflect")), 0, 255)
        images[i] = im
    return images, labels


def pooled_features(spec, images: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    """Every selectable layer's output of ``spec``'s network, average-pooled to POOLxPOOL, as float32 (N, D)."""
    loaded = load_model(spec)
    names = [layer.name for layer in spec.layers]
    out: dict[str, list[np.ndarray]] = {n: [] for n in names}
    with torch.no_grad(), capture_layers(loaded.module, names) as run:
        for start in range(0, len(images), batch):
            feats = run(spec.preprocess(images[start : start + batch]))
            for n in names:
                out[n].append(F.adaptive_avg_pool2d(feats[n].float(), POOL).flatten(1).numpy())
    return {n: np.concatenate(v) for n, v in out.items()}


def cross_entropy(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))))


def fit_head(x: np.ndarray, y: np.ndarray, classes: int, xv: np.ndarray, yv: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> tuple[float, float, float]:
    """(test cross-entropy, test accuracy, chosen C) of a logistic-regression head fitted on (x, y)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    x, xv, xt = scaler.transform(x), scaler.transform(xv), scaler.transform(xt)

    def proba(model, data: np.ndarray) -> np.ndarray:
        full = np.full((len(data), classes), 1e-6)  # classes absent from a small training set get a floor
        full[:, model.classes_] = model.predict_proba(data)
        return full / full.sum(axis=1, keepdims=True)

    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=3000, tol=1e-5).fit(x, y)
        val = cross_entropy(proba(model, xv), yv)
        if best is None or val < best[0]:
            best = (val, c, model)
    _, c, model = best
    p = proba(model, xt)
    return cross_entropy(p, yt), float(np.mean(p.argmax(1) == yt)), c


def subsets(n: int, budget: int, seeds: int, full_budget: int) -> list[tuple[int, np.ndarray]]:
    """(seed, indices) of the training images used at ``budget``: the whole pool once, or disjoint draws."""
    if budget >= full_budget:
        return [(0, np.arange(n))]
    order = np.random.default_rng(SEEDS["train"] + budget).permutation(n)
    return [(s, np.sort(order[s * budget : (s + 1) * budget])) for s in range(seeds)]


def train_target(task: str, data: dict, tiny: bool, seed: int = 0) -> tuple[PhotoTaskNet, dict]:
    """A PhotoTaskNet trained from scratch on ``task`` (Adam, validation every epoch, best epoch kept)."""
    torch.manual_seed(seed)
    net = PhotoTaskNet(TASKS[task].classes)
    x, y = data["target_train"]
    xv, yv = data["target_val"]
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    best, best_state, stale, epochs = float("inf"), None, 0, 2 if tiny else 60
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        for idx in torch.randperm(len(x), generator=gen).split(128):
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val = F.cross_entropy(net(xv), yv).item()
        if val < best:
            best, best_state, stale, best_epoch = val, {k: v.clone() for k, v in net.state_dict().items()}, 0, epoch + 1
        else:
            stale += 1
            if stale >= 8:
                break
    net.load_state_dict(best_state)
    with torch.no_grad():
        round_to_half(net)
    net.eval()
    return net, {"epochs": best_epoch, "val_loss": best}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, help="where features are kept between runs (default: <out>/.work)")
    ap.add_argument("--tiny", action="store_true", help="a smoke build: a few images, two label budgets")
    ap.add_argument("--sources", default="", help="comma-separated EfficientNet-Lite names (default: all three)")
    args = ap.parse_args(argv)
    proto = TINY if args.tiny else FULL
    out, work = args.out, args.work or args.out / ".work"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    specs = [s for s in efficientnet_lite_specs() if not args.sources or s.name in args.sources.split(",")]
    if not specs:
        raise SystemExit(f"no EfficientNet-Lite source among {args.sources!r}")
    t0 = time.time()
    images, labels = {}, {}
    for split in ("train", "val", "test"):
        images[split], labels[split] = make_images(proto["counts"][split], SEEDS[split])
    rows = []
    for spec in specs:
        cache = work / f"{spec.name}.npz"
        if cache.is_file():
            feats = dict(np.load(cache))
        else:
            log(f"features of {spec.name}")
            feats = {f"{split}/{k}": v for split in ("train", "val", "test") for k, v in pooled_features(spec, images[split]).items()}
            np.savez(work / f"{spec.name}.partial.npz", **feats)
            (work / f"{spec.name}.partial.npz").replace(cache)
        for task, info in TASKS.items():
            y, yv, yt = labels["train"][task], labels["val"][task], labels["test"][task]
            for layer in [layer.name for layer in spec.layers]:
                x, xv, xt = feats[f"train/{layer}"], feats[f"val/{layer}"], feats[f"test/{layer}"]
                for budget in proto["budgets"]:
                    for seed, idx in subsets(len(y), budget, proto["seeds_100"], proto["budgets"][0]):
                        loss, acc, c = fit_head(x[idx], y[idx], info.classes, xv, yv, xt, yt)
                        rows.append({"source": spec.name, "target": target_name(task), "layer": layer, "budget": budget, "seed": seed, "loss": loss, "metric": acc, "C": c})
            log(f"{spec.name} → {task}: {len(spec.layers)} layers probed")
    for task, info in TASKS.items():
        y, yt = labels["train"][task], labels["test"][task]
        for budget in proto["budgets"]:
            for seed, idx in subsets(len(y), budget, proto["seeds_100"], proto["budgets"][0]):
                freq = (np.bincount(y[idx], minlength=info.classes) + 1.0) / (len(idx) + info.classes)  # add-one: no zero probability
                rows.append({"source": "constant", "target": target_name(task), "layer": "constant", "budget": budget, "seed": seed,
                             "loss": cross_entropy(np.tile(freq, (len(yt), 1)), yt), "metric": float(np.mean(yt == freq.argmax())), "C": np.nan})  # fmt: skip
    models = []
    for split in ("target_train", "target_val"):
        im, lab = make_images(proto["counts"][split], SEEDS[split])
        images[split], labels[split] = PREPROCESS(im), lab
    test_x = PREPROCESS(images["test"])
    for task in TASKS:
        log(f"target network {target_name(task)}")
        data = {s: (images[s], torch.as_tensor(labels[s][task])) for s in ("target_train", "target_val")}
        net, fit = train_target(task, data, args.tiny)
        with torch.no_grad():
            acc = float((net(test_x).argmax(1).numpy() == labels["test"][task]).mean())
        saved = save_weights(net, out / f"{target_name(task)}.safetensors")
        models.append({"name": target_name(task), "task": task, **saved, "test_accuracy": acc, **fit})
    pd.DataFrame(rows).to_csv(out / CSV, index=False, float_format="%.6g")
    write_json(out / "manifest.json", {
        "format": FORMAT, "tiny": args.tiny, "models": models,
        "sources": {s.name: {"weights": weights_path(int(s.name[-1])).name, "sha256": file_sha256(weights_path(int(s.name[-1])))} for s in specs},
        "protocol": {
            "images": f"random square crops of the {TASKS['photo'].classes} package photos at {SIZE} px, turned by k·90°, Gaussian blur σ in {list(BLUR_SIGMAS)} px",
            "counts": proto["counts"], "seeds": SEEDS, "budgets": list(proto["budgets"]), "seeds_at_small_budgets": proto["seeds_100"],
            "transfer": f"frozen source; each layer average-pooled to {POOL}x{POOL}, standardised; multinomial logistic regression, C from {list(C_GRID)} by validation loss; test cross-entropy (loss) and accuracy (metric)",
            "reduced": "no fine-tuning of the source's later stages (about a minute per run on a 2-core CPU); a linear head on each frozen layer instead",
            "constant": "the training label frequencies (add-one smoothed) predicted for every image",
            "targets": "PhotoTaskNet (four stride-2 conv blocks, 64 px) trained from scratch per task on target_train images, best validation epoch, float16 weights",
        },
        "photos": [ATTRIBUTIONS[k] for k, _ in decoded_photos()],
        "code": code_version(), "seconds": round(time.time() - t0, 1),
    })  # fmt: skip
    log(f"done in {time.time() - t0:.0f} s: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
