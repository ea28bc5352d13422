# `make book` builds the Jupyter Book; `make test` runs the full test suite, what CI runs (installing chromium for the
# widget test); `make test-fast` runs the fast tier only (unit and smoke tests, no notebooks, book build or browser).
# Both create (or reuse) the virtual environment .venv with every pinned dependency.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.drlib-installed

.PHONY: install book test test-fast clean-book browser

WIDGETS := book/_widgets/embed-amd.js

# Offline widget scripts from the npm registry (pinned, sha256-checked); not tracked in git.
$(WIDGETS):
	bash tools/fetch_widget_js.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,text]"
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP) $(WIDGETS)
	$(BIN)/python -m drlib notebooks
	$(BIN)/jupyter-book build book/ -W -n --keep-going

# Full tier: every test, including those marked slow (notebooks, book build, browser, long trainings).
test: $(STAMP) browser $(WIDGETS)
	$(BIN)/python -m pytest tests --full

# Fast tier (plain `pytest`): the tests marked slow are deselected (tests/conftest.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests

# Headless Chromium for the offline-widget check in tests/test_book.py (that test skips without it).
# Installed from Debian's apt when missing and running as root; never fails the test run.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; the browser test will be skipped"; \
	  else \
	    echo "note: chromium not found and apt-get unavailable (or not root); the browser test will be skipped"; \
	  fi; }

clean-book:
	rm -rf book/_build
