"""The book as a reader gets it: ``jupyter-book build book/`` on the committed pages (a copy of this checkout's book/,
nothing executed), with warnings as errors; every page opened in headless Chromium (each experiment page shows an
image, no table is wider than the page's content area, no page shows a Python traceback); the explorer page's
ipywidgets render offline from local scripts only."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drlib.book import execute_all
from drlib.utils import REPO_ROOT

pytestmark = pytest.mark.slow     # full tier only (`pytest --full`, `make test`)

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
VIEWPORT = (1280, 1000)          # a laptop screen, CSS pixels
# Injected into a copy of each built page: once the page has loaded, measure it and leave the result in the DOM that
# `chromium --dump-dom` prints.
CHECK_JS = """
<script>
window.addEventListener('load', () => setTimeout(() => {
  const area = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const cs = getComputedStyle(area);
  const limit = area.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const tables = [...area.querySelectorAll('table')].map(t => ({
    width: Math.max(t.scrollWidth, t.getBoundingClientRect().width),
    head: (t.innerText || '').replace(/\\s+/g, ' ').slice(0, 80)}));
  const images = [...area.querySelectorAll('img')].map(i => ({src: i.getAttribute('src'),
                                                             loaded: i.complete && i.naturalWidth > 0}));
  const out = document.createElement('pre');
  out.id = 'drlib-check';
  out.textContent = JSON.stringify({limit, tables, images, text: area.innerText,
                                    tracebacks: area.querySelectorAll('.traceback, .output.error').length});
  document.body.appendChild(out);
}, 300));
</script>
"""


def _widget_state(nb: dict) -> dict:
    return nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state") or {}


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """``jupyter-book build book/ -W -n`` on a copy of the committed book (run once for this module)."""
    tmp = tmp_path_factory.mktemp("book")
    root = tmp / "repo"
    shutil.copytree(REPO_ROOT / "book", root / "book", symlinks=True, ignore=shutil.ignore_patterns("_build"))
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / f, root / f)
    explorer = root / "book" / "generated" / "08_explorer.ipynb"
    if not _widget_state(json.loads(explorer.read_text())):
        # The committed explorer page has no kept run to explore yet (issue 17, item 2): its widgets are checked on a
        # smoke-trained run (results and runs in a temporary store, as the ``tmp_results`` fixture).
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DRLIB_RESULTS", str(tmp / "results"))
            mp.setenv("DRLIB_RUNS", str(tmp / "runs"))
            execute_all(root / "book" / "generated", smoke=True, only=["08_explorer"])
    jb = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(jb), "build", "book/", "-W", "-n", "--keep-going"], cwd=root,
                         capture_output=True, text=True)
    return root, out


def _toc_files() -> list[str]:
    """Every page of ``_toc.yml``, root first."""
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    out = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                out.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))
    walk(toc.get("chapters"))
    walk(toc.get("parts"))
    return out


def test_book_builds_with_warnings_as_errors(built_book):
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "WARNING" not in out.stdout + out.stderr
    html = root / "_build" / "html"
    assert (html / "index.html").exists() and (html / "intro.html").exists()
    missing = [f for f in _toc_files() if not (html / f"{f}.html").exists()]
    assert not missing, missing
    assert "SASRec" in (html / "generated" / "02_main_table.html").read_text()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _offline(cmd: list[str]) -> list[str]:
    """``cmd`` without network: in an empty network namespace where allowed (the flags already block hosts)."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-n", *cmd]
    return cmd


def _chrome_cmd(chrome: str, profile: Path, url: str, budget_ms: int = 10000) -> list[str]:
    return _offline([chrome, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--user-data-dir={profile}", f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
                     # no network: unresolvable hosts and a dead proxy
                     "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
                     f"--virtual-time-budget={budget_ms}", "--dump-dom", url])


def _inspect(chrome: str, page: Path, profile: Path) -> dict:
    """Open a copy of ``page`` with :data:`CHECK_JS` in headless Chromium and return what the script measured."""
    probe = page.with_name(page.stem + ".check.html")
    text = page.read_text()
    probe.write_text(text.replace("</body>", CHECK_JS + "</body>") if "</body>" in text else text + CHECK_JS)
    res = subprocess.run(_chrome_cmd(chrome, profile, probe.as_uri()), capture_output=True, text=True, timeout=180)
    assert res.returncode == 0 and "</html>" in res.stdout, res.stderr[-2000:]
    from bs4 import BeautifulSoup
    pre = BeautifulSoup(res.stdout, "html.parser").find(id="drlib-check")
    assert pre is not None, f"the check script did not run on {page.name}: " + res.stderr[-2000:]
    return json.loads(pre.get_text())


@pytest.fixture(scope="module")
def inspected(built_book, tmp_path_factory):
    """What Chromium measured on every page of the table of contents: {toc file: measurements}."""
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    chrome = _chromium()
    if chrome is None:
        pytest.skip("no chromium binary on PATH (`make test` installs Debian's chromium when apt-get is available)")
    profile = tmp_path_factory.mktemp("chromium")
    html = root / "_build" / "html"
    return {f: _inspect(chrome, html / f"{f}.html", profile) for f in _toc_files()}


def test_every_experiment_page_shows_an_image(inspected):
    pages = [f for f in inspected if f.startswith("generated/")] + ["intro"]       # intro: the verdict figure
    assert len(pages) >= 12
    bad = {f: inspected[f]["images"] for f in pages if not any(i["loaded"] for i in inspected[f]["images"])}
    assert not bad, bad


# Pages whose wide tables are someone else's open work, each with the reason; an entry whose page has no wide table
# any more fails the test below, so that it is removed.
WIDE_TABLES_PENDING: dict[str, str] = {}


def test_no_table_is_wider_than_the_content_area(inspected):
    wide = {f: [(round(t["width"]), t["head"]) for t in m["tables"] if t["width"] > m["limit"] + 1]
            for f, m in inspected.items()}
    wide = {f: (round(inspected[f]["limit"]), w) for f, w in wide.items() if w}
    fixed = [f for f in WIDE_TABLES_PENDING if f in inspected and f not in wide]
    assert not fixed, f"no wide table left on {fixed}: remove them from WIDE_TABLES_PENDING"
    wide = {f: w for f, w in wide.items() if f not in WIDE_TABLES_PENDING}
    assert not wide, f"tables wider than the content area (content width, [(table width, start)]): {wide}"
    assert sum(len(m["tables"]) for f, m in inspected.items() if f.startswith("generated/")) >= 12


def test_no_page_shows_a_python_traceback(inspected):
    bad = [f for f, m in inspected.items() if m["tracebacks"] or "Traceback (most recent call last)" in m["text"]]
    assert not bad, bad


def _script_srcs(page: str) -> list[str]:
    return re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", page)


def test_explorer_page_embeds_widget_state_and_loads_local_scripts_only(built_book):
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    nb = json.loads((root / "book" / "generated" / "08_explorer.ipynb").read_text())
    names = {s["model_name"] for s in _widget_state(nb).values()}     # papermill/nbclient stored it
    assert {"DropdownModel", "StackModel", "ImageModel", "LinkModel", "HTMLModel"} <= names
    html = root / "_build" / "html"
    page = (html / "generated" / "08_explorer.html").read_text()
    assert WIDGET_STATE in page
    srcs = _script_srcs(page)
    assert not [s for s in srcs if re.match(r"(https?:)?//", s)], srcs       # nothing from a CDN
    local = [s.split("?")[0] for s in srcs]
    assert "../_static/require.js" in local and "../_static/embed-amd.js" in local
    assert local.index("../_static/require.js") < local.index("../_static/embed-amd.js")
    assert (html / "_static" / "require.js").exists() and (html / "_static" / "embed-amd.js").exists()
    # the widget scripts are loaded only where there are widgets
    intro = (html / "intro.html").read_text()
    assert not [s for s in _script_srcs(intro) if "require" in s or "embed-amd" in s]


def test_equations_load_mathjax_locally_and_render_offline_in_chromium(built_book, tmp_path):
    """No page loads MathJax (or any script) from a CDN; the method page's equations typeset with the network off."""
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    html = root / "_build" / "html"
    for name in ("intro.html", "method.html", "reproduction_notes.html", "generated/00_verdict.html"):
        srcs = _script_srcs((html / name).read_text())
        assert not [s for s in srcs if re.match(r"(https?:)?//", s)], (name, srcs)
    for name in ("method.html", "reproduction_notes.html"):                 # pages with equations load MathJax
        srcs = _script_srcs((html / name).read_text())
        assert any(s.split("?")[0].endswith("_static/mathjax/tex-mml-chtml.js") for s in srcs), (name, srcs)
    fonts = html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").exists() and len(list(fonts.glob("*.woff"))) > 10
    chrome = _chromium()
    if chrome is None:
        pytest.skip("no chromium binary on PATH (`make test` installs Debian's chromium when apt-get is available)")
    res = subprocess.run(_chrome_cmd(chrome, tmp_path / "profile", (html / "method.html").as_uri(), 20000),
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0 and "</html>" in res.stdout, res.stderr[-3000:]
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(res.stdout, "html.parser")
    typeset = soup.select("mjx-container")
    assert len(typeset) > 10, "MathJax did not typeset the method page offline: " + res.stderr[-2000:]
    assert not soup.select("mjx-merror"), [e.get_text() for e in soup.select("mjx-merror")][:5]


def test_explorer_widgets_render_offline_in_chromium(built_book, tmp_path):
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    chrome = _chromium()
    if chrome is None:
        pytest.skip("no chromium binary on PATH (`make test` installs Debian's chromium when apt-get is available)")
    page = root / "_build" / "html" / "generated" / "08_explorer.html"
    res = subprocess.run(_chrome_cmd(chrome, tmp_path / "profile", page.as_uri(), 30000), capture_output=True,
                         text=True, timeout=180)
    dom = res.stdout
    assert res.returncode == 0 and "</html>" in dom, res.stderr[-3000:]
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(dom, "html.parser")
    rendered = lambda cls: soup.select(f".jupyter-widgets.{cls}")
    assert rendered("widget-dropdown"), "Dropdown not rendered: " + res.stderr[-2000:]
    assert rendered("widget-image") and rendered("widget-html")
    options = [o.get_text().replace("\xa0", " ") for o in soup.select(".widget-dropdown select option")]
    assert len(options) >= 2 and options[0].startswith("user ")
    # the first precomputed view: the HTML summary with its table
    assert any(h.find("table") is not None and "target item" in h.get_text() for h in rendered("widget-html"))
    # the offline explorer's image comes from the widget state's binary buffer
    assert (rendered("widget-image")[0].get("src") or "").startswith("blob:")
