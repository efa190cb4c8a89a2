# skyloom: the two set-up commands for a fresh machine are `make demo` and `make test`.
# Both create .venv, install skyloom and what it needs (Python and Debian packages), then run.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.skyloom-installed
SYSSTAMP := $(VENV)/.skyloom-sysdeps
# torch and torchvision as one pair (open_clip needs torchvision; PyPI's torchvision fails beside
# a CPU-only torch wheel of another release). Override for another platform: make TORCH_PAIR=...
TORCH_PAIR ?= torch==2.14.1 torchvision==0.29.1
# Debian packages: Mesa software EGL for headless MuJoCo rendering, Chromium for browser tests,
# Tesseract for the OCR text annotator (`skyloom corpus annotate`), PostgreSQL's server binaries for the
# tests that run the results store on a throw-away server (tests/pgserver.py; the service is not used).
DEB_PACKAGES ?= libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 chromium fonts-dejavu-core tesseract-ocr \
	postgresql
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: demo test test-fast venv sysdeps bench lint docs-tables clean

demo: $(STAMP) $(SYSSTAMP)
	$(VENV)/bin/skyloom demo $(DEMO_ARGS)

test: $(STAMP) $(SYSSTAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

venv: $(STAMP)

# Reinstall when a package appears or changes shape: the editable install maps top-level packages.
$(STAMP): pyproject.toml $(wildcard */__init__.py */*/__init__.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PAIR)
	$(PIP) install -q -e '.[all,dev]'
	touch $(STAMP)

# Installs Debian packages when apt-get is available and we are root (CI, containers);
# otherwise it checks for them and says what to install.
$(SYSSTAMP): Makefile
	@mkdir -p $(VENV)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then \
	    sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "please install:$$missing"; exit 1; fi; \
	fi
	touch $(SYSSTAMP)

bench: $(STAMP) $(SYSSTAMP)
	$(PY) -m bench.run_all

# ruff, then mypy over the package as installed (.ci/typecheck.py maps eval/ to skyloom.eval, ...)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) .ci/typecheck.py
	$(VENV)/bin/python -m skyloom.plugins --check-docs  # the docs' tables of built-in plug-ins are generated

docs-tables: $(STAMP)  # regenerate the docs' tables of built-in plug-ins from the registries
	$(VENV)/bin/python -m skyloom.plugins --write-docs

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
