# `make install` creates (or reuses) the virtual environment .venv with every pinned dependency and the offline widget
# scripts; `make book` builds the Jupyter Book from the committed pages in book/generated/ (`jupyter-book build book/`,
# warnings as errors); `make notebooks` executes notebooks/ from the stored results into book/generated/ (after new
# records or a notebook edit); `make test` runs the full test suite, what CI runs (installing chromium for the browser
# test); `make test-fast` runs the fast tier only (unit and smoke tests, no notebooks, book build or browser).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.drlib-installed

.PHONY: install book notebooks test test-fast clean-book browser

WIDGETS := book/_widgets/embed-amd.js book/_widgets/mathjax/tex-mml-chtml.js

# Offline widget scripts and MathJax from the npm registry (pinned, sha256-checked); not tracked in git.
$(WIDGETS):
	bash tools/fetch_widget_js.sh

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test,text]"
	touch $(STAMP)

install: $(STAMP) $(WIDGETS)

# the book as `jupyter-book build book/` builds it, with warnings as errors
book: install
	$(BIN)/jupyter-book build book/ -W -n --keep-going

# the book's pages executed again from the stored results (only reads; commit book/generated/ afterwards)
notebooks: $(STAMP)
	$(BIN)/python -m drlib notebooks

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
