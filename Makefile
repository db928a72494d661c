# The two commands: `make dev` and `make test`. Both install into .venv first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test install lint bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	$(BIN)/jobline dev $(ARGS)

# Two passes: the tests on $(TEST_WORKERS) pytest-xdist workers (each its own Temporal dev server,
# databases and browser), then those marked `serial` (timed benchmarks, chaos, timing under load)
# alone, so that nothing else shares the 2 cores with them. ARGS go to both passes; a pass that
# selects no test counts as passed (pytest's exit 5) unless neither ran one. Both passes run even
# if the first fails, and the first failure's exit code is make's.
TEST_WORKERS ?= 4
PYTEST := $(BIN)/pytest -q --durations=15

test: $(STAMP)
	$(BIN)/ruff check .
	@echo '$(PYTEST) -n $(TEST_WORKERS) -m "not serial" $(ARGS)'; \
	$(PYTEST) -n $(TEST_WORKERS) -m "not serial" $(ARGS); first=$$?; \
	echo '$(PYTEST) -m serial $(ARGS)'; \
	$(PYTEST) -m serial $(ARGS); second=$$?; \
	if [ $$first -eq 5 ] && [ $$second -eq 5 ]; then exit 5; fi; \
	for rc in $$first $$second; do \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then exit $$rc; fi; \
	done

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy models workflows

bench: $(STAMP)
	$(BIN)/python bench/events.py

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache .mypy_cache .hypothesis
