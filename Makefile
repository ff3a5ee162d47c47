# The README's two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-gpu bench lint clean

setup: $(STAMP)

# torch goes in first and pinned (constraints.txt) so that no dependency can pull a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/titans-ts fit --dataset ETTh1 --horizon 96

test: setup
	TRITON_INTERPRET=1 $(PY) -m pytest -q

# On a machine with CUDA (and a CUDA build of torch): backends, NeuralMemory, CLIs and save/load on the GPU.
# The compiled Triton kernels, not the interpreter (tests/conftest.py would otherwise turn it on).
test-gpu: setup
	TRITON_INTERPRET=0 $(PY) -m pytest -q -m gpu tests/gpu

# titans-pytorch is installed for the comparison only; it is not a dependency of titans-ts.
bench: setup
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt "titans-pytorch==0.5.5"
	$(PY) experiments/bench/memory_throughput.py
	$(PY) experiments/bench/kernels.py

lint: setup
	$(VENV)/bin/ruff check titans_ts genomics cli tests experiments

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
