"""Command-line arguments: numbers, model sources, probe paths and output files, as a user types them."""

from __future__ import annotations

from pathlib import Path

from fuzz.build import image_bytes
from fuzz.corpus import Case
from fuzz.entry import cli, write_module

DESCRIPTIONS = {
    "cli-number": "λ, node scale, counts, sizes, batch sizes, memory budgets and normalisation out of range, NaN, infinite or not numbers: a usage error naming the option",
    "cli-source": "model sources that are empty, malformed or name nothing installed: an error with the accepted forms",
    "cli-probes": "probe arguments that are empty, missing, too small or unknown: an error saying what to give",
    "cli-files": "output and cache paths that cannot be written: an error naming the path",
    "cli-misc": "other misuse (no command, unknown options, a source compared with itself): a usage error or a warning",
}

NET = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
"""


def _graphs(*extra: str, probes: tuple[str, ...] = ("--probes", "builtin:noise", "--count", "4")):
    def run(scratch: Path):
        write_module("fz_cli_net", NET)
        return cli("graphs", "--model", "m=fz_cli_net:build", "--layers", "1", *probes, "--quiet", *extra)

    return run


def _similarity(*extra: str):
    def run(scratch: Path):
        write_module("fz_cli_net", NET)
        return cli("similarity", "--model", "a=fz_cli_net:build", "--model", "b=fz_cli_net:build", "--layer", "1",
                   "--probes", "builtin:noise", "--count", "4", "--quiet", "--no-cache", *extra)  # fmt: skip

    return run


def _number_cases() -> list[Case]:
    c = "cli-number"
    out = [Case(c, "valid-defaults", _graphs(), "ok"), Case(c, "valid-lam-zero", _similarity("--lam", "0"), "ok")]
    bad = {
        "lam": ["nan", "inf", "-inf", "-1", "abc", "1e309", "", "0x10"],
        "node-scale": ["nan", "0", "-1", "inf", "x"],
        "count": ["0", "-1", "2", "abc", "3.5", "1e9", "nan"],
        "batch-size": ["0", "-1", "1e9", "abc", "2.5"],
        "resize": ["0", "-5", "7", "1e9", "nan"],
        "memory-budget": ["lots", "-1G", "0", "1e30", "12QB", "nan", "inf"],
        "feature-sketch": ["10", "0", "abc", "1e9", "nan"],
        "ray-shard": ["0", "2", "abc", "-4"],
    }
    for opt, values in bad.items():
        for v in values:
            run = _similarity(f"--{opt}", v) if opt in ("lam", "node-scale") else _graphs(f"--{opt}", v)
            out.append(Case(c, f"{opt}={v or 'empty'}", run, match=opt.replace("-", "[-_ ]") + "|count|budget|probes"))
    for opt, values in {"size": [("0", "0"), ("1", "1"), ("-5", "5"), ("100000", "100000"), ("abc", "4"), ("nan", "8"), ("4096", "4096", "--count", "200")],
                        "input-size": [("0", "0"), ("7", "7"), ("1e9", "8")],
                        "mean": [("nan", "0", "0"), ("inf", "0", "0"), ("a", "b", "c")],
                        "std": [("0", "0", "0"), ("-1", "1", "1"), ("nan", "1", "1"), ("inf", "1", "1")]}.items():  # fmt: skip
        for vs in values:
            out.append(Case(c, f"{opt}={'x'.join(vs)}", _graphs(f"--{opt}", *vs), match=f"{opt}|megapixels|size"))
    out += [
        Case(c, "size-valid-builtin-resized", _size_applied, "ok"),
        Case(c, "smallest-memory-budget", _graphs("--memory-budget", "1MiB"), "ok"),
        Case(c, "size-1024-few-probes", _graphs("--size", "1024", "1024"), "ok"),
        Case(c, "memory-budget-1KiB", _graphs("--memory-budget", "1KiB"), match="below 1 MiB"),
        Case(c, "interpolation-nearest", _graphs("--interpolation", "nearest"), match="interpolation"),
        Case(c, "objective-bogus", _graphs("--objective", "max"), match="objective"),
        Case(c, "method-bogus", _graphs("--method", "magic"), match="magic"),
        Case(c, "node-reduce-bogus", _graphs("--node-reduce", "median"), match="node-reduce"),
        Case(c, "relevant-zero", lambda s: cli("evaluate", "--ground-truth", "taskonomy", "--scores", "x.csv", "--relevant", "0", "--json", "o.json"), match="relevant"),
    ]
    return out


def _size_applied(scratch: Path) -> None:
    from fuzz.corpus import Wrong

    write_module("fz_cli_net", NET)
    out = cli("graphs", "--model", "m=fz_cli_net:build", "--layers", "1", "--probes", "builtin:noise", "--count", "4", "--size", "20", "20", "--quiet")
    if " 1600 " not in out:  # 4 channels x 20 x 20 features per probe at layer 1
        raise Wrong(f"--size 20 20 was not applied to the built-in probes: {out}")


def _source_cases() -> list[Case]:
    c = "cli-source"
    sources = {
        "empty": ("", "empty"), "blank": ("   ", "empty"), "equals-only": ("=", "empty name"), "name-only": ("x=", "not understood"),
        "torchvision-no-arch": ("torchvision:", "no architecture"), "timm-no-arch": ("timm:", "no architecture"),
        "timm-no-checkpoint": ("timm:resnet18", "no checkpoint|timm"), "torchscript-no-path": ("torchscript:", "no file"),
        "zoo-empty": ("zoo:", "zoo:ZOO/MODEL"), "zoo-no-model": ("zoo:mini-taskonomy", "zoo:ZOO/MODEL"),
        "zoo-unknown": ("zoo:nozoo/x", "nozoo"), "zoo-unknown-model": ("zoo:mini-taskonomy/nomodel", "no model 'nomodel'"),
        "bare-word": ("resnet18", "not understood"), "double-equals": ("a=b=c", "not understood|cannot import"),
        "torchvision-empty-ckpt": ("torchvision:resnet18@", "not on this machine"), "unicode": ("☃:☃", "cannot import"),
        "module-without-function": ("os:", "not understood"), "colon-only": (":", "not understood"),
        "dotted-function-missing": ("os.path:nothing.here", "no attribute"), "private-module": ("_nonexistent_mod:f", "cannot import"),
        "torchvision-unknown": ("torchvision:resnet9000", "no architecture"), "torchscript-missing": ("torchscript:/nonexistent/m.pt", "does not exist"),
        "path-traversal-zoo": ("zoo:../../etc/passwd", "no model|zoo"),
    }  # fmt: skip
    out = [Case(c, name, (lambda src: lambda s: cli("graphs", "--model", src, "--probes", "builtin:noise", "--count", "4", "--quiet"))(src), match=m) for name, (src, m) in sources.items()]
    out.append(Case(c, "zoo-valid", lambda s: cli("graphs", "--model", "zoo:mini-taskonomy/depth", "--probes", "builtin:noise", "--count", "4", "--quiet"), "ok"))
    return out


def _probe_cases() -> list[Case]:
    c = "cli-probes"

    def folder(n: int, sub: str = "imgs"):
        def run(scratch: Path):
            d = scratch / sub
            d.mkdir(exist_ok=True)
            for i in range(n):
                (d / f"p{i}.png").write_bytes(image_bytes(seed=i))
            return _graphs(probes=("--probes", str(d)))(scratch)

        return run

    def path_arg(make):
        return lambda s: _graphs(probes=("--probes", str(make(s))))(s)

    return [
        Case(c, "folder-valid", folder(3), "ok"),
        Case(c, "folder-empty", folder(0), match="no image files"),
        Case(c, "folder-two-images", folder(2), match="at least 3"),
        Case(c, "empty-string", _graphs(probes=("--probes", "")), match="--probes is empty"),
        Case(c, "blank", _graphs(probes=("--probes", "  ")), match="--probes is empty"),
        Case(c, "missing-folder", path_arg(lambda s: s / "nope"), match="does not exist"),
        Case(c, "a-file", path_arg(lambda s: (s / "f.txt").write_text("x") and s / "f.txt"), match="not a folder|does not exist"),
        Case(c, "zip-missing", path_arg(lambda s: s / "none.zip"), match="not a readable zip|does not exist"),
        Case(c, "zip-garbage", path_arg(lambda s: (s / "g.zip").write_bytes(b"garbage") and s / "g.zip"), match="not a readable zip"),
        Case(c, "builtin-unknown", _graphs(probes=("--probes", "builtin:nope")), match="nope"),
        Case(c, "builtin-empty-name", _graphs(probes=("--probes", "builtin:")), match="probe set|builtin"),
        Case(c, "builtin-too-many", _graphs(probes=("--probes", "builtin:noise", "--count", "100000000")), match="at most"),
        Case(c, "builtin-photos", _graphs(probes=("--probes", "builtin:photos", "--count", "3")), "ok"),
        Case(c, "builtin-scenes", _graphs(probes=("--probes", "builtin:scenes", "--count", "3")), "ok"),
        Case(c, "dev-zero", _graphs(probes=("--probes", "/dev/zero")), match="not a folder|does not exist"),
        Case(c, "proc-self", _graphs(probes=("--probes", "/proc/self/fd")), match="image|readable|permission|not a"),
        Case(c, "count-more-than-folder", lambda s: folder(3)(s) and _graphs("--count", "50", probes=("--probes", str(s / "imgs")))(s), "ok"),
    ]


def _file_cases() -> list[Case]:
    c = "cli-files"
    return [
        Case(c, "json-to-folder", lambda s: _graphs("--json", str(s))(s), match="cannot write|folder"),
        Case(c, "json-to-missing-folder", lambda s: _graphs("--json", str(s / "no" / "such" / "out.json"))(s), match="cannot write|folder"),
        Case(c, "csv-to-proc", lambda s: _graphs("--csv", "/proc/version/x.csv")(s), match="cannot write"),
        Case(c, "cache-dir-is-a-file", lambda s: (s / "f").write_text("x") and _graphs("--cache-dir", str(s / "f"))(s), match="cache"),
        Case(c, "json-valid", lambda s: _graphs("--json", str(s / "o.json"))(s), "ok"),
    ]


def _fresh_cache_graphs(scratch: Path, *extra: str):
    """``graphs`` on an empty cache folder (so that there is work to send to a cluster)."""
    return _graphs("--cache-dir", str(scratch / "fresh-cache"), *extra)(scratch)


def _misc_cases() -> list[Case]:
    c = "cli-misc"

    def layers_same(scratch: Path):
        write_module("fz_cli_net", NET)
        return cli("layers", "--source", "a=fz_cli_net:build", "--target", "a=fz_cli_net:build", "--probes", "builtin:noise", "--count", "4", "--quiet", "--no-cache")

    return [
        Case(c, "no-command", lambda s: cli(), match="required|command"),
        Case(c, "unknown-command", lambda s: cli("rank"), match="invalid choice"),
        Case(c, "unknown-option", lambda s: cli("probes", "--frobnicate"), match="unrecognized"),
        Case(c, "missing-model", lambda s: cli("similarity", "--probes", "builtin:noise"), match="--model"),
        Case(c, "list-probes", lambda s: cli("probes"), "ok"),
        Case(c, "source-equals-target", layers_same, "warn", match="same model|itself"),
        Case(c, "unknown-layer", _graphs("--layers", "nope"), match="no layer named 'nope'"),
        Case(c, "similarity-one-model", lambda s: write_module("fz_cli_net", NET) and cli("similarity", "--model", "a=fz_cli_net:build", "--probes", "builtin:noise", "--count", "4", "--quiet"), match="two|at least"),
        Case(c, "precision-bogus", _graphs("--precision", "fp8"), match="precision"),
        Case(c, "valid-precision-bf16", _graphs("--precision", "bf16"), "ok"),
        Case(c, "ray-nobody-listens", lambda s: _fresh_cache_graphs(s, "--ray", "127.0.0.1:1"), match="no Ray cluster answers"),
        Case(c, "ray-malformed-address", lambda s: _fresh_cache_graphs(s, "--ray", "head-node"), match="is not a Ray address"),
        Case(c, "ray-port-out-of-range", lambda s: _fresh_cache_graphs(s, "--ray", "127.0.0.1:99999"), match="is not a Ray address"),
        Case(c, "ray-without-cache", _graphs("--ray", "127.0.0.1:1", "--no-cache"), match="needs the cache"),
        Case(c, "similarity-same-name-twice", lambda s: write_module("fz_cli_net", NET) and cli("similarity", "--model", "a=fz_cli_net:build", "--model", "a=fz_cli_net:build", "--probes", "builtin:noise", "--count", "4", "--quiet"), match="twice|same name|unique"),
    ]


def cases() -> list[Case]:
    return _number_cases() + _source_cases() + _probe_cases() + _file_cases() + _misc_cases()
