// The roads under the grids, on both pages: the service's `roads` vector tiles
// (gridgeo.tiles.road_layer, from the store's roads), drawn in a pane of their
// own under the units' lines and taking no pointer. SVG, not canvas: beyond the
// tiles' last zoom a tile is scaled up, and a scaled canvas blurs. The basemap, when the
// service names one, stays under them. Its words join the pages' dictionary.

import {STRINGS} from './i18n.js';

Object.assign(STRINGS.zh, {roads: '道路'});
Object.assign(STRINGS.en, {roads: 'Roads'});

// How each class of road is drawn; a class not named here is drawn as a local road.
const CLASSES = {
  motorway: {color: '#cdb56f', weight: 3.0},
  arterial: {color: '#b3a274', weight: 2.2},
  collector: {color: '#8a8676', weight: 1.5},
  local: {color: '#5d6676', weight: 1.0},
};

// A data tile of zoom z - offset drawn (256 << offset) px wide at display zoom z, as the one map's
// other layers (layers.js): the same requests, so the HTTP cache serves both. Past the tiles'
// last zoom a tile is cut from its ancestor's data and drawn at its own scale, so a road stays
// a crisp line of its own width instead of a blown-up picture of one.
const LAST = 16;

const RoadTiles = L.VectorGrid.Protobuf.extend({
  _getVectorTilePromise(coords, tile) {
    const z = coords.z - this.options.offset;
    const d = Math.max(0, z - LAST);
    const data = L.point(coords.x >> d, coords.y >> d);
    data.z = z - d;
    const promise = L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, data, tile);
    return d ? promise.then((decoded) => overzoomed(decoded, coords.x, coords.y, d)) : promise;
  },
});

// The part of an ancestor tile that is the tile (x, y), d zooms below it, in the tile's own units.
function overzoomed(decoded, x, y, d) {
  const k = 2 ** d;
  for (const layer of Object.values(decoded.layers)) {
    const size = layer.extent / k;
    const ox = (x % k) * size;
    const oy = (y % k) * size;
    const margin = size / 16;
    layer.features = layer.features.filter((f) => near(f.geometry, ox - margin, oy - margin, size + 2 * margin));
    for (const f of layer.features) {
      f.geometry = f.geometry.map((ring) => ring.map((p) => ({x: (p.x - ox) * k, y: (p.y - oy) * k})));
    }
  }
  return decoded;
}

// Whether a line's box meets the square (the tile and a margin): what is drawn of it there.
function near(rings, ox, oy, size) {
  for (const ring of rings) {
    const xs = ring.map((p) => p.x);
    const ys = ring.map((p) => p.y);
    if (Math.max(...xs) >= ox && Math.min(...xs) <= ox + size && Math.max(...ys) >= oy && Math.min(...ys) <= oy + size) return true;
  }
  return false;
}

export class Roads {
  // map: the Leaflet map; pane: the pane's name and zIndex; minzoom: the tiles' first zoom
  // (from /tiles); zoomOffset: the page's tiles are drawn 256 << offset px wide (the one map: 1).
  constructor(map, {pane = 'roads', zIndex = 420, minzoom = 12, zoomOffset = 0, opacity = 0.75} = {}) {
    this.map = map;
    if (!map.getPane(pane)) map.createPane(pane).style.zIndex = zIndex;
    map.getPane(pane).style.pointerEvents = 'none';
    this.minZoom = minzoom + zoomOffset;
    this.offset = zoomOffset;
    this.layer = new RoadTiles('/tiles/roads/{z}/{x}/{y}.mvt', {
      pane, interactive: false, rendererFactory: L.svg.tile, getFeatureId: (f) => f.id, offset: zoomOffset,
      tileSize: 256 << zoomOffset, minZoom: this.minZoom,
      vectorTileLayerStyles: {roads: (props, z) => this.style(props, z - zoomOffset, opacity)},
    });
    this.features = 0;  // drawn so far (for the tests and the curious)
    this.layer.on('tileload', () => this.count());
  }

  style(props, z, opacity) {
    const s = CLASSES[props.class] ?? CLASSES.local;
    return {color: s.color, weight: s.weight * (z >= 16 ? 1.5 : z >= 14 ? 1.2 : 1), opacity, lineCap: 'round'};
  }

  show(on) {
    if (on && !this.map.hasLayer(this.layer)) this.layer.addTo(this.map);
    else if (!on && this.map.hasLayer(this.layer)) this.map.removeLayer(this.layer);
  }

  shown() {
    return this.map.hasLayer(this.layer);
  }

  loading() {
    return this.shown() && this.layer.isLoading();
  }

  // The features of the tiles drawn: [{id, road_id, tile: "z/x/y"}] (the addresses of the data
  // tiles they come from; past the last zoom, a tile's part of its ancestor's).
  drawn() {
    const out = [];
    for (const [key, tile] of Object.entries(this.layer._vectorTiles ?? {})) {
      const [x, y, zoom] = key.split(':').map(Number);
      const z = zoom - this.offset;
      const d = Math.max(0, z - LAST);
      for (const [id, feature] of Object.entries(tile._features ?? {})) {
        out.push({id: Number(id), road_id: feature.feature.properties.road_id, tile: `${z - d}/${x >> d}/${y >> d}`,
                  part: d ? `${z}/${x}/${y}` : null});
      }
    }
    return out;
  }

  count() {
    this.features = this.drawn().length;
  }
}

// The one map's roads: under the units' lines (pane 420: over the land and the choropleth,
// under the lines at 450), from the zoom their tiles start (street level), with a toggle in the
// layers list (#roads-toggle). A layer of the page's state like the levels ('roads' in the link's
// layers=, on by default). Null when the service has no roads.
export function mapRoads(map, ctx, zoomOffset) {
  const box = document.getElementById('roads-toggle');
  if (ctx.minzoom.roads === undefined) {
    box?.closest('label')?.remove();
    return null;
  }
  const roads = new Roads(map, {minzoom: ctx.minzoom.roads, zoomOffset});
  const on = ctx.state.layers.has('roads');
  if (box) {
    box.checked = on;
    box.addEventListener('change', () => {
      if (box.checked) ctx.state.layers.add('roads'); else ctx.state.layers.delete('roads');
      roads.show(box.checked);
      ctx.writeHash?.();
    });
  }
  roads.show(on);
  return roads;
}
