# Churn service: every command sets up its own environment first (idempotent, quick when it exists).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo
DEMO_CUSTOMERS ?=
PORT ?= 3000
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export BENTOML_DO_NOT_TRACK := true

.DEFAULT_GOAL := help
.PHONY: help install demo serve test lint unit bench bench-quality bench-train bench-offers \
        bench-serve bench-batch bench-spark-cluster bench-campaigns bench-scale clean

help: ## list the commands
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(VENV)/.bench-installed: $(STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $@

install: $(STAMP) ## create .venv with pinned dependencies (idempotent)

demo: $(STAMP) ## generate a sample CRM, build features, train and register a champion
	$(BIN)/churn demo --workdir $(DEMO_DIR) $(if $(DEMO_CUSTOMERS),--customers $(DEMO_CUSTOMERS),)

serve: $(STAMP) ## serve the demo's champion on localhost:$(PORT) (run make demo first)
	@test -f .churn-api-key || (umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(32))" > .churn-api-key)
	@echo "API key in .churn-api-key (readable by you only; read it with: cat .churn-api-key)"
	$(BIN)/churn serve --store $(DEMO_DIR)/online_store.sqlite --api-key-file .churn-api-key --port $(PORT)

lint: $(STAMP) ## ruff (T201: library code logs, it does not print) and the one-way import contract
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# pytest-xdist on TEST_WORKERS workers (0: serial). The modules that use the session's tracking
# server, training and Spark cluster form two groups, each run whole by one worker
# (tests/xdist_groups.py). One OpenMP thread per worker: two workers whose LightGBM each spins two
# threads on two cores slowed some tests tenfold (session 12)
TEST_WORKERS ?= 2
XDIST := $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup,)
XDIST_ENV := $(if $(filter-out 0,$(TEST_WORKERS)),OMP_NUM_THREADS=1,)

unit: $(STAMP) ## fast tests only
	$(XDIST_ENV) $(BIN)/pytest -q $(XDIST) -m "not slow"

test: $(STAMP) lint ## lint + the whole test suite, integration tests included
	$(XDIST_ENV) $(BIN)/pytest -q $(XDIST)

bench: $(STAMP) ## generation and the feature build, in memory vs streamed: time, CPU and peak memory at 100k and 1M customers
	$(BIN)/python benchmarks/bench_data.py --customers 100000 1000000

bench-quality: $(STAMP) ## model quality against peers on CDNOW (4 cutoffs), 6 public tables and 3 sample variants (--quick: QUICK=1)
	$(BIN)/python benchmarks/bench_quality.py $(if $(QUICK),--quick,)

bench-train: $(STAMP) ## training speed on 500k rows x ~80 features, MLflow logging included
	$(BIN)/python benchmarks/bench_train.py --customers 240000 --rows 600000

bench-offers: $(VENV)/.bench-installed ## offer policy vs risk-only, random, causalml's uplift peers, yardstick and oracle
	$(BIN)/python benchmarks/bench_offers.py $(if $(QUICK),--quick,)

bench-scale: $(STAMP) ## generation, feature build, training, batch scoring and Spark local[2] at 100k, 1M, 3M and 10M customers (hours)
	$(BIN)/python benchmarks/bench_scale.py --customers 100000 1000000 3000000 10000000

bench-campaigns: $(STAMP) ## off-policy evaluation and campaign readouts: interval coverage over 200 seeds on the sample's truth
	$(BIN)/python benchmarks/bench_campaigns.py --customers 20000 --seeds 200

bench-serve: $(STAMP) ## service vs a bare BentoML booster endpoint: five paired runs, median ratio and range
	$(BIN)/python benchmarks/bench_serve.py --no-plain --bare-async

bench-batch: $(STAMP) ## batch scoring of 1M customers vs raw Booster.predict, and Spark local[2]
	$(BIN)/python benchmarks/bench_batch.py --pairs 3

bench-spark-cluster: $(STAMP) ## feature build and scoring: local engine vs Spark local[2] vs a 2-worker standalone cluster
	$(BIN)/python benchmarks/bench_spark_cluster.py

clean: ## remove the environment and generated files
	rm -rf $(VENV) demo mlflow.db mlruns mlartifacts bench-out .churn-api-key .churn-model-cache
