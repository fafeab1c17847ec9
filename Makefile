# The two commands of the quick start: `make run` and `make test`.
.PHONY: setup run test bench

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/twinpacs demo

test: setup
	.venv/bin/pytest

bench: setup
	.venv/bin/python bench/generate.py --out bench/out/data --studies 20
	@echo "start an archive, then: .venv/bin/python bench/run.py --dataset bench/out/data ..."
