#!/usr/bin/env bash
# Builds one command of a Go module from the Go module proxy into the cache, keyed by version, and
# reuses it; prints the binary's path. For modules whose go.mod has no replace lines (so
# `go install module@version` works): CoreDNS and kube-router.
#
#   hack/node/go-install.sh NAME PACKAGE VERSION COLD_TIME
#   e.g. hack/node/go-install.sh coredns github.com/coredns/coredns v1.15.0 "about 2 minutes"
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 NAME PACKAGE VERSION COLD_TIME" >&2; exit 2; }
name=$1 package=$2 version=$3 cold=$4
cache_root=${PINGPONG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pingpong}
bin="$cache_root/$name/$version"
log() { printf 'hack/node/go-install.sh: %s\n' "$*" >&2; }

if [ -x "$bin/$name" ]; then
  echo "$bin/$name"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build $name"; exit 1; }
log "building $name $version (cold: $cold on 2 cores)"
# Into a temporary folder first: a build that is interrupted leaves no binary that looks finished.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/$name-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-trimpath go install -ldflags "-s -w" "$package@$version"
mkdir -p "$bin"
mv "$tmp/$name" "$bin/$name"
echo "$bin/$name"
