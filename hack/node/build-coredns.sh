#!/usr/bin/env bash
# Builds CoreDNS from the Go module proxy (its go.mod has no replace lines, so `go install` works)
# into the cache, keyed by version, and reuses it. Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache_root=${PINGPONG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pingpong}
bin="$cache_root/coredns/$COREDNS_VERSION"
log() { printf 'hack/node/build-coredns.sh: %s\n' "$*" >&2; }

if [ -x "$bin/coredns" ]; then
  echo "$bin/coredns"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build CoreDNS"; exit 1; }
log "building CoreDNS $COREDNS_VERSION (cold: about 2 minutes on 2 cores)"
mkdir -p "$bin"
GOBIN="$bin" CGO_ENABLED=0 GOFLAGS=-trimpath go install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
echo "$bin/coredns"
