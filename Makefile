# `make book` builds the Jupyter Book; `make test` runs the test suite.
# Both create (or reuse) the virtual environment .venv with every pinned dependency.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.drlib-installed

.PHONY: install book test clean-book

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/python -m drlib notebooks
	$(BIN)/jupyter-book build book/ -W -n --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest tests

clean-book:
	rm -rf book/_build
