# The seminar's commands. Setup is implicit: every target first makes sure .venv
# exists and holds the pinned dependencies (re-installed only when pyproject.toml or
# constraints.txt change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=900

.PHONY: setup seminar test lab slides bench

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[seminar]'
	touch $(STAMP)

seminar: $(STAMP)
	$(BIN)/python scripts/seminar.py

test: $(STAMP)
	$(BIN)/python -m pytest tests notebooks $(NBVAL)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

slides: $(STAMP)
	$(BIN)/python scripts/seminar.py --slides-only

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py
