#!/usr/bin/env bash
# Builds CoreDNS from the Go module proxy into the cache, keyed by version, and reuses it. Prints the
# binary's path.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
exec bash "$here/go-install.sh" coredns github.com/coredns/coredns "$COREDNS_VERSION" "about 2 minutes"
