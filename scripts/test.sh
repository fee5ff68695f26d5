#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh, which makes the project venv .venv/)
# and runs the whole test suite with the venv's Python.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
