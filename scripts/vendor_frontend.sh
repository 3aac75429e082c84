#!/usr/bin/env bash
# Refreshes the console's front-end libraries in console/static/vendor/ from the npm registry (run by hand, then
# commit): they are served by the hub itself, so a hospital without internet access gets the same pages, and a
# wheel carries them. npm checks each tarball against the registry's integrity hash; the licence is kept beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
UPLOT=1.6.32   # trend charts on the bed detail page (MIT)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$UPLOT" >/dev/null && tar xzf "uplot-$UPLOT.tgz")
dest=console/static/vendor/uplot
mkdir -p "$dest"
cp "$work/package/dist/uPlot.esm.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$dest/"
echo "uplot $UPLOT $(cd "$work" && npm view "uplot@$UPLOT" dist.integrity)" > "$dest/VERSION"
echo "vendored: $(cat "$dest/VERSION")"
