#!/usr/bin/env bash
# Fetch the offline ipywidgets scripts into book/_widgets/ from the npm registry (see book/_widgets/README.md).
# Pinned versions, checked by sha256; run by `make book` and `make test` when the files are missing.
set -euo pipefail
dest="$(cd "$(dirname "$0")/.." && pwd)/book/_widgets"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
command -v npm >/dev/null || { echo "npm not found: widgets in the built book will need a network" >&2; exit 0; }
(cd "$tmp" && npm pack --silent @jupyter-widgets/html-manager@1.0.15 requirejs@2.3.8 >/dev/null)
mkdir -p "$tmp/hm" "$tmp/rq"
tar -xzf "$tmp"/jupyter-widgets-html-manager-1.0.15.tgz -C "$tmp/hm"
tar -xzf "$tmp"/requirejs-2.3.8.tgz -C "$tmp/rq"
cp "$tmp"/hm/package/dist/embed-amd.js "$tmp"/hm/package/dist/*.woff2 "$dest"/
cp "$tmp"/hm/package/dist/embed.js.LICENSE.txt "$dest"/embed-amd.js.LICENSE.txt
cp "$tmp"/rq/package/require.js "$dest"/
(cd "$dest" && sha256sum -c --quiet <<SUMS
ca87dff57c70ffb2658794fde0eab0e27e5f5472a1f5df7ab2b08e1039fc4b72  embed-amd.js
c1fc6b1d53af7522f78d664922abb32acac64ed0ecccb8f907f1e6fc7262563a  require.js
SUMS
) || { echo "sha256 mismatch in book/_widgets: refusing the downloaded scripts" >&2; rm -f "$dest"/*.js; exit 1; }
echo "fetched widget scripts into $dest"
