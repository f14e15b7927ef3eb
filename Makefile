# The two commands of the README. Each sets everything up first (idempotent), then runs.
.PHONY: ui test setup lint

ui: setup
	.venv/bin/andini ui

test:
	scripts/setup.sh --browser
	.venv/bin/python -m pytest -q $(PYTEST_ARGS)

setup:
	scripts/setup.sh

lint:
	.venv/bin/ruff check .
