# The README's two commands. Both create .venv if missing and install only when
# pyproject.toml changed (stamp files), so repeated runs start at once.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2 -q

.PHONY: demo test test-all bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "torch==2.13.0" || true
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $(VENV)/.installed $(VENV)/.installed-dev $@

# PPO on CartPole-v1, 8 seeds in one compiled program -> runs/demo
demo: $(VENV)/.installed
	$(BIN)/python experiments/train.py --config configs/ppo_cartpole.yaml --out-dir runs/demo --overwrite

# The test suite without the slow tier (longer learning studies and the two heaviest notebooks: make test-all)
# (pytest's exit code 5, "no tests collected", is not a failure of the code under test)
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"; status=$$?; if [ $$status -eq 5 ]; then exit 0; fi; exit $$status

# Every test, the slow tier included
test-all: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS); status=$$?; if [ $$status -eq 5 ]; then exit 0; fi; exit $$status

# PPO throughput against PureJaxRL (PUREJAXRL_DIR=path of a checkout) and stable-baselines3 (installs the bench extra)
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/ppo_throughput.py $(if $(PUREJAXRL_DIR),--purejaxrl-dir $(PUREJAXRL_DIR))

clean-venv:
	rm -rf $(VENV)
