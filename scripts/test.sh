#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh, which makes the project venv .venv/)
# and runs the whole test suite with the venv's Python, one pytest worker per core
# (at most 4: each worker loads torch and TensorFlow), a test file per worker at a time
# (its module fixtures are built once). TINYML_TEST_WORKERS overrides the count.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
workers="${TINYML_TEST_WORKERS:-$(nproc)}"
[ "$workers" -gt 4 ] && workers=4
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
