"""The kept start results: round trip, bad files, and a bound on how many addresses keep theirs."""

from __future__ import annotations

import os

import numpy as np

from depara_core.compare.terms import SimilarityTerms
from depara_core.session.snapshot import MAX_KEPT, load_snapshot, save_snapshot, start_key
from depara_core.store import entry_path

TERMS = SimilarityTerms(("a", "b", "c"), np.eye(3), np.full((3, 3), 0.5), rsa=np.eye(3), baselines={"PL-LogME": np.ones((3, 3))})


def _save(root, key: str) -> None:
    save_snapshot(root, key, TERMS, lam=0.25, method="DEPARA centred", label="3 models", digest="abc")


def test_what_is_kept_comes_back_whole(tmp_path):
    key = start_key({"lam": "0.25"}, {"DEPARA_PROBE_COUNT": "8"})
    _save(tmp_path, key)
    snap = load_snapshot(tmp_path, key)
    assert (snap.lam, snap.method, snap.label, snap.digest) == (0.25, "DEPARA centred", "3 models", "abc")
    np.testing.assert_array_equal(snap.terms.s_E, TERMS.s_E)
    assert snap.terms.rsa is not None and list(snap.terms.baselines) == ["PL-LogME"]
    assert load_snapshot(tmp_path, start_key({"lam": "0.25"}, {})) is None  # another start


def test_a_damaged_or_foreign_file_is_no_snapshot(tmp_path):
    key = start_key({}, {})
    path = entry_path(tmp_path, "start", key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00not an npz")
    assert load_snapshot(tmp_path, key) is None
    wrong = SimilarityTerms(("a", "b", "c"), np.eye(2), np.eye(3))  # shapes that are not a zoo's terms
    save_snapshot(tmp_path, key, wrong, lam=1.0, method="DEPARA", label="x", digest="d")
    assert load_snapshot(tmp_path, key) is None
    nan = SimilarityTerms(("a", "b"), np.full((2, 2), np.nan), np.eye(2))
    save_snapshot(tmp_path, key, nan, lam=1.0, method="DEPARA", label="x", digest="d")
    assert load_snapshot(tmp_path, key) is None


def test_only_the_most_recent_starts_are_kept(tmp_path):
    keys = [start_key({"x": str(i)}, {}) for i in range(MAX_KEPT + 5)]
    for i, key in enumerate(keys):
        _save(tmp_path, key)
        os.utime(entry_path(tmp_path, "start", key), (1000.0 + i, 1000.0 + i))  # distinct ages, oldest first
    _save(tmp_path, keys[-1])  # pruning happens on every save
    assert len(list((tmp_path / "start").glob("*/*.npz"))) == MAX_KEPT
    assert load_snapshot(tmp_path, keys[0]) is None and load_snapshot(tmp_path, keys[-1]) is not None
    assert all(load_snapshot(tmp_path, k) is not None for k in keys[-MAX_KEPT:])
