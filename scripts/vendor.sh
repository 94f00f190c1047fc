#!/usr/bin/env bash
# Refresh the third-party browser code under python/revenge/modules/web/static/vendor/.
# Each package is fetched as its exact published tarball with `npm pack` (npm's own
# configuration decides where from), checked against the integrity the registry
# publishes, and only its distributed file and licence are kept, never edited.
# Run it by hand when a pin changes; nothing at install or run time needs Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."

VENDOR=python/revenge/modules/web/static/vendor
# package  version  file inside the tarball  licence file
PINS=(
  "hls.js 1.7.4 package/dist/hls.min.js package/LICENSE"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for pin in "${PINS[@]}"; do
  read -r name version file licence <<<"$pin"
  expected=$(npm view "$name@$version" dist.integrity)
  (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
  tarball=$(ls "$work"/*.tgz)
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$actual" != "$expected" ]; then
    echo "vendor.sh: $name@$version: integrity mismatch ($actual != $expected)" >&2
    exit 1
  fi
  target="$VENDOR/$name"
  rm -rf "$target" && mkdir -p "$target"
  tar -xzf "$tarball" -C "$work" "$file" "$licence"
  cp "$work/$file" "$target/$(basename "$file")"
  cp "$work/$licence" "$target/LICENSE"
  {
    echo "name: $name"
    echo "version: $version"
    echo "license: $(npm view "$name@$version" license)"
    echo "integrity: $expected"
    echo "file: $(basename "$file") (sha256 $(sha256sum "$target/$(basename "$file")" | cut -d' ' -f1))"
  } >"$target/VERSION"
  rm -rf "$work/package" "$tarball"
  echo "vendored $name@$version -> $target"
done
