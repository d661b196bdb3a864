"""The app in a real browser: start the server, open every page, move λ, check that charts render and
no exception box appears, and save screenshots (``out/screenshots/``, or ``$DEPARA_SCREENSHOTS``).

Needs the ``playwright`` package and Debian's Chromium (``apt-get install -y chromium``); skipped
with the reason otherwise. Run: ``pytest -m slow tests/e2e``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DEPARA_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("DEPARA_SCREENSHOTS", ROOT / "out" / "screenshots"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PAGES = [("Setup", False), ("Attribution maps", True), ("Edges", True), ("Layer selection", False), ("Present", True), ("Task transferability", True)]

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (pip install playwright)")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, or set DEPARA_CHROMIUM)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve(cache: Path, log_dir: Path) -> Iterator[str]:
    """``streamlit run app.py`` on a free localhost port with ``cache`` and 8 probes."""
    port = _free_port()
    env = {**os.environ, "DEPARA_CACHE_DIR": str(cache), "DEPARA_PROBE_COUNT": "8", "PYTHONUNBUFFERED": "1"}
    log = (log_dir / f"server-{port}.log").open("w")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}; see {log.name}")
        else:
            pytest.fail("the server did not answer within 90 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def server(cache, tmp_path_factory) -> Iterator[str]:
    """The app on an empty cache, for the whole module."""
    with _serve(cache, tmp_path_factory.mktemp("log")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 2000})
    pg = context.new_page()
    pg.set_default_timeout(240_000)
    yield pg
    context.close()


def _settle(pg, timeout: float = 240_000) -> None:
    """Wait until the script has finished (a rerun may start a moment after an action)."""
    pg.wait_for_timeout(700)
    pg.wait_for_selector(IDLE, timeout=timeout)
    pg.wait_for_timeout(500)


def _shot(pg, name: str) -> None:
    """A full-page screenshot under ``SHOTS`` (for the README and for reading a failure)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    path.unlink(missing_ok=True)
    pg.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000, f"screenshot {path} is empty"


def _no_exception(pg, where: str) -> None:
    boxes = pg.locator("[data-testid='stException']")
    assert boxes.count() == 0, f"exception box on {where}: {boxes.first.inner_text()[:500]}"


def _on_start_page(pg, server: str) -> None:
    """Have ``pg`` show the app's start page (Task transferability) with its figures: each test that
    needs it gets there itself, whichever tests ran before."""
    if not pg.url.startswith(server):
        pg.goto(server)
    if pg.locator("h1:has-text('Task transferability')").count() == 0:
        _open(pg, "Task transferability")
    pg.wait_for_selector(".js-plotly-plot", timeout=300_000)
    _settle(pg)


def test_first_run_shows_matrix_and_tree(page, server, browser):
    """Two sessions open the app at once on an empty cache: both compute and draw, neither breaks."""
    other = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    page.goto(server)
    other.goto(server)
    for pg in (page, other):
        pg.wait_for_selector(".js-plotly-plot", timeout=300_000)  # computed with progress, then drawn
        _settle(pg)
        _no_exception(pg, "first run")
    other.context.close()
    assert page.locator(".js-plotly-plot").count() >= 3  # tree, matrix, ranking
    assert page.get_by_text("Task transferability").first.is_visible()
    _shot(page, "01-first-run")


def test_a_restarted_server_shows_the_last_results_while_it_loads(browser, server, cache, tmp_path):
    """A second server on the first one's cache: a new session first draws the kept results of its
    start page, marked as such, then the checked ones replace them."""
    first = browser.new_context().new_page()
    first.goto(server)  # a session on the first server computes (or reads) the start page's results and keeps them
    first.wait_for_selector(".js-plotly-plot", timeout=300_000)
    _settle(first)
    first.context.close()
    with _serve(cache, tmp_path) as url:
        pg = browser.new_context(viewport={"width": 1500, "height": 1400}).new_page()
        pg.goto(url)
        pg.wait_for_selector("text=last results of this start page", timeout=120_000)
        pg.wait_for_selector(".js-plotly-plot", timeout=60_000)  # the kept tree and matrix, drawn before the engine is loaded
        pg.wait_for_selector("text=last results of this start page", state="detached", timeout=240_000)
        _settle(pg)
        _no_exception(pg, "restart")
        assert pg.locator(".js-plotly-plot").count() >= 3 and pg.locator("h1:has-text('Task transferability')").count() == 1
        pg.context.close()


def _slider_value(pg) -> float:
    return float(pg.locator("[data-testid='stSlider'] [data-testid='stSliderThumbValue']").first.inner_text())


def test_lambda_slider_updates_live(page, server):
    _on_start_page(page, server)
    before = _slider_value(page)
    page.locator("[data-testid='stSlider'] input[type='range']").first.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    _settle(page)
    after = _slider_value(page)
    assert after > before
    page.wait_for_selector(f".js-plotly-plot:has-text('s = s_V + {after:g}·s_E')", timeout=30_000)  # the matrix followed
    _no_exception(page, "λ change")
    assert page.locator(".js-plotly-plot").count() >= 3
    _shot(page, "02-lambda-moved")


SWEEP = "[...document.querySelectorAll('.js-plotly-plot')].find(g => g._transitionData && g._transitionData._frames.length)"


def _sweep_step(pg, label: str) -> None:
    """Click the λ sweep's own slider where its step ``label`` is, as a person would."""
    box = pg.evaluate(f"""(label) => {{
        const gd = {SWEEP};
        gd.querySelector('.slider-rail-rect').scrollIntoView({{block: 'center'}});
        const text = [...gd.querySelectorAll('.slider-label')].find(t => t.textContent === label).getBoundingClientRect();
        const rail = gd.querySelector('.slider-rail-rect').getBoundingClientRect();
        return [text.x + text.width / 2, rail.y + rail.height / 2];
    }}""", label)
    pg.mouse.click(*box)


def test_lambda_in_the_browser_moves_first_and_the_page_follows(page, server):
    """The λ-sweep figure: its own slider redraws tree, matrix and ranking in the browser at once;
    when it comes to rest the page's λ (slider, address) follows, and the server's rerun leaves the
    figure where the person put it."""
    _on_start_page(page, server)
    page.get_by_text("λ in the browser", exact=True).click()
    _settle(page)
    page.wait_for_function(f"() => {SWEEP} !== undefined", timeout=60_000)
    leaves = page.evaluate(f"() => {SWEEP}.layout.yaxis.ticktext.join()")
    page.evaluate(f"() => {{ const gd = {SWEEP}; gd.__redrawn = 0; gd.on('plotly_react', () => gd.__redrawn++); }}")
    for label in ("0", "3"):
        _sweep_step(page, label)
        page.wait_for_function(f"() => {SWEEP}.layout.title.text.startsWith('s = s_V + {label}·s_E')", timeout=10_000)
        page.wait_for_function(f"() => window.location.search.includes('lam={label}&') || window.location.search.endsWith('lam={label}')", timeout=30_000)
        _settle(page)
        assert _slider_value(page) == float(label)  # the page's λ followed the figure
        # the server's rerun did not draw the figure again (no Plotly.react) and it still shows the chosen λ
        assert page.evaluate(f"() => {SWEEP}.__redrawn === 0 && {SWEEP}.layout.title.text.startsWith('s = s_V + {label}·s_E')")
    drawn = page.evaluate(f"() => [...{SWEEP}.querySelectorAll('.yaxislayer-above .ytick text')].map(t => t.textContent).join()")
    frame3 = page.evaluate(f"() => {SWEEP}._transitionData._frames.find(f => f.name === '3').layout.yaxis.ticktext.join()")
    assert drawn.startswith(frame3.split(",")[0]) and frame3 in drawn  # the tree's leaves as frame λ=3 orders them
    assert page.get_by_text("page's λ (now 3)").count() == 1
    _shot(page, "02b-lambda-in-the-browser")
    print(f"leaves at the first λ: {leaves}; at λ=3: {frame3}")
    page.get_by_text("λ in the browser", exact=True).click()  # back to the views that follow the page's λ
    _settle(page)
    page.wait_for_selector(".js-plotly-plot:has-text('s = s_V + 3·s_E')", timeout=30_000)  # the matrix at the figure's last λ
    _no_exception(page, "λ in the browser")


def test_a_copied_address_reopens_the_view_in_another_browser(page, browser, server):
    """The address follows λ; opened in a second browser context it shows the same λ and matrix,
    and nothing on the page asks a host other than the app's own server (the app works offline)."""
    _on_start_page(page, server)
    lam = _slider_value(page)
    page.wait_for_function(f"() => window.location.search.includes('lam={lam:g}')", timeout=30_000)
    link = page.url
    context = browser.new_context(viewport={"width": 1500, "height": 2000})
    other = context.new_page()
    other.set_default_timeout(240_000)
    foreign: list[str] = []
    other.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else foreign.append(r.url))
    other.goto(link)
    other.wait_for_selector(f".js-plotly-plot:has-text('s = s_V + {lam:g}·s_E')", timeout=300_000)
    _settle(other)
    _no_exception(other, "shared link")
    assert _slider_value(other) == lam
    context.close()
    assert not foreign, f"requests to other hosts: {foreign[:5]}"


@pytest.mark.parametrize("title,charts", PAGES)
def test_every_page(page, server, title, charts):
    if not page.url.startswith(server):
        _on_start_page(page, server)
    page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
    _settle(page)
    page.wait_for_selector(f"h1:has-text('{title}')")
    _no_exception(page, title)
    if charts:
        page.wait_for_selector(".js-plotly-plot")
        assert page.locator(".js-plotly-plot").count() >= 1
    if title == "Layer selection":
        page.get_by_role("button", name="Score the").click()
        _settle(page)
        page.wait_for_selector(".js-plotly-plot")
        _no_exception(page, "layer scoring")
    _shot(page, f"page-{title.lower().replace(' ', '-')}")


def test_the_exported_bundle_opens_offline_with_whole_labels_and_coloured_curves(page, browser, server, tmp_path):
    """The bundle's report and summary open from disk in a browser that has no network; every model's
    name is drawn in full inside its figure (not cut by a margin) and the curves are not black."""
    _on_start_page(page, server)
    with page.expect_download(timeout=300_000) as info:
        page.locator("[data-testid='stSidebar']").get_by_role("button", name="Export bundle").click()
    with zipfile.ZipFile(info.value.path()) as z:
        z.extractall(tmp_path)
        names = json.loads(z.read("settings.json"))["link"]["models"].split(",")
    context = browser.new_context(offline=True, viewport={"width": 1500, "height": 1200})
    try:
        report = context.new_page()
        report.goto((tmp_path / "report.html").as_uri())
        report.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        report.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg'))", timeout=60_000)
        labels = report.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(plot => {
            const box = plot.getBoundingClientRect();
            const title = (plot.querySelector('.gtitle') || {}).textContent || '';
            return [...plot.querySelectorAll('.ytick text, .xtick text')].map(t => {
                const r = t.getBoundingClientRect();
                return {text: t.textContent, figure: title, left: r.left - box.left, right: box.right - r.right,
                        inside: box.width === 0 || (r.left >= box.left - 1 && r.right <= box.right + 1)};
            });
        })""")
        drawn = {label["text"] for label in labels}
        assert all(name in drawn for name in names), sorted(set(names) - drawn)[:5]
        cut = [(label["text"], label["figure"][:60], round(label["left"]), round(label["right"])) for label in labels if label["text"] in names and not label["inside"]]
        assert not cut, f"labels cut by the figure's edge (label, figure, room left, room right): {cut[:5]}"
        strokes = report.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line')]
            .map(p => getComputedStyle(p).stroke)""")
        assert len(set(strokes)) >= 3 and not all(s in ("rgb(0, 0, 0)", "none") for s in strokes), strokes[:8]
        summary = context.new_page()
        summary.goto((tmp_path / "summary.html").as_uri())
        summary.wait_for_selector("img.svg, .js-plotly-plot", timeout=60_000)
        assert summary.locator("img.svg, .js-plotly-plot").count() >= 3
    finally:
        context.close()


def _click_until(pg, button, shown, attempts: int = 3, wait_ms: float = 30_000) -> None:
    """Click ``button`` until ``shown`` appears, as a person would click again: a click that lands
    while the page is still redrawing from the previous action can be dropped by the browser."""
    for attempt in range(attempts):
        button.click()
        try:
            shown.wait_for(timeout=wait_ms)
            return
        except sync_api.TimeoutError:
            if attempt == attempts - 1:
                _shot(pg, "click-not-taken")
                raise


def _open(pg, title: str, attempts: int = 12) -> None:
    """Click ``title`` in the page list until that page's title shows: a click that lands while the
    page redraws a running computation's progress can be dropped, as :func:`_click_until` says (a
    second click on the page being opened only draws it again)."""
    _click_until(pg, pg.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True), pg.locator(f"h1:has-text('{title}')").first, attempts, wait_ms=5_000)


def _progress_texts(pg) -> list[str]:
    return pg.locator("[data-testid='stProgress']").all_inner_texts()


def _wait_for_progress(pg, pattern: str, timeout: float = 240_000) -> re.Match:
    """Wait until a progress bar's text matches ``pattern`` (a regular expression); its match."""
    pg.wait_for_function("(p) => [...document.querySelectorAll(\"[data-testid='stProgress']\")].some(e => new RegExp(p, 'm').test(e.innerText))", arg=pattern, timeout=timeout)
    return next(m for t in _progress_texts(pg) if (m := re.search(pattern, t, re.M)))


JOB_LABELS = """() => [...document.querySelectorAll("[data-testid='stMain'] [data-testid='stExpander']")]
    .filter(e => e.checkVisibility()).flatMap(e => e.innerText.split('\\n'))
    .filter(t => /^(Computing|Computed|Stopped|Failed)/.test(t))"""
"""The labels of the status boxes on the page (beside the label, a box's text holds its icon's name)."""


def _wait_until_stopped(pg) -> str:
    """Wait until the page's status box says the computation stopped (and none says it computes); its label."""
    try:
        pg.wait_for_function(f"() => {{ const l = ({JOB_LABELS})(); return l.some(t => t.startsWith('Stopped')) && !l.some(t => t.startsWith('Computing')); }}", timeout=120_000)
    except sync_api.TimeoutError:
        _shot(pg, "not-stopped")
        pytest.fail(f"the computation did not stop; the page's status boxes say: {pg.evaluate(JOB_LABELS)}")
    return next(t for t in pg.evaluate(JOB_LABELS) if t.startswith("Stopped"))


def _missing(pg) -> tuple[int, int]:
    """The Compute prompt's "K of N attribution graphs … still need computing" as (K, N)."""
    prompt = pg.get_by_text("still need computing").first
    prompt.wait_for()
    k, n = re.search(r"(\d+) of (\d+) attribution graphs", prompt.inner_text()).groups()
    return int(k), int(n)


def test_stop_then_resume_from_cache(page, server):
    """New choices wait for Compute; Stop keeps what is done and says where; Compute again goes on
    from there; the computation goes on across a page switch (the next page follows it) to the end."""
    page.goto(server)  # a new session on the start page's choices
    _on_start_page(page, server)
    sidebar = page.locator("[data-testid='stSidebar']")
    assert "autoencoding" in sidebar.inner_text()  # the embedded mini-taskonomy zoo of 29 models
    # every layer on 1000 probes: about 100 s on two cores; the steps below wait for progress, never
    # for time, so a faster or a slower machine passes too
    probes = sidebar.locator("[data-testid='stNumberInput'] input").first
    probes.fill("1000")
    probes.press("Enter")
    _settle(page)
    sidebar.locator("[data-testid='stRadio']").filter(has_text="Layers").get_by_text("all (layer selection)").click()
    _settle(page)
    left, total = _missing(page)
    assert left == total and total % 29 == 0 and total > 29  # every layer of 29 models
    per_model = total // 29
    stop = page.locator("[class*='st-key-stop_compute'] button:visible:not([disabled])").first  # a stale, hidden copy may linger from an earlier run
    _click_until(page, page.get_by_role("button", name="Compute", exact=True).first, stop)
    _wait_for_progress(page, r"^model ([3-9]|[12]\d)/29:")  # two models are done
    stop.click()
    assert re.match(r"Stopped (while|before) computing '\w+'", _wait_until_stopped(page))  # where it stopped
    left, _ = _missing(page)
    assert left <= total - 2 * per_model  # the finished models' layers are kept
    _shot(page, "03-stopped")
    page.get_by_role("button", name="Compute", exact=True).first.click()
    resumed = _wait_for_progress(page, r"^model \d+/(1?\d|2[0-8]):")  # not the stopped run's "…/29"
    assert int(resumed.group(1)) <= 27, resumed.group(0)  # only the models not finished are computed
    _open(page, "Attribution maps")  # leave while it computes
    # the next page follows the same computation (or shows that it has just ended), never a new prompt
    page.wait_for_function(f"() => ({JOB_LABELS})().some(t => t.startsWith('Computing attribution graphs') || t.startsWith('Computed attribution graphs'))")
    page.wait_for_selector("[data-testid='stImage'], .js-plotly-plot", timeout=600_000)  # the rest, then the maps
    _open(page, "Task transferability")
    page.wait_for_selector(".js-plotly-plot:has-text('task tree')", timeout=600_000)
    _settle(page)
    _no_exception(page, "resumed computation")
    _shot(page, "04-resumed")

