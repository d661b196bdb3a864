"""One self-contained HTML report of a workspace: every figure (interactive, plotly.js inlined once)
and every table (with a CSV link), readable offline and easy to mail or show in a group meeting.

PNG copies of the figures are added when static export works (kaleido with Chrome/Chromium
installed); without it the report is complete all the same.

>>> from depara_core.session.workspace import demo_workspace
>>> ws = demo_workspace()
>>> html = build_report(ws, lam=1.0, png=False)
>>> html.startswith("<!DOCTYPE html>") and "similarity matrix" in html
True
"""

from __future__ import annotations

import base64
import html
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from depara_core import __version__
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.lambda_cv import suggest_lambda
from depara_core.evaluation.layers import LayerTruth
from depara_core.evaluation.methods import evaluate_methods
from depara_core.evaluation.ranking import ground_truth_for
from depara_core.session.workspace import Workspace
from depara_core.viz import plots
from depara_core.viz.display import MapDisplay
from depara_core.viz.sweep import MAX_SWEEP_MODELS, lambda_sweep
from depara_core.viz.views import attribution_grid_view, edge_view, layer_view, ranking_view, task_view

__all__ = ["Report", "assemble", "build_report", "write_report", "static_export_available", "static_images", "slug"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#1f2430;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #e3e6ee;padding-bottom:.3rem;margin-top:2.5rem}
.meta{color:#5b6275;font-size:.92rem}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #dde1ea;padding:.25rem .5rem;text-align:right}th{background:#f3f5f9}
td:first-child,th:first-child{text-align:left}.fig{margin:1rem 0}.note{color:#5b6275;font-size:.85rem}
nav a{margin-right:1rem}details{margin:.3rem 0}img.png{max-width:100%;border:1px solid #eee}img.svg{max-width:100%}
"""


def static_export_available() -> bool:
    """True when kaleido can draw PNGs here (it needs Chrome or Chromium)."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return bool(os.environ.get("BROWSER_PATH") or any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome")))


@dataclass
class Report:
    """An ordered list of sections holding figures and tables; :meth:`html` renders them."""

    title: str
    meta: list[tuple[str, str]] = field(default_factory=list)
    items: list[tuple[str, str, object]] = field(default_factory=list)  # (section, kind, payload)

    def section(self, title: str) -> None:
        self.items.append((title, "section", None))

    def figure(self, name: str, fig: go.Figure) -> None:
        self.items.append((name, "figure", fig))

    def table(self, name: str, df: pd.DataFrame) -> None:
        self.items.append((name, "table", df))

    def text(self, body: str) -> None:
        self.items.append(("", "text", body))

    @property
    def figures(self) -> list[tuple[str, go.Figure]]:
        return [(n, p) for n, k, p in self.items if k == "figure"]

    def html(self, png: bool | str = "auto", svgs: dict[str, bytes] | None = None) -> str:
        """The whole report as one HTML document (plotly.js inlined once). With ``svgs`` (figure name
        → SVG) the figures are those static pictures instead, and no plotly.js is needed: a small file."""
        want_png = svgs is None and (png is True or (png == "auto" and static_export_available()))
        images, png_problem = static_images(self.figures) if want_png else ({}, "")
        pngs = {name: base64.b64encode(data).decode() for name, data in images.items()}
        meta = self.meta + ([("PNG copies", f"not drawn: {png_problem}")] if png_problem else [])
        sections = [n for n, k, _ in self.items if k == "section"]
        out = [
            "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>",
            ("</head><body>" if svgs is not None else f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"),
            f"<h1>{html.escape(self.title)}</h1>",
            "<div class='meta'>" + "<br>".join(f"<b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in meta) + "</div>",
            "<nav>" + "".join(f"<a href='#s{i}'>{html.escape(s)}</a>" for i, s in enumerate(sections)) + "</nav>",
        ]  # fmt: skip
        section_no = 0
        for name, kind, payload in self.items:
            if kind == "section":
                out.append(f"<h2 id='s{section_no}'>{html.escape(name)}</h2>")
                section_no += 1
            elif kind == "text":
                out.append(f"<p class='note'>{html.escape(str(payload))}</p>")
            elif kind == "figure" and svgs is not None:
                svg = svgs.get(name)
                pic = f"<img class='svg' alt='{html.escape(name)}' src='data:image/svg+xml;base64,{base64.b64encode(svg).decode()}'>" if svg else "<p class='note'>(not drawn)</p>"
                out.append(f"<div class='fig'><h3>{html.escape(name)}</h3>{pic}</div>")
            elif kind == "figure":
                div = pio.to_html(payload, full_html=False, include_plotlyjs=False, auto_play=False, config=plots.figure_config(f"{slug(name)}.svg"))
                extra = f"<details><summary>PNG</summary><img class='png' alt='{html.escape(name)}' src='data:image/png;base64,{pngs[name]}'></details>" if name in pngs else ""
                out.append(f"<div class='fig'><h3>{html.escape(name)}</h3>{div}{extra}</div>")
            else:
                df: pd.DataFrame = payload
                csv = base64.b64encode(df.to_csv(index=False).encode()).decode()
                out.append(
                    f"<h3>{html.escape(name)}</h3>"
                    + df.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, escape=True)
                    + f"<a download='{slug(name)}.csv' href='data:text/csv;base64,{csv}'>CSV</a>"
                )
        out.append("</body></html>")
        return "\n".join(out)


def slug(name: str) -> str:
    """A file-name stem for a figure or table name."""
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:80] or "figure"


def static_images(figures: list[tuple[str, go.Figure]], fmt: str = "png", attempts: int = 3) -> tuple[dict[str, bytes], str]:
    """``fmt`` (png or svg) files of ``figures`` drawn by kaleido in batches, and what was not drawn ("" when all were).

    The browser kaleido drives can fail to start, or drop a file, on a busy machine: figures
    missing after a batch are drawn again, up to ``attempts`` batches. What is still missing is said
    in the returned problem (the reports say it in their header).
    """
    done: dict[str, bytes] = {}
    todo = list(figures)
    problem = ""
    for _ in range(attempts):
        if not todo:
            break
        with tempfile.TemporaryDirectory() as tmp:
            paths = [Path(tmp) / f"{i}.{fmt}" for i in range(len(todo))]
            try:
                pio.write_images([f for _, f in todo], paths, format=fmt, scale=2 if fmt == "png" else 1)
            except Exception as exc:  # noqa: BLE001 - any failure of the external browser means "not drawn", said in the report
                problem = f"static export failed ({type(exc).__name__}: {str(exc)[:200]})"
            done.update({name: p.read_bytes() for (name, _), p in zip(todo, paths) if p.is_file() and p.stat().st_size})
        todo = [(n, f) for n, f in todo if n not in done]
    if not todo:
        return done, ""
    missing = ", ".join(n for n, _ in todo[:5]) + ("…" if len(todo) > 5 else "")
    return done, problem or f"static export left out {len(todo)} figure(s): {missing}"


def build_report(
    ws: Workspace,
    lam: float = 1.0,
    *,
    target: str | None = None,
    ground_truth: GroundTruth | None = None,
    layer_truth: LayerTruth | None = None,
    relevant: int = 5,
    probes_shown: int = 6,
    png: bool | str = False,
    display: MapDisplay | None = None,
) -> str:
    """The report of ``ws`` at ``lam`` as an HTML string (see :class:`Report`)."""
    return assemble(ws, lam, target=target, ground_truth=ground_truth, layer_truth=layer_truth, relevant=relevant, probes_shown=probes_shown, display=display).html(png)


def assemble(ws: Workspace, lam: float, *, target=None, ground_truth=None, layer_truth=None, relevant=5, probes_shown=6, display: MapDisplay | None = None) -> Report:
    """Every figure and table of the workspace, in reading order; the attribution maps drawn as
    ``display`` says (default :class:`~depara_core.viz.display.MapDisplay`), e.g. as the app shows them."""
    if ws.terms is None:
        raise DeparaError("the workspace has no results yet", "compute before exporting a report")
    terms, cfg = ws.terms, ws.config
    from importlib.metadata import version

    rep = Report("DEPARA Explorer report")
    rep.meta += [
        ("created", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("zoo", cfg.zoo or "(added models)"), ("models", ", ".join(ws.names)),
        ("probes", f"{ws.probes.name}: {len(ws.probes)} images of {ws.probes.size[0]}x{ws.probes.size[1]} px" + (f" ({ws.probes.licence})" if ws.probes.licence else "")),
        ("conventions", f"{cfg.conventions.name}: {cfg.conventions.description}"),
        ("attribution", cfg.method), ("λ", f"{lam:g} ({terms.formula(lam)})"),
        ("software", f"depara_core {__version__}, torch {version('torch')}, Python {platform.python_version()}"),
    ]  # fmt: skip
    rep.meta += [("note", n) for n in ws.notes]

    rep.section("Task transferability")
    view = task_view(terms, lam)
    rep.figure("task tree", view.tree_fig)
    rep.figure("similarity matrix", view.matrix_fig)
    for label, matrix in (("s(λ)", view.matrix), ("s_V", terms.s_V), ("s_E", terms.s_E), ("RSA", terms.rsa), ("CKA", terms.cka), *terms.baselines.items()):
        if matrix is not None:
            rep.table(f"{label} (rows: source, columns: target)", pd.DataFrame(matrix, index=terms.names, columns=terms.names).reset_index(names="source"))
    if 3 <= len(terms.names) <= MAX_SWEEP_MODELS:
        rep.figure("λ sweep (the figure's slider moves λ)", lambda_sweep(terms, target if target in terms.names else terms.names[0], lam))
    for t in [target] if target in terms.names else terms.names:
        fig, table = ranking_view(terms, t, lam)
        rep.figure(f"ranking of sources for {t}", fig)
        rep.table(f"ranking of sources for {t}", table)

    if ground_truth is not None:
        rep.section("Against measured transfer")
        try:
            gt = ground_truth_for(terms.names, ground_truth)
            r = max(1, min(relevant, min(len(gt.candidates(t)) for t in gt.targets)))
            ev = evaluate_methods(terms, gt, lam, r)
            rep.figure("precision–recall", plots.pr_curve(ev.pr_points()))
            rep.figure("precision and recall at K", plots.precision_recall_at_k(ev.curves))
            rep.table("methods", ev.summary)
            rep.table("P@K and R@K", ev.curves)
            sug = suggest_lambda(terms, gt, relevant=r)
            rep.text(sug.text)
            rep.table("λ chosen without each target (leave-one-target-out)", sug.folds)
        except DeparaError as exc:
            rep.text(str(exc))

    rep.section("Attribution maps")
    display = display or MapDisplay()
    rep.text(f"Shown as: {display.describe()} (display only: the graphs are as computed).")
    idx = list(range(min(probes_shown, len(ws.probes))))
    names = list(ws.names)
    for start in range(0, len(names), 6):
        chunk = names[start : start + 6]
        try:
            cols = [(n, ws.graph(n), ws.model(n).spec.preprocess) for n in chunk]
            rep.figure(f"attribution maps ({', '.join(chunk)})", attribution_grid_view(cols, ws.probes, idx, display))
        except DeparaError as exc:
            rep.text(str(exc))

    rep.section("Edges")
    for n in names:
        rep.figure(f"edges of {n}", edge_view(ws.graph(n), title=f"{n} / {ws.encoder(n)}"))

    if ws.layer_results:
        rep.section("Layer selection")
        for (source, tgt), scores in list(ws.layer_results.items()):  # a copy: the session may add more meanwhile
            measured = layer_truth.series(source, tgt, scores.layers) if layer_truth is not None else None
            fig, table = layer_view(scores, lam, [ws.layer_label(source, layer) for layer in scores.layers], measured, layer_truth.name if layer_truth else "measured transfer")
            rep.figure(f"layers of {source} for {tgt}", fig)
            rep.table(f"layers of {source} for {tgt}", table)

    rep.section("Probes")
    rep.table("probe images", pd.DataFrame({"index": range(len(ws.probes)), "id": ws.probes.ids}))
    return rep


def write_report(path: str | os.PathLike, ws: Workspace, lam: float = 1.0, **kwargs) -> Path:
    """Write :func:`build_report` to ``path`` and return it."""
    out = Path(path)
    out.write_text(build_report(ws, lam, **kwargs), encoding="utf-8")
    return out
