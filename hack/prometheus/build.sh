#!/usr/bin/env bash
# Test tooling for config/prometheus, from the Go module proxy, cached outside the checkout and reused
# when present. Prints the folder that holds:
#   promtool       `promtool check rules` and `promtool test rules` for the alerts
#   promql-names   the metric names a PromQL expression selects (hack/prometheus/promql-names)
#   crds/          the prometheus-operator CRDs (ServiceMonitor, PodMonitor, PrometheusRule), so the
#                  test API server validates our objects against their real schemas
#
# prometheus v0.310.0 is the newest release whose dependencies the module proxy serves; it needs
# cloud.google.com/go pinned back, so it is built from a scratch module with that replace line
# (`go install` refuses modules that need replace directives). Files are written under temporary names
# and renamed, so runs at the same time (two test files) do not see each other's partial files.
set -euo pipefail

prometheus_version=v0.310.0
operator_version=v0.85.0
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${PINGPONG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pingpong}
helper_hash=$(sha256sum "$here/promql-names/main.go" | cut -c1-12)
out="$cache_root/prometheus/$prometheus_version-$operator_version-$helper_hash"

log() { printf 'hack/prometheus/build.sh: %s\n' "$*" >&2; }

if [ -x "$out/promtool" ] && [ -x "$out/promql-names" ] && [ -f "$out/crds/complete" ]; then
  log "reusing $out"
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { log "Go is required to build promtool"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/promql-names"
cat >"$work/go.mod" <<MOD
module pingpong.local/prometheus-tools

go 1.25

require github.com/prometheus/prometheus $prometheus_version

replace cloud.google.com/go => cloud.google.com/go v0.123.0
MOD
cp "$here/promql-names/main.go" "$work/promql-names/main.go"
# A file importing promtool keeps `go mod tidy` from dropping what it needs.
cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
GO
cd "$work"
log "resolving prometheus $prometheus_version's modules (first time only)"
GOFLAGS=-mod=mod go mod tidy 2>"$work/tidy.log" || { cat "$work/tidy.log" >&2; exit 1; }
if [ ! -x "$out/promtool" ]; then
  log "building promtool (first time only, several minutes)"
  CGO_ENABLED=0 go build -o "$out/promtool.$$" github.com/prometheus/prometheus/cmd/promtool
  mv "$out/promtool.$$" "$out/promtool"
fi
log "building promql-names"
CGO_ENABLED=0 go build -o "$out/promql-names.$$" ./promql-names
mv "$out/promql-names.$$" "$out/promql-names"

log "fetching the prometheus-operator $operator_version CRDs"
module_dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$operator_version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$module_dir/example/prometheus-operator-crd" ] || { log "no CRDs in $module_dir"; exit 1; }
mkdir -p "$out/crds"
for kind in servicemonitors podmonitors prometheusrules; do
  # Written under a temporary name and renamed: two test files may run this at once.
  cp "$module_dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$out/crds/.$kind.$$"
  mv "$out/crds/.$kind.$$" "$out/crds/monitoring.coreos.com_$kind.yaml"
done
touch "$out/crds/complete"
echo "$out"
