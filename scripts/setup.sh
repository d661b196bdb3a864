#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv. Idempotent: safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing requirements into .venv (first run takes a few minutes)..." >&2
  quiet() { grep -v "is ignored: it is neither" >&2 || true; }
  .venv/bin/python -m pip install -q --upgrade pip "setuptools>=68" wheel 2>&1 | quiet
  # The package itself (editable) with its extras; its dependencies are declared in pyproject.toml.
  .venv/bin/python -m pip install -q --no-build-isolation -r requirements.txt 2>&1 | quiet
  .venv/bin/python -c "import depara_core, torch, torchvision, captum, streamlit, visualpriors"
  echo "$want" > "$stamp"
fi
