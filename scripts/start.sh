#!/usr/bin/env bash
# Starts the whole platform locally on the embedded defaults (PGlite, filesystem blobs,
# Postgres-backed queue) and prints the URL to open.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The web app: rebuilt only when its sources are newer than web/dist.
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/public web/index.html web/admin.html web/vite.config.ts \
    functions/src/api/votingSchemas.ts -newer web/dist/index.html -print -quit 2>/dev/null)" ]; then
  echo "start: building the web app"
  node_modules/.bin/vite build web --logLevel warn
fi
# `npm start -- --demo`: simulated voters make the loop turn (DEMO_VOTERS, 8 unless set)
if [ "${1:-}" = "--demo" ]; then export DEMO_VOTERS="${DEMO_VOTERS:-8}"; fi
exec node_modules/.bin/tsx functions/src/entries/server.ts
