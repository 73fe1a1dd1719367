#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium, installing Debian's `chromium` first when it is
# missing (as root, as hack/with-services.sh installs redis-server). The browser tests call it.
#
#   hack/install-chromium.sh        # -> /usr/bin/chromium
#
# CHROMIUM_BIN, when set, is used as it is.
set -euo pipefail

log() { echo "install-chromium: $*" >&2; }

if [ -n "${CHROMIUM_BIN:-}" ]; then
  echo "$CHROMIUM_BIN"
  exit 0
fi
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null; then
    command -v "$name"
    exit 0
  fi
done
if [ "$(id -u)" != 0 ]; then
  log "chromium is missing; install it (apt-get install chromium) or run as root"
  exit 1
fi
log "installing chromium"
started=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
log "installed chromium in $(($(date +%s) - started)) s"
command -v chromium
