#!/bin/sh
# Fetch the vendored htmx files from the npm registry, as they are in the
# packages' tarballs, and write their SHA-256 sums: `sh static/vendor/fetch.sh`
# from anywhere, then commit what changed. README.md says why these versions;
# tests/test_vendor.py checks the files against SHA256SUMS and these versions.
set -eu

HTMX=2.0.11
HTMX_EXT_SSE=2.2.4

cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm pack downloads a package's tarball and checks it against the registry's
# integrity hash; each tarball holds its files under package/
unpack() {
    mkdir "$work/$1"
    (cd "$work/$1" && npm pack --silent "$1@$2" >/dev/null && tar -xzf ./*.tgz)
}
unpack htmx.org "$HTMX"
unpack htmx-ext-sse "$HTMX_EXT_SSE"

cp "$work/htmx.org/package/dist/htmx.min.js" htmx.min.js
cp "$work/htmx.org/package/LICENSE" LICENSE.htmx.org
cp "$work/htmx-ext-sse/package/dist/sse.js" sse.js
cp "$work/htmx-ext-sse/package/LICENSE" LICENSE.htmx-ext-sse
sha256sum htmx.min.js sse.js LICENSE.htmx.org LICENSE.htmx-ext-sse >SHA256SUMS
cat SHA256SUMS
