#!/usr/bin/env bash
# Set up the virtualenv (idempotent) and start DEPARA Explorer on the embedded offline default.
# Extra arguments go to `streamlit run`, e.g. `bash scripts/run.sh --server.port 8600`; the app's own
# options follow `--` (e.g. `bash scripts/run.sh -- --allowed-root /data/probes`).
# The server listens on this machine only unless DEPARA_ADDRESS says otherwise (see README: serving).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py --server.address "${DEPARA_ADDRESS:-127.0.0.1}" "$@"
