#!/usr/bin/env bash
# Runs the queue benchmark (see README.md beside this file): installs BullMQ into
# bullmq/node_modules from the committed lockfile when needed (bullmq/install.sh), then
# `go run .` with the flags passed through, e.g. `hack/bench/run.sh -quick`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

for tool in go node npm redis-server redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not on PATH" >&2; exit 1; }
done

bullmq/install.sh

# -mod=mod: the root module (replaced from ../..) may have moved its requirements since this
# go.mod was last tidied; let go update it instead of refusing to build.
exec go run -mod=mod . "$@"
