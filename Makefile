# The seminar's commands. Setup is implicit: every target first makes sure .venv
# exists and holds the pinned dependencies (re-installed only when pyproject.toml or
# constraints.txt change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REVEAL := slides/node_modules/.installed
NBVAL  := --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg --nbval-cell-timeout=900

.PHONY: setup seminar test lab slides bench browser

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[seminar]'
	touch $(STAMP)

seminar: $(STAMP) $(REVEAL)
	$(BIN)/python scripts/seminar.py

test: $(STAMP) browser
	$(BIN)/python -m pytest tests notebooks $(NBVAL)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

slides: $(STAMP) $(REVEAL)
	$(BIN)/python scripts/seminar.py --slides-only

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# reveal.js for the offline deck: from the npm registry where npm exists, else the copy
# bundled in the sphinx-revealjs Python package (re-installed when the lock changes).
$(REVEAL): slides/package.json slides/package-lock.json | $(STAMP)
	if command -v npm >/dev/null; then cd slides && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "slides: npm not found; using the reveal.js bundled in sphinx-revealjs"; \
	     $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt sphinx-revealjs; fi
	mkdir -p $(dir $(REVEAL)) && touch $(REVEAL)

# What the browser tests need: reveal.js (tests/test_slides.py) and Chromium (that test
# and tests/browser/, which drives it with the playwright package of the seminar extra,
# never with a browser of its own). Installed where this machine allows (npm; root with
# apt-get); otherwise says so, and those tests skip.
browser:
	@$(MAKE) -s --no-print-directory $(REVEAL) || echo "browser: reveal.js could not be installed; the browser tests will be skipped"
	@if [ -x /usr/bin/chromium ]; then :; \
	 elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	   echo "browser: installing chromium (apt-get)"; \
	   (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	   || echo "browser: chromium could not be installed; the browser tests will be skipped"; \
	 else echo "browser: no /usr/bin/chromium and no root apt-get; the browser tests will be skipped"; fi
