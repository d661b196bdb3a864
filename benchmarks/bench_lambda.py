"""λ re-ranking latency from cached terms: a 50-model zoo, every target ranked, plus the task tree.

Goal: ≤ 10 ms per λ for the re-ranking. Run: ``python benchmarks/bench_lambda.py``
"""

from __future__ import annotations

import time

import numpy as np

from depara_core.compare.terms import SimilarityTerms
from depara_core.compare.tree import task_tree


def main(models: int = 50, repeats: int = 200) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((models, models)), rng.random((models, models))
    terms = SimilarityTerms(tuple(f"m{i}" for i in range(models)), (a + a.T) / 2, (b + b.T) / 2)
    lams = np.linspace(0, 5, repeats)
    t = time.perf_counter()
    for lam in lams:
        for name in terms.names:
            terms.rank_sources(name, float(lam))
    rank = (time.perf_counter() - t) / repeats
    t = time.perf_counter()
    for lam in lams[:50]:
        task_tree(terms.combined(float(lam)), terms.names)
    tree = (time.perf_counter() - t) / 50
    print(f"{models}-model zoo: re-ranking all {models} targets per λ: {rank * 1e3:.2f} ms (goal ≤ 10 ms); task tree: {tree * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
