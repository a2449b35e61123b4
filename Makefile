# newsflow: `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED ?= ../shared

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

setup: $(STAMP) ## Create .venv and install newsflow with its test tools
	@echo "ready: $(VENV)/bin/newsflow"

run: $(STAMP) ## Run the pipeline on an embedded broker with the sample articles (Ctrl-C stops)
	$(VENV)/bin/newsflow run $(ARGS)

demo: $(STAMP) ## Process the sample articles once, print the summary and exit
	$(VENV)/bin/newsflow run --max-articles 26 $(ARGS)

test: $(STAMP) ## Run the whole test suite (starts its own broker and Prometheus)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy (never rewrites files)
	$(VENV)/bin/ruff check pipelines tests tools
	$(VENV)/bin/ruff format --check pipelines tests tools
	$(VENV)/bin/mypy

# pypi: PyPI's JSON API per installed version; osv: api.osv.dev. --strict, because a
# package the service could not look up is otherwise skipped and the audit still passes.
AUDIT_SERVICE ?= pypi
audit: $(STAMP) ## Audit installed dependencies for known vulnerabilities (pip-audit)
	$(VENV)/bin/pip-audit --skip-editable --strict --progress-spinner off --vulnerability-service $(AUDIT_SERVICE) $(ARGS)

audit-latest: $(STAMP) ## Audit through PyPI's project pages: exact for packages at their latest release, lists the rest
	$(PY) -m tools.audit_latest

format: $(STAMP) ## Rewrite files with ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix pipelines tests tools
	$(VENV)/bin/ruff format pipelines tests tools

bench: $(STAMP) ## Through Kafka vs bare spaCy nlp.pipe: 1 and 2 processes, p50/p95/p99 latency, peak memory (~7 min)
	$(PY) -m tools.bench --data $(SHARED)/data/reuters21578.jsonl.gz $(ARGS)

bench-latency: $(STAMP) ## Throughput on the sample and end-to-end latency at a light steady load
	$(PY) tools/bench_latency.py

eval: $(STAMP) ## Every quality figure: facts and events, entities and places, duplicates (dev and held-aside)
	$(PY) tools/eval_facts.py
	$(PY) -m tools.eval_entities
	$(PY) tools/eval_dedup.py --shared $(SHARED)

eval-facts: $(STAMP) ## Precision/recall of casualty facts and events on the gold set (dev and held-aside test)
	$(PY) tools/eval_facts.py

backfill-demo: $(STAMP) ## Backfill all 21,578 Reuters-21578 wires into out/reuters/ with progress (rerun: resumes)
	$(VENV)/bin/newsflow backfill $(SHARED)/data/reuters21578.jsonl.gz --output-dir out/reuters $(ARGS)

bench-backfill: $(STAMP) ## Backfill of all Reuters-21578 vs bare spaCy on both cores (target >= 0.85; ~30 min)
	$(PY) -m tools.bench_backfill --data $(SHARED)/data/reuters21578.jsonl.gz $(ARGS)

soak: $(STAMP) ## 35 min streaming at 8 articles/s: lost records, throughput, lag, RSS growth (not in CI)
	$(PY) -m tools.soak --data $(SHARED)/data/reuters21578.jsonl.gz $(ARGS)

bench-extract: $(STAMP) ## Fact extraction time after NER vs spaCy time (target <= 10 %)
	$(PY) tools/bench_extract.py

eval-entities: $(STAMP) ## NER P/R/F1 by label (bare en_core_web_sm vs newsflow) and place resolution accuracy
	$(PY) -m tools.eval_entities

monitor: $(STAMP) ## Like run, plus a local Prometheus (127.0.0.1:9090) with the rules and alerts
	$(VENV)/bin/newsflow run --monitor $(ARGS)

dashboard-demo: $(STAMP) ## A 5-minute monitored run fed Reuters wires, drawn to docs/dashboard.png
	$(PY) tools/demo_dashboard.py --shared $(SHARED)

eval-dedup: $(STAMP) ## Duplicate detection precision/recall on labelled Reuters pairs; index memory
	$(PY) tools/eval_dedup.py --shared $(SHARED)

bench-normalize: $(STAMP) ## Normalization + dedup time vs spaCy time per article (target <= 15 %)
	$(PY) tools/bench_normalize.py --shared $(SHARED)

sample: $(STAMP) ## Rebuild pipelines/data/sample_articles.jsonl from ../shared
	$(PY) tools/make_sample.py $(SHARED)

clean: ## Remove outputs and caches (keeps .venv)
	rm -rf out .pytest_cache .mypy_cache .ruff_cache

.PHONY: help setup run demo test lint audit audit-latest soak format bench bench-latency bench-backfill backfill-demo eval eval-facts bench-extract monitor dashboard-demo eval-entities eval-dedup bench-normalize sample clean
