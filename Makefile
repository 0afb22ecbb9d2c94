# The two commands of the README are `make demo` and `make test`; everything else is a step of theirs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# The embedded default covers 2013; override to replay or build a shorter range.
FROM    ?= 2013-01-01
THROUGH ?= 2013-12-31
JOB     ?= lakehouse_job

export DAGSTER_HOME := $(CURDIR)/data/dagster_home
# A single-run backfill of a year plans one event per asset instead of one per asset and day (3,650 of
# them, 40 s on SQLite). Dagster's trade-off: a failed run marks the run failed, not each of its days.
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS := true

.PHONY: install demo test test-fast fuzz e2e screenshots chromium check dev lint quality bench bench-serving serve lock clean clean-data

# The environment is made from the lock (exact versions, each file checked against its sha256), then the
# project itself on top of it; `make lock` writes the lock after a dependency changes in pyproject.toml.
$(BIN)/.installed: pyproject.toml requirements-dev.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(BIN)/.installed

$(DAGSTER_HOME)/dagster.yaml: lakehouse/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp lakehouse/dagster.yaml $@

# The job runs here (`lakehouse launch`: a progress bar, the run listed under its job in the UI), in the
# instance `make dev` serves.
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/lakehouse replay --from $(FROM) --through $(THROUGH)
	$(BIN)/lakehouse launch $(JOB) --from $(FROM) --through $(THROUGH)
	$(BIN)/lakehouse summary
	$(BIN)/lakehouse models

# The live path, after `make demo`: the embedded Redis, the lake's history pushed to it (online_job), the
# stream worker and the scoring service on http://127.0.0.1:8000, stopped together by Ctrl-C. In another
# terminal: `.venv/bin/lakehouse replay --live --from 2013-12-30 --through 2013-12-30` (see the README).
serve: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/lakehouse serve --stack

# The model's quality, after `make demo` built the year's features: registers the model of the quality
# target (train January to October 2013, hold out November and December), then five seeds on that split,
# a second split and the validation window, against the baseline, written to docs/model_quality.md.
quality: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/lakehouse launch train_job --config lakehouse/run_config/quality_target.yaml --log-level INFO
	$(BIN)/lakehouse models
	$(BIN)/lakehouse quality --output docs/model_quality.md

# The whole suite, in a new random order each time (pytest-randomly prints the seed; `--randomly-seed=N`
# repeats an order, `-p no:randomly` runs the file order).
test: install
	$(BIN)/pytest

# The suite without the tests marked slow (subprocesses, crashes, the `dg` and `dagster` commands).
test-fast: install
	$(BIN)/pytest -m "not slow"

# The long fuzz of broken deliveries: 5,000 real files mutated at random, each loaded next to an untouched
# day (`make test` runs 200). Prints how many examples ran and how many failed.
fuzz: install
	$(BIN)/pytest -p no:randomly lakehouse_tests/reliability/test_fuzz_deliveries.py \
		--hypothesis-profile=fuzz --hypothesis-show-statistics

# The UI tests in a real browser: Debian's chromium (installed here if missing; needs root, as in CI).
chromium:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

e2e: install chromium
	$(BIN)/pytest -p no:randomly lakehouse_tests/e2e

# The README's screenshots, taken by the UI tests on a small demo.
screenshots: install chromium
	E2E_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -p no:randomly lakehouse_tests/e2e

# The code location loads and every definition is valid, as `dg` sees it.
check: install
	$(BIN)/dg check defs
	$(BIN)/dg list defs

# The Dagster UI on http://127.0.0.1:3000, and the MLflow UI its model links open on http://127.0.0.1:5000
# (stopped with it).
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db --host 127.0.0.1 \
		--port 5000 > $(DAGSTER_HOME)/mlflow-ui.log 2>&1 & trap 'kill $$!' EXIT INT TERM; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Every benchmark, written to benchmarks/results.md (about an hour and a half at the default N = 1, 10
# and 100; see benchmarks/run.py). Scale-up data and run state go to a temporary folder, never to data/.
FACTORS ?= 1,10,100
REPEAT  ?= 3
bench: install
	$(BIN)/python -m benchmarks.run --factors $(FACTORS) --repeat $(REPEAT) --demo
	$(MAKE) bench-serving

# The live path's numbers (after `make demo`): latency and throughput of `lakehouse serve` while the live
# feed runs, against `mlflow models serve` of the same model version; event-to-online freshness.
bench-serving: install
	$(BIN)/python -m benchmarks.serving

lint: install
	$(BIN)/ruff check lakehouse lakehouse_tests benchmarks deploy
	$(BIN)/ruff format --check lakehouse lakehouse_tests benchmarks deploy

# requirements.lock (run time, what the image installs) and requirements-dev.lock (with the dev extras,
# what `make install` installs): the project's dependencies resolved into this environment, then each
# installed version and the sha256 of its file written down (the suite says when a lock is stale).
lock:
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python deploy/lock.py

clean-data:
	rm -rf data/landing data/sources data/lake data/warehouse.duckdb data/mlflow data/dagster_home

clean: clean-data
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
