# Every target sets up what it needs: `make test` and `make demo` work on a fresh clone.
SHELL := /bin/bash
ENV := set +u; source scripts/env.sh && set -u && export YOLO_OFFLINE=1
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: env test demo clean

env:
	@bash scripts/bootstrap.sh

test: env
	@$(ENV) && python -m pytest test $(PYTEST_ARGS)

demo: env
	@$(ENV) && python -m edge_tracker.tools.demo $(DEMO_ARGS)

clean:
	rm -rf build install log out .venv
