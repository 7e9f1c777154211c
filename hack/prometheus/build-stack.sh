#!/usr/bin/env bash
# Test tooling: a real Prometheus and the Prometheus Operator for the node suite that watches pairs
# (operator/monitoring.test.ts), from the Go module proxy, cached outside the checkout and reused when
# present. Prints the folder that holds:
#   prometheus                      cmd/prometheus, only the Kubernetes service discovery (build tags)
#   prometheus-operator             cmd/operator
#   prometheus-config-reloader      the sidecar the operator adds to every Prometheus pod
#   bundle.yaml                     the operator's own manifests (CRDs, RBAC, Deployment, Service)
#
# The operator's go.mod points its pkg/apis/monitoring and pkg/client modules at local folders, and
# Prometheus needs cloud.google.com/go pinned back (as for promtool), so both are built from a scratch
# module with those lines; `go install` refuses modules that need replace directives. Prometheus's web
# UI assets are not on the proxy: the API answers, the UI does not (the tests use the API).
set -euo pipefail

prometheus_version=v0.310.0
operator_version=v0.85.0
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${PINGPONG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pingpong}
script_hash=$(sha256sum "$0" | cut -c1-12)
out="$cache_root/prometheus-stack/$prometheus_version-$operator_version-$script_hash"
binaries=(prometheus prometheus-operator prometheus-config-reloader)

log() { printf 'hack/prometheus/build-stack.sh: %s\n' "$*" >&2; }

complete() {
  for binary in "${binaries[@]}"; do [ -x "$out/$binary" ] || return 1; done
  [ -f "$out/bundle.yaml" ]
}
if complete; then
  log "reusing $out"
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build Prometheus and its operator"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
# One scratch module each: they need different versions of shared modules (the operator is built
# against an older prometheus/prometheus than v0.310.0).
module() {
  local dir=$1 requires=$2 replaces=$3 imports=$4
  mkdir -p "$dir"
  printf 'module pingpong.local/%s\n\ngo 1.25\n\nrequire (\n%s)\n\n%s\n' "$(basename "$dir")" "$requires" "$replaces" >"$dir/go.mod"
  # A file importing the commands keeps `go mod tidy` from dropping what they need.
  printf '//go:build tools\n\npackage tools\n\nimport (\n%s)\n' "$imports" >"$dir/tools.go"
  log "resolving the modules of $(basename "$dir") (first time only)"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy 2>"$dir/tidy.log") || { cat "$dir/tidy.log" >&2; exit 1; }
}
module "$work/prometheus" \
  "	github.com/prometheus/prometheus $prometheus_version
" "replace cloud.google.com/go => cloud.google.com/go v0.123.0" \
  "	_ \"github.com/prometheus/prometheus/cmd/prometheus\"
"
module "$work/prometheus-operator" \
  "	github.com/prometheus-operator/prometheus-operator $operator_version
	github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring $operator_version
	github.com/prometheus-operator/prometheus-operator/pkg/client $operator_version
" "" \
  "	_ \"github.com/prometheus-operator/prometheus-operator/cmd/operator\"
	_ \"github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader\"
"

# Written under a temporary name and renamed: an interrupted build leaves nothing that looks finished,
# and two runs at once never see each other's partial files.
build() {
  local dir=$1 name=$2 package=$3
  shift 3
  [ -x "$out/$name" ] && return 0
  log "building $name (first time only)"
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-trimpath go build -ldflags "-s -w" "$@" -o "$out/$name.$$" "$package")
  mv "$out/$name.$$" "$out/$name"
  log "built $name in $((SECONDS - start)) s"
}
# Only the Kubernetes service discovery: the cloud SDKs are most of a full build's time and size.
build "$work/prometheus" prometheus github.com/prometheus/prometheus/cmd/prometheus \
  -tags remove_all_sd,enable_kubernetes_sd
build "$work/prometheus-operator" prometheus-operator \
  github.com/prometheus-operator/prometheus-operator/cmd/operator
build "$work/prometheus-operator" prometheus-config-reloader \
  github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader

cd "$work/prometheus-operator"
module_dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$operator_version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -f "$module_dir/bundle.yaml" ] || { log "no bundle.yaml in $module_dir"; exit 1; }
cp "$module_dir/bundle.yaml" "$out/.bundle.yaml.$$"
mv "$out/.bundle.yaml.$$" "$out/bundle.yaml"
echo "$out"
