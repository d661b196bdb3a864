"""The export bundle for a meeting: one zip with a compact summary, every figure and table, the task
tree as Newick and the settings the app can reopen.

Contents:

- ``summary.html``: the presentation figures (:mod:`depara_core.session.slides`: the task tree,
  the similarity matrix, the ranking for the target, the comparison with measured transfer and
  the layer charts), as static SVG pictures (no plotly.js:
  small, opens at once; interactive instead when static export is not available here);
- ``report.html``: the full interactive report (:mod:`depara_core.session.report`);
- ``figures/*.svg`` and ``figures/*.png`` (when static export works), ``tables/*.csv``;
- ``task_tree.nwk``: the tree of the similarity matrix at λ;
- ``settings.json``: the view's link parameters (:mod:`depara_core.session.link`), which the
  Setup page reopens.

>>> from depara_core.session.workspace import demo_workspace
>>> ws = demo_workspace()
>>> import io, zipfile
>>> names = zipfile.ZipFile(io.BytesIO(build_bundle(ws, 1.0, static=False))).namelist()
>>> [n for n in names if not n.startswith(("figures/", "tables/"))]
['summary.html', 'report.html', 'task_tree.nwk', 'settings.json', 'README.txt']
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping

from depara_core import __version__
from depara_core.compare.tree import task_tree
from depara_core.errors import DeparaError
from depara_core.evaluation.ground_truth import GroundTruth
from depara_core.evaluation.layers import LayerTruth
from depara_core.session.report import Report, assemble, slug, static_export_available, static_images
from depara_core.session.slides import MapsShown, Slide, slides
from depara_core.session.workspace import Workspace
from depara_core.viz.display import MapDisplay

__all__ = ["build_bundle", "read_settings", "SETTINGS_FORMAT"]

SETTINGS_FORMAT = 1


def build_bundle(
    ws: Workspace,
    lam: float,
    *,
    target: str | None = None,
    ground_truth: GroundTruth | None = None,
    layer_truth: LayerTruth | None = None,
    link: Mapping[str, str] | None = None,
    static: bool | str = "auto",
    method: str = "DEPARA",
    display: MapDisplay | None = None,
    maps: MapsShown | None = None,
) -> bytes:
    """The zip archive of ``ws`` at ``lam`` (see the module's description), as bytes.

    ``method``: whose matrix and ranking the summary shows (as the presentation view does).
    ``display``: how the report draws attribution maps (as the app's page does); ``maps``: the
    attribution maps the summary shows (none by default).

    ``static``: draw SVG and PNG copies with kaleido (``"auto"``: when it is available here).
    """
    rep = assemble(ws, lam, target=target, ground_truth=ground_truth, layer_truth=layer_truth, display=display)
    draw = static is True or (static == "auto" and static_export_available())
    svgs, problem = static_images(rep.figures, "svg") if draw else ({}, "static export is not available here (kaleido with Chrome or Chromium)")
    pngs, png_problem = static_images(rep.figures, "png") if draw and svgs else ({}, problem)
    deck = slides(ws, lam, target=target, ground_truth=ground_truth, layer_truth=layer_truth, method=method, maps=maps)
    summary = _summary(rep, deck)
    # the slides' own pictures: their matrix and ranking are the chosen method's, the report's DEPARA's
    slide_svgs = static_images([(s.title, s.figure) for s in deck], "svg")[0] if svgs else {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("summary.html", summary.html(png=False, svgs=slide_svgs if len(slide_svgs) == len(deck) else None))
        z.writestr("report.html", rep.html(png=False))
        for name, fig in rep.figures:
            stem = f"figures/{slug(name)}"
            if name in svgs:
                z.writestr(f"{stem}.svg", svgs[name])
            if name in pngs:
                z.writestr(f"{stem}.png", pngs[name])
            else:
                z.writestr(f"{stem}.json", fig.to_json())  # plotly's own format: redrawn by plotly.io.from_json
        for name, kind, payload in rep.items:
            if kind == "table":
                z.writestr(f"tables/{slug(name)}.csv", payload.to_csv(index=False))
        tree = task_tree(ws.terms.combined(lam), ws.terms.names)
        z.writestr("task_tree.nwk", tree.newick() + "\n")
        settings = {"format": SETTINGS_FORMAT, "app": "DEPARA Explorer", "version": __version__, "link": dict(link or {}), "lam": lam}
        z.writestr("settings.json", json.dumps(settings, indent=2))
        z.writestr("README.txt", _readme(ws, lam, bool(svgs), problem or png_problem))
    return buf.getvalue()


def read_settings(data: bytes) -> dict[str, str]:
    """The link parameters in a bundle's ``settings.json`` (or the zip itself), to be checked by
    :func:`depara_core.session.link.read_link` like any link."""
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                data = z.read("settings.json")
        except (zipfile.BadZipFile, KeyError):
            raise DeparaError("the file is a zip without settings.json", "choose an export bundle of this app, or its settings.json") from None
    try:
        settings = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DeparaError("the settings file is not JSON", "choose the settings.json of an export bundle") from None
    if not isinstance(settings, dict) or settings.get("format") != SETTINGS_FORMAT:
        raise DeparaError("the settings file is not of this app's format", "choose the settings.json of an export bundle")
    link = settings.get("link")
    if not isinstance(link, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in link.items()):
        raise DeparaError("the settings file holds no view", "choose the settings.json of an export bundle")
    return link


def _summary(rep: Report, deck: list[Slide]) -> Report:
    """The slide-ready report: ``rep``'s header, then each slide's figure (and table)."""
    out = Report("DEPARA Explorer summary", list(rep.meta))
    for slide in deck:
        out.figure(slide.title, slide.figure)
        if slide.table is not None and slide.title == "precision–recall":
            out.table("methods", slide.table)
    return out


def _readme(ws: Workspace, lam: float, drawn: bool, problem: str) -> str:
    lines = [
        "DEPARA Explorer export",
        f"models: {', '.join(ws.names)}; probes: {ws.probes.name} ({len(ws.probes)}); {ws.terms.formula(lam)}",
        "",
        "summary.html   the main figures, for slides",
        "report.html    every figure (interactive) and table",
        "figures/       every figure as SVG and PNG" if drawn else f"figures/       every figure as plotly JSON (SVG/PNG not drawn: {problem})",
        "tables/        every table as CSV",
        "task_tree.nwk  the task similarity tree (Newick)",
        "settings.json  the view; reopen it on the app's Setup page",
    ]
    return "\n".join(lines) + "\n"
