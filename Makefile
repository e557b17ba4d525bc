# Two commands do all the set-up on a fresh machine: `make docs` and `make test`.
# Everything they need is installed here: Python packages into .venv, Debian
# packages (graphviz, TeX, chromium, poppler-utils) with apt-get when absent.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SPHINXBUILD := $(VENV)/bin/sphinx-build
BUILDDIR := _build
SPHINXOPTS ?=

APT_TEX := latexmk texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended tex-gyre

.PHONY: docs pdf test test-random mutate bench fuzz models clean venv-docs venv-test need-graphviz need-tex need-chromium help

help:
	@echo "make docs    build the HTML documentation into $(BUILDDIR)/html"
	@echo "make pdf     build the PDF documentation into $(BUILDDIR)/latex"
	@echo "make test    run the whole test suite"
	@echo "make test-random  the suite in a random order (SEED=n repeats an order)"
	@echo "make mutate  mutation testing of the critical modules (not part of make test)"
	@echo "make bench   run the benchmarks (not part of make test)"
	@echo "make fuzz    the long fuzz run (not part of make test): tests/fuzz/RESULTS.md"
	@echo "make models  rebuild the ResNet8 showcase models (needs torch)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# One stamp per extra set; reinstall when the package metadata changes.
$(VENV)/.stamp-%: setup.cfg pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[$(subst +,$(comma),$*)]"
	touch $@

comma := ,
venv-docs: $(VENV)/.stamp-docs
venv-test: $(VENV)/.stamp-docs+test

# Installs a Debian package set when a command is missing (as root), or says what to install.
define need_apt
	@if ! command -v $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian packages: $(2)"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "error: '$(1)' not found; install the Debian package(s): $(2)" >&2; exit 1; \
	  fi; \
	fi
endef

need-graphviz:
	$(call need_apt,dot,graphviz)

need-tex:
	$(call need_apt,latexmk,$(APT_TEX))

need-chromium:
	$(call need_apt,chromium,chromium)
	$(call need_apt,pdftoppm,poppler-utils)

docs: venv-docs need-graphviz
	$(SPHINXBUILD) -b html -W --keep-going -n $(SPHINXOPTS) . $(BUILDDIR)/html
	@echo "Documentation: $(abspath $(BUILDDIR))/html/docs/index.html"

pdf: venv-docs need-graphviz need-tex
	$(SPHINXBUILD) -M latexpdf . $(BUILDDIR) -W --keep-going -n $(SPHINXOPTS)
	@echo "PDF: $(abspath $(BUILDDIR))/latex/sphinxext_qdq.pdf"

test: venv-test need-graphviz need-tex need-chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# pytest-randomly is installed but off by default (addopts: -p no:randomly).
SEED ?=
test-random: venv-test need-graphviz need-tex need-chromium
	$(PY) -m pytest -p randomly $(if $(SEED),--randomly-seed=$(SEED)) $(PYTEST_ARGS)

# Mutation testing of the critical modules (cosmic-ray; tens of minutes): the score and
# the surviving mutants go to tests/mutation/RESULTS.md. MUTATE_ARGS="escaping --jobs 1" ...
MUTATE_ARGS ?= --jobs 2
mutate: venv-test need-graphviz
	nice -n 10 $(PY) tests/mutation/run.py $(MUTATE_ARGS)

bench: venv-test need-graphviz
	$(PY) benchmarks/run.py
	$(PY) benchmarks/large.py time

# FUZZ_ARGS: e.g. --inputs 2000, --minutes 60, --seed 100000, --jobs 1 (see tests/fuzz/run.py).
fuzz: venv-test need-graphviz
	nice -n 15 $(PY) tests/fuzz/run.py $(FUZZ_ARGS)

models: $(VENV)/.stamp-docs+test+model
	$(PY) scripts/build_resnet8.py
	$(PY) scripts/build_formats.py

clean:
	rm -rf $(BUILDDIR)
