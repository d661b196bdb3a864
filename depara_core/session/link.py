"""A view as a link: the shared choices of a session as URL query parameters, and back.

The link carries only what another person can reproduce on the same server: a zoo and its
models, a built-in probe set and count, layers, attribution method, conventions, λ, the page's
method, colour scale, λ sweep and target, the layer page's choices, and the attribution maps shown
(models, probes, and how they are drawn where that is not the default). Uploaded probes and added models stay in the session that
made them (a link never names a file). Every value read from a link is checked against what
exists; what does not is left out with a note, never acted on.

>>> choices = LinkChoices(zoos={"z": ("a", "b", "c")}, probe_sets=("noise",), attributions=("gradient_x_input",))
>>> state = {"zoo": "z", "models": ["a", "c"], "probe_set": "builtin:noise", "probe_count": 8, "lam": 0.5}
>>> params = link_params(state, zoo_models=("a", "b", "c"))
>>> params["models"], params["lam"]
('a,c', '0.5')
>>> updates, notes = read_link(params, choices)
>>> updates["models"], updates["lam"], notes
(['a', 'c'], 0.5, [])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from depara_core.compare.terms import ALL_METHODS
from depara_core.engine.graph import INPUT_SPACES, PRECISIONS
from depara_core.presets import PRESETS
from depara_core.session.config import LAYER_MODES
from depara_core.viz.display import OFFERED, VIEWS, MapDisplay
from depara_core.viz.views import MATRIX_SCALES

__all__ = ["LinkChoices", "LINK_KEYS", "MAP_DISPLAY_STATE", "MAX_LAYER_TARGETS", "MAX_MAP_PROBES", "link_params", "read_link", "link_url", "checked_lambda"]

MAP_DISPLAY_STATE = {"view": "attr_view", "opacity": "attr_opacity", "signed": "attr_signed", "clip_percentile": "attr_clip", "smoothing": "attr_smooth", "shared_scale": "attr_shared"}
"""The session keys of the attribution maps' display choices, by :class:`MapDisplay` field: a
link carries those that differ from the defaults."""
_WORDS = {"map_values": ("signed", "absolute"), "map_scale": ("shared", "own")}
"""A yes/no display choice's words in a link: (yes, no)."""

LINK_KEYS: dict[str, str] = {
    "zoo": "zoo",
    "models": "models",
    "controls": "controls",
    "probes": "probe_set",
    "n": "probe_count",
    "layers": "layer_mode",
    "attribution": "method",
    "input": "input_space",
    "precision": "precision",
    "compile": "compile",
    "conventions": "preset",
    "lam": "lam",
    "method": "method_view",
    "colours": "matrix_scale",
    "sweep": "lam_in_browser",
    "target": "target",
    "source": "layer_source",
    "layer_target": "layer_targets",
    "layer_method": "layer_method",
    "maps": "attr_models",
    "map_probes": "attr_probes",
    "map_view": MAP_DISPLAY_STATE["view"],
    "map_opacity": MAP_DISPLAY_STATE["opacity"],
    "map_values": MAP_DISPLAY_STATE["signed"],
    "map_clip": MAP_DISPLAY_STATE["clip_percentile"],
    "map_smoothing": MAP_DISPLAY_STATE["smoothing"],
    "map_scale": MAP_DISPLAY_STATE["shared_scale"],
}
"""Query parameter → the session-state key it mirrors, in the order links are written."""
_DISPLAY_FIELDS = {key: name for name, key in MAP_DISPLAY_STATE.items()}


MAX_PROBES = 5000
MAX_LAYER_TARGETS = 6
MAX_MAP_PROBES = 24
MAX_MAP_MODELS = 64
MAX_LAMBDA = 100.0


@dataclass(frozen=True)
class LinkChoices:
    """What exists on this server, to check a link against."""

    zoos: Mapping[str, Sequence[str]]
    """Zoo name → its model names."""
    probe_sets: Sequence[str]
    attributions: Sequence[str]
    presets: Sequence[str] = field(default_factory=lambda: tuple(PRESETS))
    methods: Sequence[str] = ALL_METHODS


def link_params(state: Mapping[str, object], zoo_models: Sequence[str] = ()) -> dict[str, str]:
    """The query parameters of the session ``state`` (a mapping like ``st.session_state``).

    Only built-in probe sets and the chosen models that belong to the zoo (``zoo_models``) go into
    a link: uploads and added models belong to their session.
    """
    out: dict[str, str] = {}
    for param, key in LINK_KEYS.items():
        value = state.get(key)
        if value is None or value == "":
            continue
        if key == "probe_set" and not str(value).startswith("builtin:"):
            continue  # uploaded probes belong to their session
        if key in ("models", "controls"):
            if value:
                out[param] = ",".join(str(m) for m in value if m in zoo_models and "," not in str(m))
        elif key in ("layer_targets", "attr_models", "attr_probes"):
            if value:
                out[param] = ",".join(str(t) for t in value if "," not in str(t))
        elif key in _DISPLAY_FIELDS:
            if value != getattr(MapDisplay(), _DISPLAY_FIELDS[key]):  # the defaults need no words
                out[param] = _WORDS[param][not value] if param in _WORDS else f"{value:g}" if isinstance(value, float) else str(value)
        elif key == "lam":
            out[param] = f"{float(value):g}"
        elif key in ("lam_in_browser", "compile"):
            if value is True:
                out[param] = "1"
        else:
            out[param] = str(value)
    return out


def read_link(params: Mapping[str, str], choices: LinkChoices) -> tuple[dict[str, object], list[str]]:
    """Session-state updates from a link's ``params`` and notes on what was left out (and why).

    Values are checked against ``choices``; targets and layer-page models, which depend on the
    results, are passed on and checked by their pages.
    """
    updates: dict[str, object] = {}
    notes: list[str] = []

    def note(param: str, why: str) -> None:
        notes.append(f"the link's {param}={str(params[param])[:80]!r} was left out: {why}")

    zoo = params.get("zoo")
    if zoo is not None:
        if zoo in choices.zoos:
            updates["zoo"] = zoo
        else:
            note("zoo", "there is no such zoo here")
    for param in ("models", "controls"):
        if param not in params:
            continue
        if "zoo" not in updates:
            note(param, f"{param} are read only with a known zoo")
            continue
        known = set(choices.zoos[updates["zoo"]])
        names = [m for m in str(params[param]).split(",") if m]
        unknown = [m for m in names if m not in known]
        if unknown:
            notes.append(f"the link's {param} {', '.join(repr(m[:40]) for m in unknown[:5])} are not in zoo {updates['zoo']!r} and were left out")
        updates[param] = list(dict.fromkeys(m for m in names if m in known))
    if "probes" in params:
        kind, _, name = str(params["probes"]).partition(":")
        if kind == "builtin" and name in choices.probe_sets:
            updates["probe_set"] = f"builtin:{name}"
        else:
            note("probes", "links name built-in probe sets only")
    _ranged(params, "n", int, 3, MAX_PROBES, updates, note, f"the probe count must be a whole number from 3 to {MAX_PROBES}")
    _choice(params, "layers", LAYER_MODES, updates, note)
    _choice(params, "attribution", choices.attributions, updates, note)
    _choice(params, "input", INPUT_SPACES, updates, note)
    _choice(params, "precision", PRECISIONS, updates, note)
    _choice(params, "conventions", choices.presets, updates, note)
    _choice(params, "method", choices.methods, updates, note)
    _choice(params, "layer_method", choices.methods, updates, note)
    _choice(params, "colours", MATRIX_SCALES, updates, note)
    if "lam" in params:
        lam = checked_lambda(params["lam"])
        if lam is None:
            note("lam", f"λ must be a number from 0 to {MAX_LAMBDA:g}")
        else:
            updates["lam"] = lam
    for param, what in (("sweep", "the λ sweep"), ("compile", "compiled passes")):
        if param in params:
            if params[param] in ("0", "1"):
                updates[LINK_KEYS[param]] = params[param] == "1"
            else:
                note(param, f"use 1 ({what}) or 0")
    for param in ("target", "source"):
        if param in params and str(params[param]):
            updates[LINK_KEYS[param]] = str(params[param])[:200]
    for param, most in (("layer_target", MAX_LAYER_TARGETS), ("maps", MAX_MAP_MODELS), ("map_probes", MAX_MAP_PROBES)):
        names = list(dict.fromkeys(t[:200] for t in str(params.get(param, "")).split(",") if t))[:most]
        if names:
            updates[LINK_KEYS[param]] = names
    _choice(params, "map_view", VIEWS, updates, note)
    for param, choice in (("map_opacity", "opacity"), ("map_clip", "clip_percentile"), ("map_smoothing", "smoothing")):
        low, high, step = OFFERED[choice]
        _ranged(params, param, float, low, high, updates, note, f"use a number from {low:g} to {high:g}")
        if LINK_KEYS[param] in updates:  # on the control's steps
            updates[LINK_KEYS[param]] = min(high, max(low, round(round(updates[LINK_KEYS[param]] / step) * step, 6)))
    for param, (yes, no) in _WORDS.items():
        if param in params:
            if params[param] in (yes, no):
                updates[LINK_KEYS[param]] = params[param] == yes
            else:
                note(param, f"use {yes} or {no}")
    return updates, notes


def checked_lambda(value: object) -> float | None:
    """``value`` as λ when it reads as a finite number in [0, MAX_LAMBDA] (a link's text, or what a
    visitor's browser sends), else None.

    >>> checked_lambda("0.5"), checked_lambda(2), checked_lambda("1e400"), checked_lambda("nan"), checked_lambda(True)
    (0.5, 2.0, None, None, None)
    """
    try:
        lam = float(str(value))
    except ValueError:
        return None
    return lam if math.isfinite(lam) and 0.0 <= lam <= MAX_LAMBDA else None


def _choice(params: Mapping[str, str], param: str, allowed: Sequence[str], updates: dict, note) -> None:
    if param not in params:
        return
    if params[param] in allowed:
        updates[LINK_KEYS[param]] = params[param]
    else:
        note(param, f"use one of {', '.join(map(str, allowed))}")


def _ranged(params: Mapping[str, str], param: str, kind: type, low: float, high: float, updates: dict, note, why: str) -> None:
    if param not in params:
        return
    try:
        value = kind(str(params[param]))
    except ValueError:
        value = None
    if value is not None and math.isfinite(value) and low <= value <= high:
        updates[LINK_KEYS[param]] = value
    else:
        note(param, why)


def link_url(base: str, params: Mapping[str, str]) -> str:
    """``base`` (the page's address, any query dropped) with ``params`` as its query.

    >>> link_url("http://host:8501/layers?old=1", {"zoo": "mini taskonomy", "lam": "0.5"})
    'http://host:8501/layers?zoo=mini+taskonomy&lam=0.5'
    """
    return f"{base.split('?', 1)[0]}?{urlencode(dict(params))}"
