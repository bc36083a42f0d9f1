# neuroinverse: `make book` builds the whole book, `make test` runs every test.
# PROFILE=ci (CPU, ~1 min per chapter) or PROFILE=full (paper scale, one GPU).

PROFILE ?= ci
NAME ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NI := $(VENV)/bin/neuroinverse
PYTEST := $(PY) -m pytest
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Sane, reproducible thread counts: the ci profile targets two CPU cores.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export OPENBLAS_NUM_THREADS ?= 2
export NUMEXPR_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export PYTHONUNBUFFERED := 1
# No MPLBACKEND here: the kernels must keep matplotlib's inline backend so that the
# executed notebooks carry their figures. Only the unit tests run with Agg.

.PHONY: help venv deps book chapter sync notebooks test test-unit test-chapters test-nbval \
        test-build test-site smoke benchmark benchmark-all status clean

help:
	@echo "make book                      run every chapter at PROFILE=$(PROFILE) and build _build/html"
	@echo "make test                      every test: unit+lint, chapters, nbval, book build, site"
	@echo "make chapter NAME=deepspike    run one chapter (PROFILE=ci|full)"
	@echo "make sync | notebooks          jupytext --sync / regenerate the .ipynb from the .py"
	@echo "make smoke                     the full profile's code at the ci sizes, every chapter"
	@echo "make benchmark | benchmark-all | status | clean"

venv: $(STAMP)

# torch goes first and pinned: 2.13.0 is the CPU wheel on our machines, while an unpinned
# torch resolves to a multi-GB CUDA build. The stamp reruns this only when pyproject changes.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "python3-venv is missing; installing it with apt-get"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[book,test,bench]'
	touch $@

# Headless Chromium for the site test (Debian's package; never `playwright install`).
deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian chromium with apt-get"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi
	@test -x /usr/bin/chromium

book: venv
	$(NI) build --profile $(PROFILE)

chapter: venv
	@test -n "$(NAME)" || { echo "usage: make chapter NAME=<slug> [PROFILE=ci|full]"; exit 2; }
	$(NI) run $(NAME) --profile $(PROFILE)

status: venv
	$(NI) status

# Bring each .py/.ipynb pair in line (the newer file wins).
sync: venv
	$(VENV)/bin/jupytext --sync chapters/*/*.py

# Rewrite every committed .ipynb from its .py, without outputs.
notebooks: venv
	$(VENV)/bin/jupytext --to ipynb chapters/*/*.py

# Stops at the first failing step.
test: venv deps
	$(MAKE) test-unit
	$(MAKE) test-chapters
	$(MAKE) test-nbval
	$(MAKE) test-build
	$(MAKE) test-site

test-unit: venv
	MPLBACKEND=Agg $(PYTEST) tests/unit

test-chapters: venv
	$(PYTEST) tests/chapters

test-nbval: venv
	$(PYTEST) --nbval-lax --nbval-current-env _build/executed

test-build: venv
	$(NI) build --no-execute

test-site: venv deps
	$(PYTEST) tests/site

# The full profile's code at the ci sizes, every chapter (verdicts not checked; _build/smoke).
smoke: venv
	@set -e; for slug in $$($(PY) -c 'from neuroinverse.chapters import chapter_slugs; print(*chapter_slugs())'); do \
	  $(NI) run $$slug --profile full --smoke; done

benchmark: venv
	$(PY) benchmarks/chapters.py --profile $(PROFILE)

# Every speed benchmark (each writes its table to benchmarks/results/); several minutes.
benchmark-all: benchmark
	$(PY) benchmarks/deepspike_throughput.py
	$(PY) benchmarks/hh_throughput.py
	$(PY) benchmarks/apt_vs_sbi.py --threads 1
	$(PY) benchmarks/decode_throughput.py
	$(PY) benchmarks/malis_scaling.py
	$(PY) benchmarks/mala_throughput.py
	$(PY) benchmarks/plds_estep.py
	$(PY) benchmarks/agglomeration_vs_waterz.py
	$(PY) benchmarks/pssr_throughput.py
	$(PY) benchmarks/active_sem_dpp.py
	$(PY) benchmarks/blockwise.py

clean:
	rm -rf _build
