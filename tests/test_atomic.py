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
