"""The book builds with warnings as errors (on smoke-executed notebooks, in a temporary copy), and its widget page
(generated/08_explorer) renders its ipywidgets offline: local scripts only, checked in headless Chromium."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drlib.book import execute_all
from drlib.utils import REPO_ROOT

pytestmark = pytest.mark.slow     # full tier only (`pytest --full`, `make test`)

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """Execute every notebook with its smoke parameters into a copy of book/ and build it once for this module
    (results and runs in a temporary store, as the ``tmp_results`` fixture)."""
    tmp = tmp_path_factory.mktemp("book")
    root = tmp / "repo"
    shutil.copytree(REPO_ROOT / "book", root / "book", symlinks=True,
                    ignore=shutil.ignore_patterns("_build", "generated"))
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / f, root / f)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRLIB_RESULTS", str(tmp / "results"))
        mp.setenv("DRLIB_RUNS", str(tmp / "runs"))
        execute_all(root / "book" / "generated", smoke=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(jb), "build", "book/", "-W", "-n", "--keep-going"], cwd=root,
                         capture_output=True, text=True)
    return root, out


def test_book_builds_with_warnings_as_errors(built_book):
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    html = root / "_build" / "html"
    assert (html / "index.html").exists() or (html / "intro.html").exists()
    page = (html / "generated" / "02_main_table.html").read_text()
    assert "SASRec" in page


def _script_srcs(page: str) -> list[str]:
    return re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", page)


def test_explorer_page_embeds_widget_state_and_loads_local_scripts_only(built_book):
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    nb = json.loads((root / "book" / "generated" / "08_explorer.ipynb").read_text())
    state = nb["metadata"]["widgets"][WIDGET_STATE]["state"]                  # papermill/nbclient stored it
    names = {s["model_name"] for s in state.values()}
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


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_explorer_widgets_render_offline_in_chromium(built_book, tmp_path):
    root, out = built_book
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    chrome = _chromium()
    if chrome is None:
        pytest.skip("no chromium binary on PATH (`make test` installs Debian's chromium when apt-get is available)")
    page = root / "_build" / "html" / "generated" / "08_explorer.html"
    cmd = [chrome, "--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}",
           # no network: unresolvable hosts and a dead proxy (and no network namespace at all where allowed)
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
           "--virtual-time-budget=30000", "--dump-dom", page.as_uri()]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
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
