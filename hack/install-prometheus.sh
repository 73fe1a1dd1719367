#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus and promtool) when either is missing, as
# hack/with-services.sh installs Redis and PostgreSQL: as root, with apt-get.
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-prometheus: prometheus or promtool is missing; install them (apt-get install prometheus) or run as root" >&2
  exit 1
fi
echo "install-prometheus: installing prometheus" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
