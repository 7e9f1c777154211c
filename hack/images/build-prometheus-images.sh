#!/usr/bin/env bash
# Test tooling: the images a real Prometheus on the local node needs, under the names the Prometheus
# Operator's own manifests and defaults use, built FROM scratch around the binaries
# hack/prometheus/build-stack.sh built from the Go module proxy:
#   quay.io/prometheus-operator/prometheus-operator:v0.85.0         /bin/operator
#   quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0  /bin/prometheus-config-reloader
#   quay.io/prometheus/prometheus:v3.10.0                           /bin/prometheus (Kubernetes SD only)
# Written as archives in a folder of their own (printed), which only the tests that need Prometheus
# load into their node; every other node starts without them. Each image is rebuilt only when its
# binary changes.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
stack=$(bash "$here/../prometheus/build-stack.sh")
# shellcheck source=env.sh
source "$here/env.sh"
log() { printf 'hack/images/build-prometheus-images.sh: %s\n' "$*" >&2; }
out="$images_cache/prometheus-stack"
mkdir -p "$out"
containers=()
cleanup() { for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT

# image NAME BINARY ENTRYPOINT ARCHIVE [WORKDIR]
image() {
  local name=$1 binary=$2 entrypoint=$3 archive=$4 workdir=${5:-/} key c
  key=$(cat "$binary" "$0" | sha256sum | cut -c1-16)
  if [ "$(image_key "$name")" != "$key" ]; then
    log "building $name"
    c=$(buildah from scratch)
    containers+=("$c")
    buildah add --quiet "$c" "$binary" "$entrypoint" >/dev/null
    # The nobody user, as upstream's images run; the operator sets the Prometheus pods' own user.
    buildah config --entrypoint "[\"$entrypoint\"]" --user 65534:65534 --workingdir "$workdir" \
      --annotation "dev.pingpong.key=$key" "$c"
    buildah commit --quiet --rm "$c" "$name" >/dev/null
    containers=("${containers[@]/$c}")
  fi
  export_archive "$name" "$out/$archive"
}
image quay.io/prometheus-operator/prometheus-operator:v0.85.0 "$stack/prometheus-operator" /bin/operator \
  prometheus-operator.tar
image quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0 "$stack/prometheus-config-reloader" \
  /bin/prometheus-config-reloader prometheus-config-reloader.tar
image quay.io/prometheus/prometheus:v3.10.0 "$stack/prometheus" /bin/prometheus prometheus.tar /prometheus
echo "$out"
