"""Models: code typed into the app, user-written module:function models, checkpoints and TorchScript files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from fuzz.corpus import MARKER, Case
from fuzz.entry import cli, write_module

DESCRIPTIONS = {
    "app-code": "module:function and TorchScript typed or uploaded on the page of a server without the opt-in: refused before anything is imported",
    "user-builder": "module:function builders that exit, crash, hang or return no module (command line): an error naming the model; the process lives on",
    "user-forward": "forwards that exit, hang, return no tensor, complex or integer values, no gradient, NaN, mixed or dropped batches: an error, or a warning for non-determinism and batch mixing",
    "checkpoint": "malicious pickles, random, empty, truncated or mismatched weight files, complex/float8/NaN weights: an error; no code in a pickle runs",
    "torchscript": "TorchScript files (operator opt-in): damaged files and hooks on inner layers get an error naming what can be probed",
}

PROBES = ("--probes", "builtin:noise", "--count", "4", "--no-cache", "--quiet")


# ---- code typed into the app ---------------------------------------------------------------
HOSTILE_TARGETS = (
    "os:abort", "faulthandler:_sigsegv", "os.environ:clear", "sys.path:clear", "gc:disable", "builtins:input",
    "signal:pause", "os:fork", "sys:exit", "os:_exit", "builtins:exec", "builtins:eval", "builtins:breakpoint",
    "subprocess:Popen", "shutil:rmtree", "os:getcwd", "pdb:set_trace", "code:interact", "http.server:test",
    "importlib:import_module", "time:sleep", "threading:Event", "scripts.build_minitaskonomy:main",
    "scripts.make_results:main", "depara_core.cli:main", "torch:load", "pickle:loads", "ctypes:CDLL",
    "fz_evil_import:build", "tempfile:mkdtemp", "webbrowser:open", "os:system",
)  # fmt: skip


EVIL_IMPORT = f"import os\nopen(os.path.join(os.environ['FUZZ_SCRATCH'], {MARKER!r}), 'w').close()\ndef build():\n    return None\n"


def _app_model(kind: str, target: str, **fields):
    def run(scratch: Path):
        from depara_core.models.spec import load_model
        from depara_core.session.config import CustomModel

        write_module("fz_evil_import", EVIL_IMPORT)  # importing it would write the marker
        return load_model(CustomModel(kind, "m", target, **fields).spec(allow_code=False))

    return run


def _app_cases() -> list[Case]:
    out = [Case("app-code", f"callable-{t.replace(':', '-')}", _app_model("callable", t), match="does not allow") for t in HOSTILE_TARGETS]
    out += [
        Case("app-code", "torchscript-upload", _app_model("torchscript", "/tmp/model.pt"), match="does not allow"),
        Case("app-code", "torchscript-etc-passwd", _app_model("torchscript", "/etc/passwd"), match="does not allow"),
        Case("app-code", "unknown-kind", _app_model("python", "os:abort"), match="unknown model kind"),
        Case("app-code", "empty-name", lambda s: _empty_name(), match="no name"),
    ]
    return out


def _empty_name():
    from depara_core.session.config import CustomModel

    return CustomModel("callable", "  ", "os:abort").spec(allow_code=False)


# ---- user-written models on the command line -----------------------------------------------
PRELUDE = """
import os, sys, time, signal
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return {body}


def build():
    {build}
"""


def _user(name: str, build: str = "return Net()", body: str = "y", layer: str = "output"):
    def run(scratch: Path):
        mod = write_module(f"fz_{name.replace('-', '_')}", PRELUDE.format(build=textwrap.indent(build, "    ").strip(), body=body))
        return cli("graphs", "--model", f"m={mod}:build", "--layers", layer, *PROBES)

    return run


BUILDERS = {
    "exit": ("sys.exit(0)", "error", "exit|ended"),
    "exit-3": ("sys.exit(3)", "error", "exit|ended"),
    "os-exit": ("os._exit(3)", "error", "exit status 3"),
    "abort": ("os.abort()", "error", "SIGABRT"),
    "segfault": ("import faulthandler; faulthandler._sigsegv()", "error", "SIGSEGV"),
    "keyboard-interrupt": ("raise KeyboardInterrupt", "error", "KeyboardInterrupt|SIGINT"),
    "sleeps": ("time.sleep(10**6)", "error", "within"),
    "busy-loop": ("while True: pass", "error", "within"),
    "pauses": ("signal.pause()", "error", "within"),
    "reads-stdin": ("return input()", "error", "EOFError|within"),
    "returns-none": ("return None", "error", "not a torch.nn.Module"),
    "returns-int": ("return 42", "error", "not a torch.nn.Module"),
    "returns-class": ("return Net", "error", "not a torch.nn.Module"),
    "returns-list": ("return [Net()]", "error", "not a torch.nn.Module"),
    "raises-value-error": ("raise ValueError('boom')", "error", "boom"),
    "raises-memory-error": ("raise MemoryError()", "error", "MemoryError"),
    "recursion": ("return build()", "error", "RecursionError"),
    "sends-sigterm-to-self": ("os.kill(os.getpid(), signal.SIGTERM)", "error", "SIGTERM"),
    "identity": ("return nn.Identity()", "ok", ""),
    "valid": ("return Net()", "ok", ""),
    "valid-prints": ("print('x' * 10000); return Net()", "ok", ""),
    "bad-module-path": (None, "error", "cannot import"),
    "bad-function": (None, "error", "no attribute"),
}

FORWARDS = {
    "exits": ("sys.exit(0)", "error", "exit"),
    "os-exits": ("os._exit(0)", "error", "exit status 0"),
    "aborts": ("os.abort()", "error", "SIGABRT"),
    "sleeps": ("time.sleep(10**6)", "error", "within"),
    "keyboard-interrupt": ("(_ for _ in ()).throw(KeyboardInterrupt())", "error", "KeyboardInterrupt|SIGINT"),
    "returns-dict-of-str": ("{'a': 'b'}", "error", "not a tensor"),
    "returns-none": ("None", "error", "not a tensor"),
    "returns-string": ("'features'", "error", "not a tensor"),
    "complex": ("y.to(torch.complex64)", "error", "complex"),
    "integer": ("(y * 100).long()", "error", "int64"),
    "bool": ("y > 0", "error", "bool"),
    "detached": ("y.detach()", "error", "gradient"),
    "constant": ("torch.ones(x.shape[0], 8)", "error", "gradient"),
    "zeros": ("y * 0", "error", "all zero"),
    "nan": ("y * float('nan')", "error", "NaN"),
    "inf": ("y * float('inf')", "error", "NaN or Inf"),
    "one-row": ("y.mean(0, keepdim=True)", "error", "row"),
    "drops-batch": ("y[:1]", "error", "row"),
    "flattened": ("y.flatten()", "error", "row"),
    "scalar": ("y.sum()", "error", "row"),
    "batch-mixing": ("y + y.mean(0, keepdim=True)", "warn", "batch-dependent"),
    "batch-sorting": ("y.sort(0).values", "warn", "batch-dependent"),
    "noise": ("y + torch.rand_like(y)", "warn", "not deterministic"),
    "dropout-on": ("nn.functional.dropout(y, 0.5, training=True)", "warn", "not deterministic"),
    "raises": ("(_ for _ in ()).throw(RuntimeError('forward boom'))", "error", "forward boom"),
    "wrong-input-size": ("nn.Linear(10, 2)(x)", "error", "forward failed"),
    "in-place-on-input": ("x.add_(1) * y", "error", "forward failed"),
    "tuple": ("(y, y)", "ok", ""),
    "list": ("[y]", "ok", ""),
    "dict": ("{'out': y}", "ok", ""),
    "half": ("y.half()", "ok", ""),
    "double": ("y.double()", "ok", ""),
}


def _user_cases() -> list[Case]:
    out = []
    for name, (build, expect, match) in BUILDERS.items():
        if build is None:
            target = "fz_nowhere.sub:build" if name == "bad-module-path" else "fz_valid:nothing_here"
            run = (lambda t: (lambda s: (_user("valid")(s), cli("graphs", "--model", f"m={t}", *PROBES))))(target)
        else:
            run = _user(f"b-{name}", build=build)
        out.append(Case("user-builder", name, run, expect, match))
    for name, (body, expect, match) in FORWARDS.items():
        out.append(Case("user-forward", name, _user(f"f-{name}", body=body), expect, match))
    out += [
        Case("user-forward", "unknown-layer", _user("f-layer", layer="conv9"), match="no layer named 'conv9'"),
        Case("user-forward", "inner-layer", _user("f-inner", layer="conv"), "ok"),
        Case("user-forward", "inner-layer-detached-output", _user("f-inner-det", body="y.detach()", layer="conv"), "ok"),
    ]
    return out


# ---- checkpoints ---------------------------------------------------------------------------
ARCH = "squeezenet1_1"


def _state():
    import torch
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.get_model(ARCH, weights=None).state_dict()


def _ckpt(make, suffix: str = ".pth", app: bool = False):
    def run(scratch: Path):
        from depara_core.models.sources import parse_source
        from depara_core.models.spec import load_model
        from depara_core.session.config import CustomModel

        path = scratch / f"weights{suffix}"
        make(path)
        spec = CustomModel("torchvision", "m", ARCH, str(path)).spec(allow_code=False) if app else parse_source(f"torchvision:{ARCH}@{path}")
        return load_model(spec, "cpu")

    return run


def _save(obj):
    import torch

    return lambda path: torch.save(obj() if callable(obj) else obj, path)


def _changed(change):
    def make(path):
        import torch

        sd = _state()
        change(sd)
        torch.save(sd, path)

    return make


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('FUZZ_SCRATCH', '/tmp')}/{MARKER}",))


class _EvilExec:
    def __reduce__(self):
        return (exec, (f"open({os.environ.get('FUZZ_SCRATCH', '/tmp')!r} + '/{MARKER}', 'w')",))


def _checkpoint_cases() -> list[Case]:
    import pickle

    import torch

    c = "checkpoint"
    first = "features.0.weight"

    def st_save(path, sd=None):
        from safetensors.torch import save_file

        save_file(sd if sd is not None else _state(), str(path))

    def raw(data: bytes):
        return lambda path: path.write_bytes(data)

    def truncated(frac: float):
        def make(path):
            torch.save(_state(), path)
            data = path.read_bytes()
            path.write_bytes(data[: int(len(data) * frac)])

        return make

    def st_truncated(path):
        st_save(path)
        path.write_bytes(path.read_bytes()[:-1000])

    out = []
    for app in (False, True):
        p = "app-" if app else ""
        out += [
            Case(c, f"{p}valid", _ckpt(_save(_state), app=app), "ok"),
            Case(c, f"{p}malicious-pickle-system", _ckpt(_save({"w": _Evil()}), app=app), match="cannot be read safely"),
            Case(c, f"{p}malicious-pickle-exec", _ckpt(lambda path: path.write_bytes(pickle.dumps(_EvilExec())), app=app), match="cannot be read safely"),
            Case(c, f"{p}random-bytes", _ckpt(raw(os.urandom(4096)), app=app), match="cannot be read safely"),
            Case(c, f"{p}empty", _ckpt(raw(b""), app=app), match="weights.pth"),
            Case(c, f"{p}truncated", _ckpt(truncated(0.5), app=app), match="cannot be read safely"),
        ]
    out += [
        Case(c, "safetensors-valid", _ckpt(st_save, ".safetensors"), "ok"),
        Case(c, "wrapped-state-dict", _ckpt(_save(lambda: {"state_dict": _state(), "epoch": 3})), "ok"),
        Case(c, "data-parallel-prefix", _ckpt(_save(lambda: {f"module.{k}": v for k, v in _state().items()})), "ok"),
        Case(c, "truncated-end", _ckpt(truncated(0.98)), match="cannot be read safely"),
        Case(c, "text-file", _ckpt(raw(b"these are not weights\n" * 50)), match="cannot be read safely"),
        Case(c, "zip-not-torch", _ckpt(raw(__import__("fuzz.build", fromlist=["zip_bytes"]).zip_bytes({"a.txt": b"x"}))), match="cannot be read safely"),
        Case(c, "pickled-numpy", _ckpt(lambda path: path.write_bytes(pickle.dumps({"w": __import__("numpy").zeros(3)}))), match="cannot be read safely"),
        Case(c, "list-of-tensors", _ckpt(_save(lambda: list(_state().values()))), match="no state_dict"),
        Case(c, "dict-of-strings", _ckpt(_save({"a": "b"})), match="no state_dict"),
        Case(c, "empty-dict", _ckpt(_save({})), match="missing keys"),
        Case(c, "other-architecture", _ckpt(_save(lambda: __import__("torchvision").models.resnet18().state_dict())), match="does not fit"),
        Case(c, "missing-key", _ckpt(_changed(lambda sd: sd.pop(first))), match="missing keys"),
        Case(c, "extra-key", _ckpt(_changed(lambda sd: sd.__setitem__("extra.weight", torch.zeros(2)))), match="unexpected keys"),
        Case(c, "wrong-shape", _ckpt(_changed(lambda sd: sd.__setitem__(first, torch.zeros(2, 2)))), match="shape mismatch"),
        Case(c, "complex-weights", _ckpt(_changed(lambda sd: sd.__setitem__(first, sd[first].to(torch.complex64)))), match="complex"),
        Case(c, "float8-weights", _ckpt(_changed(lambda sd: sd.__setitem__(first, sd[first].to(torch.float8_e4m3fn)))), match="float8"),
        Case(c, "integer-weights", _ckpt(_changed(lambda sd: sd.__setitem__(first, sd[first].to(torch.int32)))), match="int32"),
        Case(c, "nan-weights", _ckpt(_changed(lambda sd: sd[first].view(-1).__setitem__(0, float("nan")))), match="NaN"),
        Case(c, "inf-weights", _ckpt(_changed(lambda sd: sd[first].view(-1).__setitem__(0, float("inf")))), match="NaN or infinite"),
        Case(c, "bfloat16-weights", _ckpt(_changed(lambda sd: sd.update({k: v.bfloat16() for k, v in sd.items()}))), "ok"),
        Case(c, "float64-weights", _ckpt(_changed(lambda sd: sd.update({k: v.double() for k, v in sd.items()}))), "ok"),
        Case(c, "safetensors-random", _ckpt(raw(os.urandom(4096)), ".safetensors"), match="cannot be read safely"),
        Case(c, "safetensors-huge-header", _ckpt(raw((2**60).to_bytes(8, "little") + b"{}"), ".safetensors"), match="cannot be read safely"),
        Case(c, "safetensors-truncated", _ckpt(st_truncated, ".safetensors"), match="cannot be read safely"),
        Case(c, "safetensors-empty", _ckpt(raw(b""), ".safetensors"), match="weights.safetensors"),
        Case(c, "directory", lambda s: (s / "dir.pth").mkdir() or cli("graphs", "--model", f"torchvision:{ARCH}@{s / 'dir.pth'}", *PROBES), match="does not exist"),
        Case(c, "missing-file", lambda s: cli("graphs", "--model", f"torchvision:{ARCH}@{s / 'nope.pth'}", *PROBES), match="does not exist"),
        Case(c, "no-weights-on-machine", lambda s: cli("graphs", "--model", "torchvision:resnet152", *PROBES), match="not on this machine"),
        Case(c, "unknown-architecture", lambda s: cli("graphs", "--model", "torchvision:resnet9000@x.pth", *PROBES), match="no architecture"),
        Case(c, "torchscript-as-checkpoint", _ckpt(lambda path: torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))), match="cannot be read safely|does not fit"),
    ]
    return out


# ---- TorchScript (the operator's opt-in; the command line) ---------------------------------
def _ts(make, layer: str = "output"):
    def run(scratch: Path):
        path = scratch / "model.pt"
        make(path)
        return cli("graphs", "--model", f"ts=torchscript:{path}", "--layers", layer, *PROBES)

    return run


def _scripted(body: str = "self.conv(x)"):
    def make(path):
        import torch

        src = write_module(f"fz_ts_{abs(hash(body))}", PRELUDE.format(build="return Net()", body="y") + f"""

class TS(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return {body}
""")
        module = __import__(src)
        torch.jit.save(torch.jit.script(module.TS()), str(path))

    return make


def _torchscript_cases() -> list[Case]:
    c = "torchscript"

    def raw(data: bytes):
        return lambda path: path.write_bytes(data)

    def truncated(path):
        _scripted()(path)
        path.write_bytes(path.read_bytes()[:-200])

    return [
        Case(c, "valid", _ts(_scripted()), "ok"),
        Case(c, "tuple-output", _ts(_scripted("(self.conv(x), x)")), "ok"),
        Case(c, "inner-layer", _ts(_scripted(), layer="conv"), match="accept no hooks"),
        Case(c, "random-bytes", _ts(raw(os.urandom(3000))), match="not a TorchScript file"),
        Case(c, "empty", _ts(raw(b"")), match="not a TorchScript file"),
        Case(c, "truncated", _ts(truncated), match="not a TorchScript file"),
        Case(c, "state-dict", _ts(lambda path: __import__("torch").save(_state(), path)), match="not a TorchScript file"),
        Case(c, "forward-raises", _ts(_scripted("torch.zeros(3)[x.shape[0] * 100]")), match="forward failed"),
        Case(c, "complex-output", _ts(_scripted("self.conv(x).to(torch.complex64)")), match="complex"),
        Case(c, "missing", lambda s: cli("graphs", "--model", f"torchscript:{s / 'none.pt'}", *PROBES), match="does not exist"),
    ]


def cases() -> list[Case]:
    return _app_cases() + _user_cases() + _checkpoint_cases() + _torchscript_cases()
