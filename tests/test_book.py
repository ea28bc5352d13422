"""The book builds with warnings as errors (on smoke-executed notebooks, in a temporary copy)."""
import shutil
import subprocess
import sys
from pathlib import Path

from drlib.book import execute_all
from drlib.utils import REPO_ROOT


def test_book_builds_with_warnings_as_errors(tmp_results, tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "book", root / "book", symlinks=True,
                    ignore=shutil.ignore_patterns("_build", "generated"))
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / f, root / f)
    execute_all(root / "book" / "generated", smoke=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(jb), "build", "book/", "-W", "-n", "--keep-going"], cwd=root,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    html = root / "_build" / "html"
    assert (html / "index.html").exists() or (html / "intro.html").exists()
    page = (html / "generated" / "02_main_table.html").read_text()
    assert "SASRec" in page
