# cookiecutter-mlops: `make demo` renders, installs and runs a project; `make test` tests the template.
.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-print-directory

UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run
# Where `make demo` renders the project: outside the repository, kept between runs for a look.
DEMO_DIR ?= $(abspath ../cookiecutter-mlops-demo)

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: ## Install uv if missing, then the template's own tools
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	$(UV) sync --compile-bytecode

.PHONY: demo
demo: install ## Render the defaults into DEMO_DIR, install the project, run its whole loop
	rm -rf "$(DEMO_DIR)/customer-quality" && mkdir -p "$(DEMO_DIR)"
	$(RUN) cookiecutter --no-input . --output-dir "$(DEMO_DIR)"
	env -u VIRTUAL_ENV $(MAKE) -C "$(DEMO_DIR)/customer-quality" setup all
	@echo
	@echo "The demo project is in $(DEMO_DIR)/customer-quality; what the loop produced:"
	@cd "$(DEMO_DIR)/customer-quality" && find data reports -type f -not -name .gitkeep 2>/dev/null | sort | sed 's/^/  /'
	@echo "Next: cd $(DEMO_DIR)/customer-quality && make   (lists every target)"

.PHONY: test
test: install ## Run every template test: hooks, renders of each option set, generated projects
	$(RUN) pytest -n 2 --dist loadscope

.PHONY: test-fast
test-fast: install ## The fast tier only (no install of generated projects)
	$(RUN) pytest -n 2 -m "not slow"

.PHONY: lint
lint: install ## Lint the template's own code
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: bench
bench: install ## Measure render, install and generated-test times into docs/benchmarks.md
	$(RUN) python bench/bench_template.py

.PHONY: bench-ci
bench-ci: install ## Time the generated `ci` pipeline's steps into docs/benchmarks.md (podman needed)
	$(RUN) python bench/bench_ci.py

.PHONY: docs
docs: install ## Build this template's documentation site into site/ (strict, offline)
	$(RUN) mkdocs build --strict --site-dir site
	@echo "Open site/index.html in a browser (no web server or network needed)."

.PHONY: docs-serve
docs-serve: install ## Serve the documentation site on 127.0.0.1:DOCS_PORT (default 8001), rebuilt on save
	$(RUN) mkdocs serve --strict --dev-addr 127.0.0.1:$(or $(DOCS_PORT),8001)
