#!/usr/bin/env bash
# Sets up everything twinpacs and its tests need on a fresh Debian machine:
# DCMTK (the tests' independent DICOM clients) and a virtualenv with the pinned packages.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v storescu >/dev/null 2>&1; then
  echo "setup: installing DCMTK (Debian package dcmtk)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dcmtk >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
