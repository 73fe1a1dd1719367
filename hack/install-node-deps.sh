#!/usr/bin/env bash
# Installs what a single-node cluster (internal/node) needs from Debian besides the binaries that
# hack/build-tools.sh node builds: runc, the CNI plugins (ptp, host-local, loopback), iproute2 and
# nsenter. Does nothing when they are there; installs as root otherwise. test/node calls it.
#
#   hack/install-node-deps.sh             the node's packages
#   hack/install-node-deps.sh services    also Redis and PostgreSQL (make dev NODE=1 starts them
#                                         inside the node's namespace, which has no way out)
set -euo pipefail

log() { echo "install-node-deps: $*" >&2; }

want=()
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || want+=(runc)
[ -x /usr/lib/cni/ptp ] || want+=(containernetworking-plugins)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || want+=(iproute2)
command -v nsenter >/dev/null || want+=(util-linux)
if [ "${1:-}" = services ]; then
  command -v redis-server >/dev/null || want+=(redis-server redis-tools)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
fi
[ ${#want[@]} -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
  log "missing ${want[*]}; install them (apt-get install ${want[*]}) or run as root"
  exit 1
fi
log "installing ${want[*]}"
started=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
# Other test packages may be installing theirs at the same moment: wait for dpkg's lock.
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${want[@]}" >/dev/null
log "installed in $(( $(date +%s) - started ))s"
