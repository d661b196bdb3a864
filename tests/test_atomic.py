"""The one atomic write: threads writing the same file never clash; a failed writer leaves nothing."""

from __future__ import annotations

import threading

import pytest

from depara_core.atomic import atomic_write


def test_threads_writing_one_path_each_leave_a_whole_file(tmp_path):
    target = tmp_path / "upload.bin"
    errors, payloads = [], [bytes([k]) * 200_000 for k in range(8)]

    def write(data):
        try:
            atomic_write(target, data)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and target.read_bytes() in payloads
    assert [p.name for p in tmp_path.iterdir()] == ["upload.bin"]


def test_a_failing_writer_leaves_no_file(tmp_path):
    def broken(fh):
        fh.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.json", broken)
    assert list(tmp_path.iterdir()) == []


def test_temporaries_of_killed_writers_are_swept_and_live_ones_kept(tmp_path):
    import os

    from depara_core.atomic import STALE_AFTER, remove_stale_temporaries
    from depara_core.cache import GraphCache

    (tmp_path / "graphs").mkdir()
    old = tmp_path / "graphs" / ".abc.npz.x1y2.tmp"
    live = tmp_path / "graphs" / ".def.npz.z3w4.tmp"
    entry = tmp_path / "graphs" / "abc.npz"
    for p in (old, live, entry):
        p.write_bytes(b"x")
    os.utime(old, (0, live.stat().st_mtime - STALE_AFTER - 10))
    os.utime(entry, (0, 0))  # an old entry is not a temporary file
    GraphCache(tmp_path)
    assert not old.exists() and live.exists() and entry.exists()
    assert remove_stale_temporaries(tmp_path, now=live.stat().st_mtime + STALE_AFTER + 1) == 1 and not live.exists()
