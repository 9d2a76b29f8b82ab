# Two commands do all the set-up on a fresh machine (python3 + pip, package registries only):
#   make book   - build the executed book website into _build/html
#   make test   - run every test, executing every chapter and checking the built site in a browser
#   make lab    - open the chapters in JupyterLab (adds --allow-root when run as root, e.g. in a container)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Sphinx warnings are errors; --keep-going lists all of them before failing.
BOOK_FLAGS ?= -W -n --keep-going

.PHONY: book i18n-status lab test test-fast browser-deps bench bench-live clean lock

$(STAMP): pyproject.toml requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements-lock.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Both editions: English at _build/html, 简体中文 at _build/html/zh. The Chinese sources (zh/) are
# regenerated from book/ and i18n/zh/ first; its build executes nothing: its code cells are the English
# ones, so every notebook is found in the English build's jupyter-cache.
book: $(STAMP)
	$(BIN)/jupyter-book build . $(BOOK_FLAGS)
	$(BIN)/python -m sketchlib.book.i18n build
	$(BIN)/jupyter-book build zh --path-output _build/zh $(BOOK_FLAGS)
	rm -rf _build/html/zh && cp -r _build/zh/_build/html _build/html/zh
	@echo "Book built: open _build/html/index.html (中文版: _build/html/zh/index.html)"

# The Chinese edition's status: which English paragraphs have no current translation (exit 1 if any).
i18n-status: $(STAMP)
	$(BIN)/python -m sketchlib.book.i18n status

# JupyterLab refuses to start as root unless told --allow-root; add it only then.
lab: $(STAMP)
	$(BIN)/jupyter lab $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) book/

# Debian's chromium + chromedriver for the browser test of the built site, and a small CJK font
# (fonts-wqy-microhei, Apache 2.0 / GPLv3 with font exception) so its screenshots show the pages'
# Chinese and Japanese text (root + apt only; elsewhere the browser tests skip with a reason, and fail in CI).
# The figures do not need it: they use the PyPI font of sketchlib.render.use_cjk_font.
browser-deps:
	@if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian chromium + chromium-driver for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	@if ! fc-list 2>/dev/null | grep -qi wqy && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian fonts-wqy-microhei for the browser test's screenshots"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; \
	fi

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest tests

# Unit tests only (no book build), for quick iterations.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -m "not book"

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Speed of the live demos in headless Chromium -> bench/results/live_demo-cpu.json
bench-live: $(STAMP) browser-deps
	$(BIN)/python bench/live_demo.py

clean:
	rm -rf _build

# Regenerate the exact pins from a working environment (authors only).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed -e 's/^torch==\([0-9.]*\)+cpu/torch==\1/' > requirements-lock.txt
