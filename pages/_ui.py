"""Shared pieces of the DEPARA Explorer pages: sidebar state, caches, computing with progress, and
chart/table output with downloads. Pages stay thin: they call these and the engine's views."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from depara_core.cache import GraphCache, default_cache_dir
from depara_core.compare.terms import LAMBDA_METHODS, SimilarityTerms
from depara_core.engine.attribution import get_method, method_names
from depara_core.engine.plan import parse_size
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.lambda_cv import LambdaSuggestion, suggest_lambda
from depara_core.evaluation.layers import LayerTruth
from depara_core.evaluation.methods import Evaluation, evaluate_methods
from depara_core.evaluation.ranking import RankingEvaluator
from depara_core.evaluation.stability import split_terms
from depara_core.models.spec import LoadedModel, ModelSpec, load_model
from depara_core.presets import DEFAULT_PRESET, get_preset
from depara_core.probes.probeset import ProbeSet
from depara_core.probes.registry import builtin_probe_sets, load_builtin
from depara_core.session.bundle import read_settings
from depara_core.session.config import Config, CustomModel, ProbeChoice, resolve_specs
from depara_core.session.jobs import Job
from depara_core.session.link import MAP_DISPLAY_STATE, LinkChoices, link_params, link_url, read_link
from depara_core.session.policy import ServerPolicy
from depara_core.session.slides import MapsShown
from depara_core.session.snapshot import load_snapshot, save_snapshot, start_key
from depara_core.session.uploads import check_path, load_probes
from depara_core.session.workspace import Workspace, prune_workspaces, terms_digest
from depara_core.session.zoos import available_zoos, default_zoo, zoo_probe_default
from depara_core.viz import plots, sweep
from depara_core.viz.display import MapDisplay
from depara_core.viz.views import thumbnail_url
from depara_core.zoos import Zoo
from pages import _start

__all__ = [
    "init_state", "bind", "bind_among", "zoos", "zoo", "zoo_names", "cache", "current_config", "workspace", "results",
    "guard", "chart", "table", "evaluator", "static_evaluation", "lambda_suggestion", "ground_truth",
    "layer_truth", "thumb", "probe_label", "load_custom", "on_zoo_change", "ground_truth_upload",
    "defer", "flash", "add_probes", "check_file", "DeparaError", "running_job", "job_note", "job_note_slot", "follow", "graphs_job", "stopped_text", "compute_encoders", "compute_layers", "layers_job",
    "MAP_METHODS", "maps_job", "maps_source", "MAP_DISPLAY_STATE", "map_display", "shown_models", "shown_probes", "maps_shown",
]  # fmt: skip

log = logging.getLogger("depara_explorer")
MAX_WORKSPACES = 4


# ---- caches --------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def zoos() -> dict[str, Zoo]:
    """Registered zoos (specs only)."""
    return available_zoos()


def zoo_names(z: Zoo | None) -> tuple[str, ...]:
    """The models a zoo offers here: its names when it is installed, none otherwise."""
    return tuple(z.names) if z is not None and z.available else ()


def zoo(name: str) -> Zoo | None:
    return zoos().get(name)


@st.cache_resource(show_spinner=False)
def _cache(root: str) -> GraphCache:
    return GraphCache(root)


def cache() -> GraphCache:
    """The engine's disk cache (``$DEPARA_CACHE_DIR``, else ``~/.cache/depara-explorer``)."""
    return _cache(str(default_cache_dir()))


@st.cache_resource(show_spinner="Loading model…", max_entries=64)
def _zoo_model(zoo_name: str, model_name: str, _spec: ModelSpec) -> LoadedModel:
    return load_model(_spec)


@st.cache_resource(show_spinner="Loading model…", max_entries=32)
def _custom_model(key: str, allow_code: bool, _custom: CustomModel) -> LoadedModel:
    return load_model(_custom.spec(allow_code=allow_code))


def load_custom(custom: CustomModel) -> LoadedModel:
    """An added model, built once per process; code-defined kinds only where the server allows them."""
    return _custom_model(custom.key(), policy().allow_code, custom)


@st.cache_resource(show_spinner=False)
def policy() -> ServerPolicy:
    """What the server's operator allows visitors (code-defined models, server folders)."""
    return ServerPolicy.current()


@st.cache_data(show_spinner="Preparing probes…", max_entries=8)
def _builtin_probes(name: str, count: int | None) -> ProbeSet:
    return load_builtin(name, count)


@st.cache_data(show_spinner=False, max_entries=20000)
def thumb(probe_digest: str, index: int, _probes: ProbeSet, size: int = 48) -> str:
    """A probe thumbnail as a PNG data URL."""
    return thumbnail_url(_probes.images[index], size)


@st.cache_resource(show_spinner=False, max_entries=16)
def evaluator(digest: str, gt_key: str, relevant: int, _terms: SimilarityTerms, _gt: GroundTruth) -> RankingEvaluator:
    return RankingEvaluator(_terms.names, _gt, relevant)


@st.cache_data(show_spinner=False, max_entries=32)
def static_evaluation(digest: str, gt_key: str, relevant: int, _terms: SimilarityTerms, _gt: GroundTruth) -> Evaluation:
    """The λ-independent methods the terms hold (DEPARA-V, DEPARA-E, the baselines), random and oracle."""
    ev = evaluator(digest, gt_key, relevant, _terms, _gt)
    return evaluate_methods(_terms, ev, 1.0, relevant, methods=[m for m in _terms.methods if m not in LAMBDA_METHODS])


@st.cache_data(show_spinner="Cross-validating λ…", max_entries=32)
def lambda_suggestion(digest: str, gt_key: str, relevant: int, metric: str, _terms: SimilarityTerms, _gt: GroundTruth) -> LambdaSuggestion:
    return suggest_lambda(_terms, evaluator(digest, gt_key, relevant, _terms, _gt), metric=metric, relevant=relevant)


@st.cache_data(show_spinner="Splitting the probes in two…", max_entries=16)
def stability_halves(digest: str, _ws: Workspace) -> tuple[SimilarityTerms, SimilarityTerms]:
    """The workspace's encoder graphs on two disjoint halves of the probes (cached by the terms' digest)."""
    return split_terms({n: _ws.graph(n) for n in _ws.names}, node_scale=_ws.config.conventions.node_scale)


@st.cache_resource(show_spinner="Computing every λ of the sweep…", max_entries=8)
def lambda_sweep(digest: str, target: str, lam: float, method: str, _terms: SimilarityTerms) -> go.Figure:
    """The figure whose λ moves in the browser (a frame per λ), built once per terms, target, λ and method."""
    return sweep.lambda_sweep(_terms, target, lam, method)


@st.cache_data(show_spinner=False, max_entries=64)
def _terms(keys: tuple[str, ...], names: tuple[str, ...], _ws: Workspace) -> SimilarityTerms:
    return _ws.build_terms()


# ---- session state -------------------------------------------------------------------------
def on_zoo_change() -> None:
    """A new zoo: choose all its models (and keep added ones) and its default probes."""
    if not st.session_state.get("initialised"):
        return
    z = zoo(st.session_state.zoo)
    st.session_state.pop("gt_upload", None)  # measured transfer belongs to the zoo it was uploaded for
    custom = list(st.session_state.get("custom_models", {}))
    st.session_state.models = list(zoo_names(z)) + custom
    st.session_state.controls = []  # controls are twins of the previous zoo's models
    probe_name, count = zoo_probe_default(z)
    if probe_name in builtin_probe_sets():
        st.session_state.probe_set = f"builtin:{probe_name}"
        st.session_state.probe_count = count


def init_state() -> None:
    """Defaults of a new session (keys already set, e.g. by a test, are kept): the default zoo with all
    its models, its probe set, the paper's attribution method, λ = 1."""
    ss = st.session_state
    if ss.get("initialised"):
        return
    ss.start_key = start_key(st.query_params.to_dict())  # before the link is applied and the address rewritten
    apply_link()
    for key, value in (("custom_models", {}), ("uploaded_probes", {}), ("workspaces", {}), ("layer_mode", "encoder"),
                       ("method", "gradient_x_input"), ("lam", 1.0), ("stopped", False), ("png_buttons", False), ("memory_budget", ""), ("preset", DEFAULT_PRESET), ("controls", []), ("input_space", "model"), ("precision", "fp32"), ("compile", False),
                       ("lam_in_browser", False), ("matrix_scale", "pairs"), ("attr_by", "models"), ("edge_top", 10),
                       *((key, getattr(MapDisplay(), name)) for name, key in MAP_DISPLAY_STATE.items())):  # fmt: skip
        if key not in ss:
            ss[key] = value
    if "zoo" not in ss:
        ss.zoo = default_zoo(zoos())
    z = zoo(ss.zoo)
    if "models" not in ss:
        ss.models = list(zoo_names(z))
    probe_name, count = zoo_probe_default(z)
    if "probe_set" not in ss:
        ss.probe_set = f"builtin:{probe_name}" if probe_name in builtin_probe_sets() else f"builtin:{next(iter(builtin_probe_sets()))}"
    if "probe_count" not in ss:
        ss.probe_count = int(os.environ.get("DEPARA_PROBE_COUNT") or count)
    ss.initialised = True
    with contextlib.suppress(DeparaError):
        ss.initial_config = current_config()


def link_choices() -> LinkChoices:
    """What links may name on this server: its zoos and their models, built-in probe sets, methods."""
    return LinkChoices({n: zoo_names(z) for n, z in zoos().items()}, tuple(builtin_probe_sets()), tuple(method_names()))


def apply_link() -> None:
    """A new session opened from a shared link takes the link's choices (each checked; what does
    not exist here is left out, noted in ``link_notes``)."""
    params = st.query_params.to_dict()
    if not params:
        return
    updates, notes = read_link(params, link_choices())
    for key, value in updates.items():
        st.session_state.setdefault(key, value)
    st.session_state.link_notes = notes


def link_now() -> dict[str, str]:
    """The session's shareable choices as link parameters."""
    ss = st.session_state
    z = zoo(ss.get("zoo", ""))
    return link_params(ss, zoo_names(z))


def reopen_settings(data: bytes) -> None:
    """Take the view saved in an export bundle (its zip or settings.json), checked like a link, and
    start a new run with it; the message says what was left out."""
    updates, notes = read_link(read_settings(data), link_choices())
    left_out = f" Left out: {'; '.join(notes)}." if notes else ""
    defer(f"Reopened the saved view ({len(updates)} choices).{left_out}", **updates)


def sync_link() -> dict[str, str]:
    """Write the session's shareable choices into the page's address (when they changed); returns them."""
    params = link_now()
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    return params


def share_link() -> None:
    """The sidebar's 'Link to this view': the address with the current choices, with a copy button."""
    params = sync_link()
    notes = st.session_state.pop("link_notes", None)
    if notes:
        st.sidebar.warning("Opened from a link; " + "; ".join(notes) + ".", icon=":material/link_off:")
    with st.sidebar.popover("Link to this view", icon=":material/link:"):
        st.caption("Opens these choices in another browser on this server (the address bar holds them too). "
                   "Uploaded probes and added models stay in this session.")  # fmt: skip
        st.code(link_url(st.context.url or "", params), language=None, wrap_lines=True)


def bind(name: str, on_change=None, widget: str | None = None, upper: float | None = None) -> dict:
    """Keyword arguments that tie a widget to the plain session-state key ``name``.

    The widget gets its own key (``w_<name>``), seeded from ``name`` before it is drawn and copied
    back on change, so the choice survives page switches and widgets that are re-created.
    ``upper`` is the widget's largest value (a larger stored value, e.g. λ typed in the sidebar, shows
    as the widget's end without being changed).
    """
    ss = st.session_state
    key = widget or f"w_{name}"
    value = ss[name]
    ss[key] = min(value, upper) if upper is not None else (list(value) if isinstance(value, (list, tuple)) else value)

    def copy_back() -> None:
        v = ss[key]
        ss[name] = float(v) if name == "lam" else v
        if on_change is not None:
            on_change()

    return {"key": key, "on_change": copy_back}


def bind_among(name: str, options: Iterable, default: object) -> dict:
    """:func:`bind` for a choice among ``options`` that change with the results (models, layers,
    probes): a kept choice that is no longer offered, e.g. after changing the zoo, becomes ``default``.
    A list (a multiselect's) keeps the items still offered; it becomes ``default`` only when none is.
    """
    ss = st.session_state
    offered = set(options)
    value = ss.get(name, default)
    if isinstance(default, list):
        kept = [v for v in value if v in offered] if isinstance(value, (list, tuple)) else []
        value = kept if kept or (isinstance(value, (list, tuple)) and not value) else list(default)
    elif value not in offered:
        value = default
    ss[name] = value
    return bind(name)


_UPLOAD_LABELS: OrderedDict[str, str] = OrderedDict()
"""Labels of uploaded probe sets by content digest, for the sidebar's format function (which runs
outside session state). A session lists only its own uploads' digests, so it sees only their labels;
bounded, oldest dropped."""


def _upload_labels() -> OrderedDict[str, str]:
    while len(_UPLOAD_LABELS) > 1000:
        _UPLOAD_LABELS.popitem(last=False)
    return _UPLOAD_LABELS


def probe_label(option: str) -> str:
    kind, _, rest = option.partition(":")
    return _upload_labels().get(rest, "uploaded set") if kind == "uploaded" else rest


def current_config() -> Config:
    """The sidebar's choices as a :class:`Config`."""
    ss = st.session_state
    kind, _, rest = ss.probe_set.partition(":")
    count = int(ss.probe_count)
    if kind == "uploaded":
        ps = ss.uploaded_probes.get(rest)
        choice = ProbeChoice("uploaded", ps.name if ps is not None else "?", min(count, len(ps)) if ps is not None else count, rest)
    else:
        choice = ProbeChoice("builtin", rest, count)
    custom = tuple(c for n, c in ss.custom_models.items() if n in ss.models)
    z = zoo(ss.zoo)
    offered = set(zoo_names(z))
    controls = tuple(n for n in ss.get("controls", ()) if n in offered)
    return Config(ss.zoo, tuple(ss.models), choice, custom, ss.layer_mode, ss.method, ss.preset, controls, ss.get("input_space", "model"),
                  ss.get("precision", "fp32"), bool(ss.get("compile", False)))  # fmt: skip


def on_preset_change() -> None:
    """A new set of conventions brings its own λ (the paper's 1, the original code's 0.25)."""
    st.session_state.lam = float(get_preset(st.session_state.preset).lam)


def workspace(config: Config) -> Workspace:
    """The session's workspace for ``config`` (kept across reruns and page switches; a few recent ones
    are kept so that switching back loses nothing)."""
    spaces: dict = st.session_state.workspaces
    if config in spaces:
        spaces[config] = spaces.pop(config)  # most recent last
        return spaces[config]
    z = zoo(config.zoo)
    if z is not None and not z.available and not config.custom:
        raise DeparaError(f"zoo {config.zoo!r} cannot be used here: {z.unavailable_reason}", "choose another zoo in the sidebar")
    specs = resolve_specs(config, z)
    custom = {c.name: c for c in config.custom}
    models = [load_custom(custom[s.name]) if s.name in custom else _zoo_model(config.zoo, s.name, s) for s in specs]
    probes = load_probes(config.probes, st.session_state.uploaded_probes, _builtin_probes)
    gt = st.session_state.get("gt_upload") or (z.ground_truth if z is not None else None)
    sizes = sorted({m.spec.preprocess.size or probes.size for m in models})
    note = f"Input sizes differ ({', '.join(f'{h}x{w}' for h, w in sizes)}): attribution maps are compared on the coarsest grid." if len(sizes) > 1 else ""
    ws = Workspace(config, models, probes, cache(), gt, (note,) if note else ())
    spaces[config] = ws
    prune_workspaces(spaces, MAX_WORKSPACES, keep=config)
    return ws


def ground_truth(ws: Workspace) -> GroundTruth | None:
    return st.session_state.get("gt_upload") or ws.ground_truth


def layer_truth() -> LayerTruth | None:
    """Uploaded per-layer transfer, else the zoo's own (``Zoo.layer_truth``), else None."""
    uploaded = st.session_state.get("layer_truth_upload")
    if uploaded is not None:
        return uploaded
    z = zoo(st.session_state.zoo)
    return z.layer_truth if z is not None else None


# ---- errors --------------------------------------------------------------------------------
def show_error(exc: BaseException, what: str = "", hint: str = "check the inputs above; results computed so far are kept") -> None:
    """The one way a page shows a failure: what went wrong and what to do (logged when unexpected)."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, DeparaError):
        st.error(f"{prefix}{exc.problem}.", icon=":material/error:")
        if exc.hint:
            st.caption(f"What to do: {exc.hint}.")
        return
    log.exception("failure in %s", what or "page", exc_info=exc)
    st.error(f"{prefix}{type(exc).__name__}: {str(exc)[:500]}", icon=":material/error:")
    st.caption(f"What to do: {hint}.")


@contextlib.contextmanager
def guard(what: str = "") -> Iterator[None]:
    """Show any failure as a readable message; the rest of the page and the session keep working."""
    try:
        yield
    except (DeparaError, ValueError, OSError, RuntimeError, KeyError, TypeError) as exc:  # library errors on odd input
        show_error(exc, what)


# ---- computing -----------------------------------------------------------------------------
# One computation per session runs as a :class:`Job` in a worker thread: it survives page switches
# (the next page that needs it follows its progress), and Stop ends it at the end of a batch.
def running_job() -> Job | None:
    """The session's computation while it runs (or until a page has shown how it ended)."""
    return st.session_state.get("job")


def follow(job: Job) -> bool:
    """Draw ``job``'s progress with a Stop button until it ends; True when it finished.

    Leaving the page interrupts this loop (Streamlit stops the script at its next element), never
    the job: the page opened next finds it in the session and follows it from where it is."""
    ss = st.session_state
    box = st.status(f"Computing {job.label}…", expanded=True)
    with box:
        st.button("Stopping…" if job.stopping else "Stop", key=f"stop_compute_{id(job):x}", on_click=job.stop, disabled=job.stopping, icon=":material/stop_circle:",
                  help="Stops at the end of the current batch; what is finished is cached and Compute resumes from there.")  # fmt: skip
        overall = st.progress(0.0, text="starting…")
        per_model = st.progress(0.0, text=" ")
    shown, fraction, text = None, 0.0, "starting…"
    while not job.wait(0.25):
        r = job.report
        if r is not None and r is not shown:
            shown, fraction = r, min(r.fraction, 1.0)
            text = f"overall {r.fraction:.0%}" + ("" if r.eta is None else f" — about {r.text.rsplit('about ', 1)[-1]}")
            per_model.progress(min(r.model_fraction, 1.0), text=r.text)
            show_job_note()
        overall.progress(fraction, text=text)  # also when nothing changed: lets Streamlit stop this script on a page switch
    if ss.get("job") is job:
        ss.job = None  # ended and shown: the next computation may start
    show_job_note()
    if job.state == "done":
        box.update(label=f"Computed {job.label}", state="complete", expanded=False)
        return True
    exc = job.error
    if job.state == "stopped":
        ss.stopped, ss.stopped_note = True, exc.problem if isinstance(exc, DeparaError) else ""
        box.update(label=stopped_text(), state="error")
        return False
    box.update(label=f"Failed: {exc.problem if isinstance(exc, DeparaError) else type(exc).__name__}", state="error")
    show_error(exc, "" if isinstance(exc, DeparaError) else f"computing {job.label} failed",
               "check that every model accepts the probe images (size, channels) and fits in memory; finished layers are kept")  # fmt: skip
    return False


def job_note_slot() -> None:
    """Draw the line about the session's computation (in the sidebar: any page may be open while it
    runs) where :func:`follow` keeps it current, and clears it once the computation has ended."""
    st.session_state.job_note_slot = st.empty()
    show_job_note()


def show_job_note() -> None:
    slot = st.session_state.get("job_note_slot")
    if slot is not None:
        note = job_note()
        if note:
            slot.caption(note)
        else:
            slot.empty()


def job_note() -> str:
    """A line for the sidebar while the session's computation runs (any page may be open meanwhile)."""
    job = running_job()
    if job is None or not job.running:
        return ""
    r = job.report
    return f"Computing {job.label} in the background" + ("" if r is None else f": {r.fraction:.0%}") + (" (stopping)" if job.stopping else "")


def stopped_text() -> str:
    """Where the last stopped computation stopped, as a sentence start ("Stopped while computing …")."""
    note = st.session_state.get("stopped_note") or "stopped"
    return note[:1].upper() + note[1:]


def _run_job(ws: Workspace, key: tuple, label: str, run) -> bool:
    """Start ``run(progress)`` as the session's job on ``ws`` (with the sidebar's memory budget) unless
    the same one already runs, and follow it; another job that still runs is followed (or stopped by
    the person) first."""
    ss = st.session_state
    job = running_job()
    if job is not None and job.key != key:
        follow(job)
        job = None
    if job is None:
        ss.stopped, ss.stopped_note = False, ""
        ws.memory_budget = memory_budget()
        job = ss.job = Job(label, key, run)
    return follow(job)


def memory_budget(report: bool = False) -> int | None:
    """The sidebar's memory budget in bytes (None: automatic). A size that cannot be read is reported
    beside the field (``report``) and the automatic budget is used meanwhile."""
    text = str(st.session_state.get("memory_budget", "")).strip()
    if not text:
        return None
    try:
        return parse_size(text)
    except DeparaError as exc:
        if report:
            st.sidebar.error(f"Memory budget: {exc}")
        return None


def graphs_job(ws: Workspace) -> tuple:
    return ("graphs", ws.config)


def layers_job(ws: Workspace, source: str, targets: tuple[str, ...]) -> tuple:
    return ("layers", ws.config, source, targets)


def compute_encoders(ws: Workspace) -> bool:
    """Compute the workspace's graphs (in the session's job) and then its terms; True when complete."""
    ok = _run_job(ws, graphs_job(ws), "attribution graphs", lambda sink: ws.compute(sink, build_terms=False))
    if ok:
        ws.terms = _terms(tuple(ws.graph_key(n) for n in ws.names), ws.names, ws)  # in this thread: st's caches are the page's
    return ok


def compute_layers(ws: Workspace, source: str, targets: tuple[str, ...]) -> bool:
    """Score every layer of ``source`` against each target (in the session's job); True when done."""
    return _run_job(ws, layers_job(ws, source, targets), f"layers of {source}", lambda sink: ws.compute_layer_targets(source, targets, sink))


MAP_METHODS = ("gradient_x_input", "smoothgrad", "integrated_gradients")
"""Attribution methods the Attribution page offers for viewing (beside the graphs' own)."""


def map_display() -> MapDisplay:
    """The attribution maps' display choices of this session."""
    ss = st.session_state
    return MapDisplay(**{name: ss[key] for name, key in MAP_DISPLAY_STATE.items()})


def shown_models(ws: Workspace) -> list[str]:
    """The Attribution page's default columns: the first four models."""
    return list(ws.names[:4])


def shown_probes(ws: Workspace) -> list[str]:
    """The Attribution page's default rows: the first six probes."""
    return list(ws.probes.ids[:6])


def maps_shown(ws: Workspace) -> MapsShown:
    """The attribution maps chosen on the Attribution page (its defaults before a visit), drawn as
    chosen there: the presentation and the bundle's summary show them."""
    ss = st.session_state
    ids = {p: i for i, p in enumerate(ws.probes.ids)}
    models = [m for m in ss.get("attr_models", ()) if m in ws.names] or shown_models(ws)
    probes = [ids[p] for p in ss.get("attr_probes", ()) if p in ids] or [ids[p] for p in shown_probes(ws)]
    return MapsShown(tuple(models), tuple(probes), map_display())


def maps_job(ws: Workspace, wanted: dict[str, list[str]]) -> tuple:
    return ("maps", ws.config, tuple((n, tuple(ls)) for n, ls in wanted.items()))


def maps_source(ws: Workspace, method: str, wanted: dict[str, list[str]]) -> Workspace:
    """Where the Attribution page takes the maps of ``wanted`` ({model: [layers]}) to show: ``ws`` for
    the graphs' own method, else a workspace with ``method`` once those maps are computed — offered
    with their estimated cost, computed in the session's job, and loaded at once when cached. The
    similarities on every page stay those of ``ws``'s method."""
    if method == ws.config.method:
        return ws
    other = workspace(dataclasses.replace(ws.config, method=method))
    label = get_method(method).label
    if all(other.has(n, layer) for n, ls in wanted.items() for layer in ls):
        return other
    if not any(new for _, new in other.not_computed(wanted)):  # every map is in the disk cache: read it now
        other.compute_layers(wanted)
        return other
    job = running_job()
    if job is not None and job.key == maps_job(other, wanted):
        return other if follow(job) else ws
    own = get_method(ws.config.method)
    passes = get_method(method).passes()
    with st.container(border=True):
        st.info(f"{label} maps of {len(wanted)} model(s) on {len(other.probes)} probes cost {passes} forward and backward passes per probe "
                f"({passes / own.passes():g}x those of {own.label}): {other.estimate(wanted).text()}. Showing {own.label} meanwhile.", icon=":material/pending:")  # fmt: skip
        if st.button(f"Compute {label} maps", key=f"compute_maps_{method}", icon=":material/play_arrow:"):
            if _run_job(other, maps_job(other, wanted), f"{label} maps", lambda sink: other.compute_layers(wanted, sink)):
                st.rerun()
    return ws


def results_page(title: str, caption: str) -> Workspace:
    """Open a page that shows results: shared state, title and caption; the page stops here until
    the sidebar's workspace has results."""
    init_state()  # a no-op when app.py ran first
    st.title(title)
    st.caption(caption)
    ws = results()
    _start.clear()  # the checked results (or what stands in their way) replace the last ones
    if ws is None:
        st.stop()
    keep_start(ws)
    return ws


def keep_start(ws: Workspace) -> None:
    """Keep the results of a session's start (its first choices) for the next new session on that
    address, which draws them before the engine is imported (:mod:`depara_core.session.snapshot`)."""
    ss = st.session_state
    if ws.config != ss.get("initial_config") or ws.terms is None or "start_key" not in ss:
        return
    digest = terms_digest(ws.terms)
    if ss.get("start_kept") == digest:
        return
    ss.start_kept = digest
    kept = load_snapshot(cache().root, ss.start_key)
    if kept is None or kept.digest != digest:
        label = f"{len(ws.names)} models, {len(ws.probes)} {ws.probes.name} probes"
        save_snapshot(cache().root, ss.start_key, ws.terms, lam=float(ss.lam), method=ss.get("method_view", "DEPARA"), label=label, digest=digest)


def results(show_prompt: bool = True) -> Workspace | None:
    """The workspace for the sidebar's choices once its graphs and terms are ready.

    Computes at once when everything is cached or on a new session's default choices; otherwise
    offers a Compute button (showing the last complete results meanwhile).
    """
    ss = st.session_state
    try:
        config = current_config()
        ws = workspace(config)
    except Exception as exc:  # e.g. a user's model that fails while being built or fingerprinted
        show_error(exc, "" if isinstance(exc, DeparaError) else "preparing the models and probes failed", "check the chosen models and probes in the sidebar and on the Setup page")
        return _previous(None)
    if ws.complete:
        return ws
    job = running_job()
    if job is not None:  # started here or on another page: follow it (a Stop or a failure falls through to the prompt)
        if job.key == graphs_job(ws):
            if compute_encoders(ws):
                return ws
        else:
            follow(job)
    missing = ws.missing()
    first_run = config == ss.get("initial_config") and not ss.get("stopped")
    if not missing or first_run:
        return ws if compute_encoders(ws) else _previous(ws)
    if not show_prompt:
        return _previous(ws)
    n_missing = sum(len(v) for v in missing.values())
    n_total = sum(len(ws.layers_of(n)) for n in ws.names)
    with st.container(border=True):
        stop_note = f"{stopped_text()}. " if ss.get("stopped") else ""
        st.info(f"{stop_note}{n_missing} of {n_total} attribution graphs ({len(ws.names)} models, {len(ws.probes)} probes) still need computing; finished ones are cached.", icon=":material/pending:")
        if st.button("Compute", type="primary", key="compute_inline", icon=":material/play_arrow:"):
            if compute_encoders(ws):
                st.rerun()  # draw the results without this prompt
            return _previous(ws)
    return _previous(ws)


def _previous(current: Workspace | None) -> Workspace | None:
    done = [w for w in st.session_state.get("workspaces", {}).values() if w.complete and w is not current]
    if done:
        st.warning(f"Showing the last complete results ({done[-1].config.probes.label}, {len(done[-1].names)} models) until the current choices are computed.", icon=":material/history:")
        return done[-1]
    return None


# ---- output --------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def png_available() -> bool:
    """Whether PNGs can be drawn on the server (kaleido with Chromium)."""
    from depara_core.session.report import static_export_available

    return static_export_available()


def chart(fig, name: str, key: str | None = None) -> None:
    """A plotly chart whose toolbar camera saves an SVG, with a PNG download (drawn on click) where
    the server can export images."""
    st.plotly_chart(fig, config=plots.figure_config(f"{name}.svg"), key=key, width="stretch")
    if st.session_state.get("png_buttons") and png_available():
        st.download_button("PNG", data=lambda f=fig: f.to_image(format="png", scale=2), file_name=f"{name}.png", mime="image/png",
                           key=f"png_{key or name}", type="tertiary", icon=":material/image:", on_click="ignore")  # fmt: skip


def table(df: pd.DataFrame, name: str, key: str | None = None, images: tuple[str, ...] = (), **kwargs) -> None:
    """A table with a CSV download (image columns are left out of the CSV)."""
    config = {c: st.column_config.ImageColumn(c, width="small") for c in images}
    st.dataframe(df, hide_index=True, column_config=config, key=key, **kwargs)
    csv = df.drop(columns=[c for c in images if c in df.columns]).to_csv(index=False)
    st.download_button("CSV", data=csv, file_name=f"{name}.csv", mime="text/csv", key=f"csv_{key or name}", type="tertiary", icon=":material/download:", on_click="ignore")


@st.cache_data(show_spinner=False, max_entries=8)
def ground_truth_upload(file_name: str, data: bytes) -> GroundTruth:
    """A measured-transfer CSV (source,target,affinity) from an upload (read in memory)."""
    return GroundTruth.from_csv(data, name=Path(file_name).stem[:80] or "uploaded")


# ---- deferred changes of sidebar choices ---------------------------------------------------
def defer(message: str = "", **changes: object) -> None:
    """Change shared choices from a page (the sidebar is already drawn in this run): set them and
    start a new run at once; ``message`` is shown once there (:func:`flash`)."""
    for key, value in changes.items():
        st.session_state[key] = value
    if message:
        st.session_state.flash = message
    st.rerun()


def flash() -> None:
    """Show (once) the message left by :func:`defer`."""
    message = st.session_state.pop("flash", "")
    if message:
        st.success(message, icon=":material/check_circle:")


def add_probes(ps: ProbeSet) -> None:
    """Keep an uploaded probe set in this session and choose it in the sidebar."""
    st.session_state.uploaded_probes[ps.digest] = ps
    _upload_labels()[ps.digest] = f"uploaded: {ps.name} ({len(ps)})"
    defer(f"Using {len(ps)} probe images from {ps.name!r}.", probe_set=f"uploaded:{ps.digest}", probe_count=len(ps))


def check_file(path: str) -> Path:
    return check_path(path, "file", policy())
