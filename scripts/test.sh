#!/usr/bin/env bash
# Set up the virtualenv (idempotent) and run the whole test suite, slow end-to-end tests included.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"` for the quick part.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The real-browser test drives Debian's Chromium; install it where we may (it is skipped otherwise).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "Chromium could not be installed: the browser test will be skipped." >&2
fi
export DEPARA_CACHE_DIR="${DEPARA_CACHE_DIR:-$(mktemp -d)}"
exec .venv/bin/python -m pytest -ra "$@"
