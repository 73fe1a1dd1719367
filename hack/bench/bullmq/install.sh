#!/usr/bin/env bash
# Installs BullMQ, ioredis and pg into node_modules beside this script from the committed
# lockfile, when nothing is installed yet or the lockfile is newer than what npm last installed
# (node_modules/.package-lock.json is npm's record of it). hack/bench/run.sh and make bench-e2e
# call it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "install.sh: $tool is not on PATH" >&2; exit 1; }
done
if [ ! -f node_modules/bullmq/package.json ] || [ ! -f node_modules/pg/package.json ] ||
   [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund >&2
fi
