"""Controls and benchmark statistics against direct computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from depara_core.evaluation.controls import depth_rule, target_agnostic_prior
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.statistics import bootstrap_ci, paired_difference, partial_spearman


def test_prior_is_mean_affinity_on_the_other_targets():
    rng = np.random.default_rng(1)
    names = [f"t{i}" for i in range(6)]
    aff = pd.DataFrame(rng.random((6, 6)), index=names, columns=names)
    for t in names:
        aff.loc[t, t] = np.nan
    aff.loc["t2", "t4"] = np.nan  # an unmeasured pair
    prior = target_agnostic_prior(names, GroundTruth(aff))
    for i, s in enumerate(names):
        for j, t in enumerate(names):
            others = [aff.loc[s, u] for u in names if u != t and pd.notna(aff.loc[s, u])]
            assert prior[i, j] == pytest.approx(np.mean(others))


def test_prior_ignores_models_outside_the_ground_truth():
    gt = GroundTruth.from_matrix(["a", "b"], [[np.nan, 1.0], [2.0, np.nan]])
    prior = target_agnostic_prior(["a", "b", "new"], gt)
    assert np.isnan(prior[2]).all() and np.isnan(prior[0, 1])  # a's only measurement is on b itself


def test_depth_rules_pick_the_ends():
    assert int(np.argmax(depth_rule(5, "shallowest"))) == 0
    assert int(np.argmax(depth_rule(5, "deepest"))) == 4
    with pytest.raises(ValueError, match="unknown depth rule"):
        depth_rule(3, "middle")


def test_partial_spearman_matches_the_textbook_formula():
    rng = np.random.default_rng(2)
    z = rng.normal(size=30)
    x, y = z + rng.normal(size=30), z + 0.5 * rng.normal(size=30)
    rxy, rxz, ryz = spearmanr(x, y).statistic, spearmanr(x, z).statistic, spearmanr(y, z).statistic
    expected = (rxy - rxz * ryz) / np.sqrt((1 - rxz**2) * (1 - ryz**2))
    assert partial_spearman(x, y, z) == pytest.approx(expected, abs=1e-12)
    assert partial_spearman(x, y, np.ones(30)) == pytest.approx(rxy, abs=1e-12)  # a constant control removes nothing


def test_paired_difference_cancels_what_both_methods_share():
    rng = np.random.default_rng(3)
    hardness = rng.normal(scale=0.3, size=14)  # some targets are easy for every method
    a = hardness + 0.1 + rng.normal(scale=0.02, size=14)
    b = hardness
    unpaired_lo = bootstrap_ci(a).lo - bootstrap_ci(b).hi
    paired = paired_difference(a, b)
    assert unpaired_lo < 0 < paired.lo and paired.mean == pytest.approx(np.mean(a - b))
    assert paired.excludes_zero and not paired_difference(b + rng.normal(scale=0.2, size=14), b).excludes_zero


def test_bootstrap_is_reproducible_and_drops_nan():
    v = [0.1, 0.5, np.nan, 0.3, 0.9]
    a, b = bootstrap_ci(v), bootstrap_ci(v)
    assert a == b and a.n == 4 and a.lo <= a.mean <= a.hi
    with pytest.raises(ValueError, match="same shape"):
        paired_difference([1, 2], [1, 2, 3])
