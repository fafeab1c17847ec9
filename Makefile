# The two commands of the quick start: `make run` and `make test`.
.PHONY: setup run test bench

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/twinpacs demo

# The whole suite twice: on SQLite, then with every site's index on the machine's PostgreSQL.
test: setup
	.venv/bin/pytest
	TWINPACS_TEST_BACKEND=postgresql .venv/bin/pytest

bench: setup
	.venv/bin/python bench/generate.py --out bench/out/data --studies 20
	@echo "start an archive, then: .venv/bin/python bench/run.py --dataset bench/out/data ..."
