#!/usr/bin/env bash
# Installs the Debian packages a local node needs: the container runtime (containerd, runc), CNI
# plugins, nftables and conntrack for the network, iptables and ipset for kube-router's
# network-policy controller, and buildah + mmdebstrap for the images. Installs
# only what is missing; as a non-root user, says what to install instead.
set -euo pipefail
log() { printf 'hack/node/install-packages.sh: %s\n' "$*" >&2; }

# package -> a file it installs
declare -A wanted=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [nftables]=/usr/sbin/nft
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [ipset]=/usr/sbin/ipset
  [buildah]=/usr/bin/buildah
  [mmdebstrap]=/usr/bin/mmdebstrap
)
missing=()
for package in "${!wanted[@]}"; do [ -e "${wanted[$package]}" ] || missing+=("$package"); done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "missing Debian packages for the local node: ${missing[*]}"
  log "install them (sudo apt-get install --no-install-recommends ${missing[*]}),"
  log "or run the API-only control plane: pingpong cluster up --no-node"
  exit 1
fi
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian enables a system containerd where systemd runs; the cluster runs its own, with its own
# sockets and state, so leave the system one as it was, but do not start it for us.
