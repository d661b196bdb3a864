"""The package installs from its wheel and works from outside the checkout: its data ships inside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = tmp_path_factory.mktemp("src") / "depara"
    # build from a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "out", "__pycache__", "tests", "docs", "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    (found,) = out.glob("depara_explorer-*.whl")
    return found


def test_the_wheel_carries_the_data_and_declares_its_dependencies(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(z.read(n).decode() for n in names if n.endswith("/METADATA"))
    for rel in ("taskonomy/all_affinities_16k.csv", "depara/sort_gt.npy", "minitaskonomy/manifest.json", "minitaskonomy/depth.safetensors", "minitaskonomy/layer_transfer.csv"):
        assert f"depara_core/assets/{rel}" in names
    assert not any(n.startswith(("minitaskonomy/", "scripts/", "tests/")) for n in names)  # build tooling stays out
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    for dep in ("torch==2.14.1", "torchvision==0.29.1", "captum==0.9.0", "safetensors>=0.4", "timm>=1.0"):
        assert dep in requires
    assert any(r.startswith("streamlit") and 'extra == "app"' in r for r in requires)


@pytest.mark.slow
def test_installed_wheel_runs_from_outside_the_checkout(wheel, tmp_path):
    """A fresh virtual environment that reuses this one's packages (the pinned torch) but not its
    editable checkout: the wheel is installed with pip's resolver offline, then used from elsewhere."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # this venv's pip installs into it
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True, text=True).stdout.strip()
    # our dependencies, but not the editable install (its .pth files are not processed from here)
    (Path(site) / "reuse_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-index", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)} | {"DEPARA_CACHE_DIR": str(tmp_path / "cache")}
    check = subprocess.run(
        [str(py), "-c", "import depara_core, depara_core.zoos as z; zoo = z.load_zoo('mini-taskonomy'); print(depara_core.__file__); print(zoo.available, len(zoo.specs))"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr[-2000:]
    where, available = check.stdout.split("\n")[:2]
    assert where.startswith(str(venv)) and available.startswith("True")
    cmd = [str(py), "-m", "depara_core", "similarity", "--model", "a=zoo:mini-taskonomy/depth", "--model", "b=zoo:mini-taskonomy/normals",
           "--model", "c=zoo:mini-taskonomy/autoencoding", "--probes", "builtin:scenes", "--count", "16", "--layer", "encoder", "--json", "out.json", "--quiet"]  # fmt: skip
    run = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads((work / "out.json").read_text())
    assert out["models"] == ["a", "b", "c"] and len(out["s_E"]) == 3 and out["s_E"][0][0] == pytest.approx(1.0)
