#!/usr/bin/env bash
# Set up the virtualenv (idempotent) and start DEPARA Explorer on the embedded offline default.
# Extra arguments go to `streamlit run`, e.g. `bash scripts/run.sh --server.port 8600`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py "$@"
