#!/bin/bash
# npm dependencies (when the lock file changed) and the build: native addon + TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund >&2
fi
npm run build >&2
