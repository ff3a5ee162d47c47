# The README's two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-kernels test-gpu bench bench-gpu gpu-session lint clean

setup: $(STAMP)

# torch goes in first and pinned (constraints.txt) so that no dependency can pull a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

# --overwrite: a second `make demo` replaces the first one's model in runs/ instead of refusing to.
demo: setup
	$(VENV)/bin/titans-ts fit --dataset ETTh1 --horizon 96 --overwrite

test: setup
	TRITON_INTERPRET=1 $(PY) -m pytest -q -m "not aot"

# The Triton kernels compiled for sm_90 and sm_80 on the CPU (no GPU): registers, spills, shared memory
# and compile time over the whole matrix of shapes (tests/memory/test_aot.py).
test-kernels: setup
	$(PY) -m pytest -q -p no:cacheprovider -m aot tests/memory/test_aot.py

# On a machine with CUDA: backends, NeuralMemory, CLIs and save/load on the GPU. These use the Python that
# has a CUDA build of torch (GPU_PYTHON) with the checkout on PYTHONPATH, not .venv (pinned to the CPU wheel).
# The compiled Triton kernels, not the interpreter (tests/conftest.py would otherwise turn it on).
GPU_PYTHON ?= python3
test-gpu:
	TRITON_INTERPRET=0 PYTHONPATH=. $(GPU_PYTHON) -m pytest -q -p no:cacheprovider -m gpu tests/gpu

# Ours vs titans-pytorch (module) and fla (op) on the GPU, when those are installed there.
bench-gpu:
	PYTHONPATH=. $(GPU_PYTHON) experiments/bench/memory_throughput.py --device cuda

# Every GPU figure of issue 26: test-gpu, bench-gpu, the ETTh1 fit (eager and with CUDA graphs) and the DNA
# finetune on CUDA, timed; logs and reports under $OUT. On the device tool, run experiments/bench/gpu_session.sh
# in two calls as its header says (each under 10 minutes).
gpu-session:
	GPU_PYTHON=$(GPU_PYTHON) bash experiments/bench/gpu_session.sh

# titans-pytorch is installed for the comparison only; it is not a dependency of titans-ts.
bench: setup
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt "titans-pytorch==0.5.5"
	$(PY) experiments/bench/memory_throughput.py
	$(PY) experiments/bench/memory_flops.py
	$(PY) experiments/bench/kernels.py

lint: setup
	$(VENV)/bin/ruff check titans_ts genomics cli tests experiments
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
