#!/usr/bin/env bash
# Makes an etcd binary available for the local control plane. The envtest conventions come first
# (TEST_ASSET_ETCD, KUBEBUILDER_ASSETS); then an etcd on PATH; otherwise Debian's etcd-server package.
set -euo pipefail
log() { printf 'hack/controlplane/install-etcd.sh: %s\n' "$*" >&2; }

if [ -n "${TEST_ASSET_ETCD:-}" ] && [ -x "$TEST_ASSET_ETCD" ]; then exit 0; fi
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then exit 0; fi
if command -v etcd >/dev/null 2>&1; then exit 0; fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "etcd is not installed. Install it (Debian/Ubuntu: sudo apt-get install etcd-server), or point"
  log "TEST_ASSET_ETCD at an etcd binary, or KUBEBUILDER_ASSETS at a folder holding one."
  exit 1
fi
log "installing Debian's etcd-server"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
# The package enables a system etcd on the default ports; ours runs on free ports of its own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi
command -v etcd >/dev/null
