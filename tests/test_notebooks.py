"""Every page executes with its notebook's smoke parameters (papermill), reading/writing a temporary results store; a
notebook without smoke parameters (drlib.book.SMOKE_PARAMS) runs with its own defaults against the empty store."""
import json

import pytest

from drlib.book import execute_all, pages

pytestmark = pytest.mark.slow     # full tier only (`pytest --full`, `make test`)


@pytest.mark.parametrize("name,notebook", [(name, nb.stem) for name, nb, _ in pages()])
def test_notebook_executes_with_smoke_parameters(name, notebook, tmp_results, tmp_path):
    (out,) = execute_all(tmp_path / "out", smoke=True, only=[name])
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
