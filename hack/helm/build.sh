#!/usr/bin/env bash
# Builds Helm (test tooling: the chart's tests run helm lint, template, install, upgrade and uninstall)
# from the Go module proxy into a cache outside the checkout, keyed by version, and reuses it when
# present. Prints the binary's path. helm v4's go.mod has no replace lines, so `go install` works.
set -euo pipefail

version=v4.3.1
cache_root=${PINGPONG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pingpong}
bin="$cache_root/helm/$version"

log() { printf 'hack/helm/build.sh: %s\n' "$*" >&2; }

if [ -x "$bin/helm" ]; then
  log "reusing $bin/helm"
  echo "$bin/helm"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build helm"; exit 1; }
mkdir -p "$bin"
log "building helm $version (first time only)"
GOBIN="$bin" CGO_ENABLED=0 go install "helm.sh/helm/v4/cmd/helm@$version"
echo "$bin/helm"
