"""The web page's visitor is not the server's owner: code and server files only where the operator
allowed them (a marker file that must never appear; a path outside the roots that is never read)."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from depara_core.errors import DeparaError, ModelError
from depara_core.session.config import CustomModel
from depara_core.session.policy import ServerPolicy
from depara_core.session.uploads import check_path, probes_from_path


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_defaults_allow_nothing_and_the_operator_opts_in(monkeypatch):
    monkeypatch.delenv("DEPARA_ALLOW_CODE", raising=False)
    monkeypatch.delenv("DEPARA_ALLOWED_ROOTS", raising=False)
    assert ServerPolicy.current() == ServerPolicy()  # nothing is open unless the operator says so
    p = ServerPolicy.from_sources({"DEPARA_ALLOW_CODE": "1", "DEPARA_ALLOWED_ROOTS": "/srv/a"}, ["--allowed-root", "/srv/b"])
    assert p.allow_code and [str(r) for r in p.allowed_roots] == ["/srv/a", "/srv/b"]
    assert ServerPolicy.from_sources({}, ["--allow-code"]).allow_code


@pytest.mark.parametrize("kind, target", [("callable", "depara_marker_module:build"), ("torchscript", "MARKER.pt")])
def test_code_defined_models_never_run_without_the_opt_in(tmp_path, monkeypatch, kind, target):
    marker = tmp_path / "marker"
    (tmp_path / "depara_marker_module.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\ndef build():\n    raise SystemExit\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    custom = CustomModel(kind, "evil", str(tmp_path / target) if kind == "torchscript" else target)
    with pytest.raises(ModelError, match="does not allow"):
        custom.spec(allow_code=False)
    assert not marker.exists() and "depara_marker_module" not in sys.modules


def test_server_paths_are_refused_without_allowed_roots(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(10))
    with pytest.raises(DeparaError, match="does not read folders or files named on the web page"):
        check_path(str(tmp_path), "folder", ServerPolicy())


def test_paths_outside_the_roots_are_refused_alike_whether_they_exist_or_not(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir(), outside.mkdir()
    (outside / "secret.png").write_bytes(_png(200))
    policy = ServerPolicy(False, (root.resolve(),))
    messages = []
    for path in (outside / "secret.png", outside / "missing.png", root / ".." / "elsewhere" / "secret.png"):
        with pytest.raises(DeparaError) as err:
            check_path(str(path), "file", policy)
        messages.append(str(err.value).replace(path.name, "NAME"))
    assert len(set(messages)) == 1  # existence outside the roots is not revealed
    assert "elsewhere" not in messages[0] and str(root.resolve()) in messages[0]


def test_symlinks_cannot_escape_the_roots(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "probes").mkdir(parents=True)
    outside.mkdir()
    for i in range(3):
        (root / "probes" / f"{i}.png").write_bytes(_png(40 * i))
        (outside / f"secret{i}.png").write_bytes(_png(250))
    (root / "probes" / "link.png").symlink_to(outside / "secret0.png")
    (root / "probes" / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    policy = ServerPolicy(False, (root.resolve(),))
    probes = probes_from_path(str(root / "probes"), size=8, policy=policy)
    assert sorted(probes.ids) == ["0.png", "1.png", "2.png"]  # neither the linked file nor the linked folder
    with pytest.raises(DeparaError, match="not a folder under the folders this server may read"):
        probes_from_path(str(root / "escape"), size=8, policy=policy)


def test_stored_uploads_stay_under_their_cap(tmp_path):
    import os
    import time

    from depara_core.session.uploads import save_upload

    paths = []
    for i in range(4):
        paths.append(save_upload(bytes([i]) * 1000, ".pth", tmp_path, cap=2500))
        os.utime(paths[-1], (time.time() + i, time.time() + i))  # distinct ages
    kept = sorted(p.name for p in (tmp_path / "uploads").iterdir())
    assert paths[-1].name in kept and len(kept) == 2 and paths[0].name not in kept


def test_a_refused_upload_is_removed_and_one_already_stored_is_kept(tmp_path):
    from depara_core.session.uploads import stored_upload

    with pytest.raises(ValueError), stored_upload(b"refused weights", ".pth", tmp_path) as path:
        assert path.is_file()
        raise ValueError("the checkpoint does not fit")
    assert not path.exists()
    with stored_upload(b"kept", ".pth", tmp_path) as kept:
        pass
    with pytest.raises(ValueError), stored_upload(b"kept", ".pth", tmp_path):  # another session's identical upload fails
        raise ValueError("refused")
    assert kept.is_file()
