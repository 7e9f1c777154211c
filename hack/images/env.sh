# Sourced by the image scripts: buildah keeps its images in the cache, outside the checkout, and
# never touches the machine's own container storage.
# shellcheck shell=bash
here_images=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../node/versions.env
source "$here_images/../node/versions.env"
cache_root=${PINGPONG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pingpong}
images_cache="$cache_root/images"
# Archives every node loads into its containerd at start (pause, CoreDNS, the project's image).
node_images="$images_cache/node"
mkdir -p "$images_cache/storage" "$images_cache/run" "$node_images"
cat > "$images_cache/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$images_cache/storage"
runroot = "$images_cache/run"
CONF
export CONTAINERS_STORAGE_CONF="$images_cache/storage.conf"
export BUILDAH_ISOLATION=chroot
node_version=$(sed -n 's/^[[:space:]]*"node": "\([0-9.]*\)",\{0,1\}$/\1/p' "$here_images/../../package.json" | head -n1)
[ -n "$node_version" ] || { echo "package.json has no \"node\": \"X.Y.Z\" devDependency" >&2; exit 1; }

# Working containers left by a build that was killed (they stay mounted): this storage is the
# project's own, so none of them is anyone else's.
buildah rm --all >/dev/null 2>&1 || true

# The value of the dev.pingpong.key label of a local image, or nothing.
image_key() {
  buildah inspect --type image --format '{{index .ImageAnnotations "dev.pingpong.key"}}' "$1" 2>/dev/null || true
}

# Writes image $1 as a docker archive $2 that `ctr images import` reads, unless $2 holds it already.
export_archive() {
  local image=$1 archive=$2 id
  id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
  [ -f "$archive" ] && [ "$(cat "$archive.id" 2>/dev/null)" = "$id" ] && return 0
  rm -f "$archive" "$archive.id"
  buildah push --quiet "$image" "docker-archive:$archive.partial:$image" >/dev/null
  mv "$archive.partial" "$archive"
  echo "$id" > "$archive.id"
}
