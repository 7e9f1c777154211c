#!/usr/bin/env bash
# `make image`: the project's image from its own Dockerfile, as pingpong-operator:dev. With a working
# Docker engine that is `docker build`; without one (these machines) it is `buildah bud` on the base
# images hack/images/build-base-images.sh assembled under their upstream names, and the result is
# written as an archive that every local node loads into its containerd at start.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
image=${IMAGE:-pingpong-operator:dev}
log() { printf 'hack/images/build-image.sh: %s\n' "$*" >&2; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exec docker build -t "$image" "$root"
fi

bash "$here/../node/install-packages.sh"
# shellcheck source=env.sh
source "$here/env.sh"
bash "$here/build-base-images.sh"
log "buildah bud -t $image (layers cached in $images_cache)"
# --layers reuses unchanged steps (npm ci) between builds; --pull=never: nothing comes from a registry.
buildah bud --quiet --layers --pull=never -t "$image" "$root" >/dev/null
export_archive "$image" "$node_images/pingpong-operator.tar"
log "$image ready: $(buildah inspect --type image --format '{{.FromImageID}}' "$image" | cut -c1-12), loaded by every node started from now on"
