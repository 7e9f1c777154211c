#!/usr/bin/env bash
# Builds kube-router from the Go module proxy into the cache, keyed by version, and reuses it. The
# local node runs only its network-policy controller. Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
exec bash "$here/go-install.sh" kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
  "$KUBE_ROUTER_VERSION" "about 2 minutes"
