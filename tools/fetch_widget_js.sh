#!/usr/bin/env bash
# Fetch the book's offline scripts into book/_widgets/ from the npm registry (see book/_widgets/README.md): the
# ipywidgets manager and require.js, and MathJax 3 (tex-mml-chtml.js with its CHTML fonts, in mathjax/).
# Pinned versions, checked by sha256; run by `make book` and `make test` when the files are missing.
set -euo pipefail
dest="$(cd "$(dirname "$0")/.." && pwd)/book/_widgets"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
command -v npm >/dev/null || { echo "npm not found: widgets in the built book will need a network" >&2; exit 0; }
(cd "$tmp" && npm pack --silent @jupyter-widgets/html-manager@1.0.15 requirejs@2.3.8 mathjax@3.2.2 >/dev/null)
mkdir -p "$tmp/hm" "$tmp/rq" "$tmp/mj"
tar -xzf "$tmp"/jupyter-widgets-html-manager-1.0.15.tgz -C "$tmp/hm"
tar -xzf "$tmp"/requirejs-2.3.8.tgz -C "$tmp/rq"
tar -xzf "$tmp"/mathjax-3.2.2.tgz -C "$tmp/mj"
cp "$tmp"/hm/package/dist/embed-amd.js "$tmp"/hm/package/dist/*.woff2 "$dest"/
cp "$tmp"/hm/package/dist/embed.js.LICENSE.txt "$dest"/embed-amd.js.LICENSE.txt
cp "$tmp"/rq/package/require.js "$dest"/
# MathJax finds its fonts next to itself ([mathjax]/output/chtml/fonts/woff-v2), so the layout of es5/ is kept
mkdir -p "$dest/mathjax/output/chtml/fonts"
cp "$tmp"/mj/package/es5/tex-mml-chtml.js "$dest/mathjax/"
cp "$tmp"/mj/package/LICENSE "$dest/mathjax/LICENSE"
rm -rf "$dest/mathjax/output/chtml/fonts/woff-v2"
cp -r "$tmp"/mj/package/es5/output/chtml/fonts/woff-v2 "$dest/mathjax/output/chtml/fonts/"
(cd "$dest" && sha256sum -c --quiet <<SUMS
ca87dff57c70ffb2658794fde0eab0e27e5f5472a1f5df7ab2b08e1039fc4b72  embed-amd.js
c1fc6b1d53af7522f78d664922abb32acac64ed0ecccb8f907f1e6fc7262563a  require.js
300480069078b5892d2363a2b65e2dfbbf30fe5c80f83edbfecf4610fd093862  mathjax/tex-mml-chtml.js
SUMS
) || { echo "sha256 mismatch in book/_widgets: refusing the downloaded scripts" >&2; rm -rf "$dest"/*.js "$dest/mathjax"; exit 1; }
echo "fetched widget scripts and MathJax into $dest"
