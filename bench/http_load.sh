#!/usr/bin/env bash
# HTTP load benchmark: the app under gunicorn exactly as the Procfile runs it, on a
# PostgreSQL of the bench's own, driven by wrk; then two instances through PgBouncer; then
# syncs and dashboard reads mixed. Prints Markdown tables and a PASS/FAIL verdict.
#
#     bench/http_load.sh [--seconds 10] [--skip-scale-out] [--skip-mixed]
#
# Needs the Debian packages wrk and pgbouncer (apt-get install -y wrk pgbouncer) and the
# project's venv. Every process it starts (postgres, gunicorn, emulator, pgbouncer) is
# stopped by bench/http_load.py on exit, failure included; traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk pgbouncer; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y wrk pgbouncer" >&2; exit 2; }
done
PYTHON=${PYTHON:-.venv/bin/python}
exec "$PYTHON" bench/http_load.py "$@"
