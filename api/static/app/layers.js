// The map's layers: the service's vector tiles (grid boundaries, stations, the
// choropleth), names, the event heat and the coverage view. Each class owns one
// thing on the map and redraws it from the page's state.

import {label, number, t} from './i18n.js';

// The service's tiles drawn 512 px wide: a display tile at zoom z is the data
// tile of zoom z - 1, so a screen takes a quarter of the requests 256 px need.
export const ZOOM_OFFSET = 1;

function dataCoords(coords) {
  const data = L.point(coords.x, coords.y);
  data.z = coords.z - ZOOM_OFFSET;
  return data;
}

// The choropleth and the boundaries of a level ask for the same data tile in the
// same moment (both redraw on moveend): one request and one decode serve both.
// Layers only read a decoded tile, so sharing it is safe; it is forgotten once
// it has arrived, so a later redraw asks the service (and the HTTP cache) again.
const onTheirWay = new Map();

function fetchTile(layer, data, tile) {
  const key = `${layer._url}#${data.z}/${data.x}/${data.y}`;
  let promise = onTheirWay.get(key);
  if (!promise) {
    promise = L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(layer, data, tile);
    onTheirWay.set(key, promise);
    const forget = () => onTheirWay.delete(key);
    promise.then(forget, forget);
  }
  return promise;
}

export const Tiles = L.VectorGrid.Protobuf.extend({
  options: {tileSize: 256 << ZOOM_OFFSET, maxNativeZoom: 16 + ZOOM_OFFSET},

  _getVectorTilePromise(coords, tile) {
    return fetchTile(this, dataCoords(coords), tile);
  },

  // GridLayer.redraw (Leaflet 1.9.4) asks for tiles at the map's zoom unrounded
  // (z=13.5 with fractional zoom); _setView rounds it as every other update does.
  redraw() {
    if (this._map) {
      this._removeAllTiles();
      this._setView(this._map.getCenter(), this._map.getZoom());
    }
    return this;
  },
});

// Several of the service's tile layers drawn into one canvas per tile: one
// request per layer and tile, merged before drawing in the order given.
const MergedTiles = Tiles.extend({
  _getVectorTilePromise(coords, tile) {
    const data = dataCoords(coords);
    const sources = this.options.sources(data.z);
    const parts = sources.map((name) => {
      this._url = `/tiles/${name}/{z}/{x}/{y}.mvt`;
      return fetchTile(this, data, tile).catch(() => ({layers: {}}));
    });
    return Promise.all(parts).then((tiles) => {
      const layers = {};
      tiles.forEach((decoded, i) => {
        if (decoded.layers[sources[i]]) layers[sources[i]] = decoded.layers[sources[i]];
      });
      return {layers};
    });
  },
});

export function ramp(colours, k) {
  if (k <= 1) return [colours[colours.length - 1]];
  return Array.from({length: k}, (_, i) => colours[Math.round((i * (colours.length - 1)) / (k - 1))]);
}

// Grid boundaries of every shown level, clickable. Drawn fine to coarse, so a
// town's line lies over its villages' along the edges they share. A click lands
// on the last interactive feature drawn under the pointer: only the finest full
// level drawn (and the partial level-3 plots, drawn after it) take clicks, and
// the page reads coarser units off the code's prefix.
export class Lines {
  constructor(map, ctx, onClick) {
    this.ctx = ctx;
    const styles = {};
    for (const level of ctx.levels) styles[level.name] = (props, z) => this.lineStyle(level.name, z - ZOOM_OFFSET);
    this.layer = new MergedTiles('', {
      pane: 'lines',
      rendererFactory: L.canvas.tile,
      interactive: true,
      vectorTileLayerStyles: styles,
      sources: (z) => this.sources(z),
    }).addTo(map);
    this.layer.on('click', (e) => onClick(e.layer.properties, e.latlng));
    // hovering a unit names it and gives its households (the tile's own figures: nothing asked for)
    this.layer.on('mouseover', (e) => ctx.hover?.(e.layer.properties, e.originalEvent));
    this.layer.on('mouseout', () => ctx.hover?.(null));
  }

  // The levels drawn from data tiles of zoom z, in drawing order.
  sources(z) {
    const {state, style, minzoom} = this.ctx;
    const shown = this.ctx.levels.filter((lv) => state.layers.has(lv.name) && z >= (minzoom[lv.name] ?? 0) &&
                                           z + ZOOM_OFFSET >= style.levels[lv.name].show_from);
    const full = shown.filter((lv) => lv.full).reverse();
    const partial = shown.filter((lv) => !lv.full);
    return [...full.slice(0, 1), ...partial, ...full.slice(1)].map((lv) => lv.name);
  }

  lineStyle(level, z) {
    const s = this.ctx.style.levels[level];
    const drawn = this.sources(z);
    return {
      color: s.color, weight: s.weight, opacity: s.opacity, dashArray: s.dashArray,
      fill: Boolean(s.fillColor), fillColor: s.fillColor, fillOpacity: s.fillOpacity ?? 0,
      interactive: level === drawn[0] || !this.ctx.levels.find((lv) => lv.name === level).full,
    };
  }

  redraw() {
    this.layer.redraw();
  }
}

// Stations by kind. SVG tiles drawn beyond their box: a tile holds the points
// inside it only, and a circle near its edge would be cut on a canvas. Only the
// circles take the pointer, so clicks elsewhere reach the grids below.
export class Stations {
  constructor(map, ctx, onClick) {
    this.map = map;
    this.ctx = ctx;
    this.layer = new Tiles('/tiles/stations/{z}/{x}/{y}.mvt', {
      pane: 'stations',
      rendererFactory: L.svg.tile,
      interactive: true,
      minZoom: (ctx.minzoom.stations ?? 0) + ZOOM_OFFSET,
      vectorTileLayerStyles: {stations: (props, z) => this.style(props, z)},
    });
    this.layer.on('click', (e) => onClick(e.layer.properties, e.latlng));
    this.update();
  }

  style(props, z) {
    if (!this.ctx.state.kinds.has(props.kind)) return [];
    const s = this.ctx.style.stations;
    return {
      radius: s.radius + Math.max(0, z - 14) * 1.5, weight: 1.5, color: s.ring, opacity: 1,
      fill: true, fillColor: s.kinds[props.kind] || '#ffffff', fillOpacity: 1,
    };
  }

  // On a coloured ground (a choropleth, the served ground) a light ring keeps a dot of the same
  // hue as the fill apart from it (green stations on green 'within band' grids). The ring is
  // a class on the map (map.css), so the tiles already drawn change without being fetched again.
  ring() {
    const {state, style} = this.ctx;
    const container = this.map.getContainer();
    container.style.setProperty('--station-ring', style.stations.ring_on_fill);
    container.classList.toggle('stations-on-colour', Boolean(state.field || state.coverage));
  }

  update() {
    this.ring();
    const shown = this.ctx.state.layers.has('stations');
    if (shown && !this.map.hasLayer(this.layer)) this.layer.addTo(this.map);
    else if (!shown && this.map.hasLayer(this.layer)) this.map.removeLayer(this.layer);
    else if (shown) this.layer.redraw();
  }
}

// The choropleth's event indicators (style.json's event_fields) are named ev_<indicator> in the
// choropleth menu and the link; their values come from the events panel's answer, not the tiles.
export const EVENT_FIELD = 'ev_';
export const isEventField = (field) => Boolean(field) && field.startsWith(EVENT_FIELD);

// The land (the top level, filled) and the choropleth of one level's figure: a figure the tiles
// carry (style.json's fields), or an event indicator of the month and categories chosen (the
// service's /events/map: every unit's value and the classes), restyled on the features already
// drawn when only the values change: no tile is asked for again.
export class Fills {
  constructor(map, ctx) {
    this.ctx = ctx;
    this.classes = null;
    this.events = null;  // the event choropleth shown: {level, indicator, period, values: {code: value}, ...}
    this.drawn = null;   // what the drawn tiles hold (the sources), so that a restyle is enough
    const styles = {};
    for (const level of ctx.levels) styles[level.name] = (props) => this.fillStyle(level.name, props);
    this.layer = new MergedTiles('', {
      rendererFactory: L.canvas.tile,
      interactive: false,
      vectorTileLayerStyles: styles,
      getFeatureId: (feature) => feature.properties.code,
      sources: (z) => this.sources(z),
    }).addTo(map);
  }

  // Whether the choropleth shows an event indicator (it then follows the events' filter).
  followsEvents() {
    return isEventField(this.ctx.state.field);
  }

  meta(field) {
    const {style} = this.ctx;
    return isEventField(field) ? style.event_fields[field.slice(EVENT_FIELD.length)] : style.fields[field];
  }

  sources(z) {
    const top = this.ctx.levels[0].name;
    const names = [top];
    const {field, flevel} = this.ctx.state;
    if (field && flevel !== top && z >= (this.ctx.minzoom[flevel] ?? 0)) names.push(flevel);
    return names;
  }

  fillStyle(level, props) {
    const {style, state} = this.ctx;
    if (level === state.flevel && state.field) {
      const value = isEventField(state.field) ? this.events?.values[props.code] : props[state.field];
      const colour = this.colour(value);
      return {stroke: true, weight: 0.6, color: colour, opacity: 0.9, fill: true, fillColor: colour,
              fillOpacity: style.choropleth.fillOpacity};
    }
    if (level === this.ctx.levels[0].name) return {stroke: false, fill: true, ...style.land};
    return [];
  }

  colour(value) {
    const {style, state} = this.ctx;
    if (value === null || value === undefined || value === '') return style.no_data;
    if (state.field === 'band') return style.band[value]?.color ?? style.no_data;
    if (!this.classes) return style.no_data;
    const i = this.classes.bins.findIndex((upper) => value <= upper);
    return this.classes.colours[i === -1 ? this.classes.colours.length - 1 : i];
  }

  // Class breaks from the service (mapclassify), then a redraw; an event indicator's values
  // and classes from the events panel's answer, then a restyle of what is drawn.
  async update() {
    const {state, style, api} = this.ctx;
    const sources = `${Boolean(state.field)}|${state.flevel}`;
    if (this.followsEvents()) {
      const answer = await this.ctx.events.answer();
      if (!this.followsEvents()) return this.legend();  // the menu moved on meanwhile
      const c = answer?.choropleth;
      if (!c || c.level !== state.flevel || `${EVENT_FIELD}${c.indicator}` !== state.field) return this.legend();
      this.events = c;
      this.classes = {...c, colours: ramp(style.ramps[this.meta(state.field).ramp], c.bins.length)};
      if (this.drawn === sources) this.restyle(); else this.layer.redraw();
      this.drawn = sources;
      document.body.dataset.choropleth = `${c.level}|${c.indicator}|${c.period}|${state.category}`;
      return this.legend();
    }
    this.events = null;
    this.classes = null;
    this.bandCounts = null;
    if (state.field === 'band') {
      // how many units of the level fall in each band (withheld ones under 'no data')
      const units = await api(`/stats/${state.flevel}`);
      const rows = units.units;
      this.bandCounts = {};
      for (const u of rows) {
        const key = u.band ?? 'no_data';
        this.bandCounts[key] = (this.bandCounts[key] ?? 0) + 1;
      }
    } else if (state.field) {
      const breaks = await api(`/stats/${state.flevel}/breaks?field=${state.field}&k=${style.choropleth.k}` +
                               `&scheme=${state.scheme}`);
      const colours = ramp(style.ramps[style.fields[state.field].ramp], breaks.bins.length);
      this.classes = {...breaks, colours};
    }
    this.layer.redraw();
    this.drawn = sources;
    delete document.body.dataset.choropleth;
    return this.legend();
  }

  // Every drawn unit of the level styled again from the values now kept (VectorGrid keeps each
  // tile's features by code: getFeatureId), the tiles kept as they are.
  restyle() {
    const level = this.ctx.state.flevel;
    const style = this.layer.options.vectorTileLayerStyles[level];
    for (const tile of Object.values(this.layer._vectorTiles ?? {})) {
      for (const data of Object.values(tile._features ?? {})) {
        if (data.layerName === level) this.layer._updateStyles(data.feature, tile, style);
      }
    }
  }

  legend() {
    const {state, style, levelLabel, vocabulary} = this.ctx;
    if (!state.field) return '';
    const meta = this.meta(state.field);
    let rows = '';
    if (state.field === 'band') {
      const counts = this.bandCounts ?? {};
      rows = Object.entries(style.band).map(([key, b]) => row(b.color, label(b), number(counts[key] ?? 0))).join('');
      if (counts.no_data) return `<h3>${label(meta)} · ${levelLabel(state.flevel)}</h3>${rows}` +
        row(style.no_data, t('no_data'), number(counts.no_data));
    } else if (this.classes && this.classes.bins.length) {
      let low = this.classes.min;
      rows = this.classes.bins.map((upper, i) => {
        // a class of one value (a rate of 0 % in many units) is written once
        const text = low === upper ? number(upper, meta.format) : `${number(low, meta.format)} – ${number(upper, meta.format)}`;
        low = upper;
        return row(this.classes.colours[i], text, this.classes.counts[i]);
      }).join('');
    }
    rows += row(style.no_data, t('no_data'));
    if (this.followsEvents()) {
      const what = state.category ? label(vocabulary.event_categories[state.category]) : t('all');
      return `<h3>${t(state.field)} · ${levelLabel(state.flevel)}</h3>` +
        `<div class="row note" data-period="${this.events?.period ?? ''}">${this.events?.period ?? ''} · ${what}</div>${rows}`;
    }
    return `<h3>${label(meta)} · ${levelLabel(state.flevel)}</h3>${rows}`;
  }
}

function row(colour, text, count, kind = '') {
  const n = count === undefined ? '' : `<span class="count">${count}</span>`;
  return `<div class="row"><span class="box ${kind}" style="--colour:${colour};background:${colour}"></span><span>${text}</span>${n}</div>`;
}

// Names of the units, for the level that suits the zoom, placed without overlap.
export class Labels {
  constructor(map, ctx) {
    this.map = map;
    this.ctx = ctx;
    this.group = L.layerGroup().addTo(map);
    this.cache = {};
  }

  levelForZoom(zoom) {
    const {style, state} = this.ctx;
    const z = Math.floor(zoom);
    const shown = this.ctx.levels.filter((lv) => state.layers.has(lv.name));
    return shown.find((lv) => style.levels[lv.name].labels[0] <= z && z <= style.levels[lv.name].labels[1])?.name;
  }

  // How wide a name is written: the label's own font, measured (letter spacing included).
  measure(level, name, size) {
    if (!this.probe?.[level]) {
      this.probe ??= {};
      const span = document.createElement('span');
      span.className = `unit-label ${level}`;
      span.style.cssText = 'position:absolute;visibility:hidden;left:-9999px;top:0';
      document.body.append(span);
      const cs = getComputedStyle(span);
      const spacing = parseFloat(cs.letterSpacing) / parseFloat(cs.fontSize) || 0;
      this.probe[level] = {font: `${cs.fontWeight} {size}px ${cs.fontFamily}`, spacing};
      span.remove();
      this.canvas ??= document.createElement('canvas').getContext('2d');
    }
    const {font, spacing} = this.probe[level];
    this.canvas.font = font.replace('{size}', size.toFixed(1));
    return this.canvas.measureText(name).width + spacing * size * name.length;
  }

  // Names are placed most room first (the largest inscribed circle: the biggest units, the ones a
  // reader looks for), each at its unit's label point or, if that box is taken, moved within the
  // unit's inscribed circle; a name that still collides is left out. The top level shown (the towns
  // at the city view) must all be named: there the least room goes first (the big units can still
  // move out of the way) and a name is tried smaller before giving up. No two boxes overlap.
  async update() {
    const level = this.levelForZoom(this.map.getZoom());
    if (!level) return this.group.clearLayers();
    this.cache[level] ??= this.ctx.api(`/map/labels/${level}.json`).then((body) => body.labels);
    const top = this.ctx.levels.find((lv) => this.ctx.state.layers.has(lv.name))?.name === level;
    const labels = (await this.cache[level]).map((l, i) => [...l, i])
      .sort((a, b) => (top ? 1 : -1) * ((a[4] ?? 0) - (b[4] ?? 0)) || a.at(-1) - b.at(-1));
    if (level !== this.levelForZoom(this.map.getZoom())) return;  // the zoom moved on meanwhile
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16;
    const scale = this.ctx.state.labelScale ?? 1;
    const base = this.ctx.style.levels[level].font * rem * scale;
    const zoom = this.map.getZoom();
    // at the top level a name may shrink, down to the normal size's smallest, before it is left out
    const sizes = top ? [...new Set([1, 0.85, 0.7, 0.7 / scale, 0.6 / scale].filter((k) => k <= 1))] : [1];
    const view = this.map.getBounds().pad(0.05);
    const frame = this.map.getSize();
    const origin = this.map.getContainer().getBoundingClientRect();
    // what lies over the map (the legend, the zoom buttons, the scale) is taken from the start:
    // a name under it would be cut
    const taken = [...document.querySelectorAll('#legend:not(:empty), #map .leaflet-control')]
      .map((el) => el.getBoundingClientRect()).filter((r) => r.width > 0)
      .map((r) => [r.left - origin.left, r.top - origin.top, r.right - origin.left, r.bottom - origin.top]);
    const free = (box) => box[0] >= 0 && box[1] >= 0 && box[2] <= frame.x && box[3] <= frame.y &&
      !taken.some((b) => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3]);
    // a name written at `at` (container pixels), kept if the box it really takes is free
    const write = (at, size, code, name) => {
      const icon = L.divIcon({className: `unit-label ${level}`, iconSize: [0, 0],
                              html: `<span style="font-size:${size.toFixed(1)}px" data-code="${code}">${name}</span>`});
      const marker = L.marker(this.map.containerPointToLatLng(at), {icon, interactive: false, keyboard: false})
        .addTo(this.group);
      const r = marker.getElement().firstElementChild.getBoundingClientRect();
      const box = [r.left - origin.left, r.top - origin.top, r.right - origin.left, r.bottom - origin.top];
      if (free(box)) { taken.push(box); return true; }
      this.group.removeLayer(marker);
      return false;
    };
    this.group.clearLayers();
    for (const [lat, lon, code, name, radius] of labels) {
      if (!view.contains([lat, lon])) continue;
      const p = this.map.latLngToContainerPoint([lat, lon]);
      const metresPerPx = 40075016.686 * Math.cos((lat * Math.PI) / 180) / (256 * 2 ** zoom);
      const room = (radius ?? 0) / metresPerPx;  // the inscribed circle's radius on screen
      let done = false;
      for (const k of sizes) {
        const size = base * k;
        const half = {x: this.measure(level, name, size) / 2 + 2, y: size * 0.76};
        const steps = top ? [1, 2] : [1];
        const moves = [[0, 0], ...steps.flatMap((j) => [[0, -j * half.y], [0, j * half.y], [-j * half.x / 2, 0],
          [j * half.x / 2, 0], [-j * half.x / 2, -j * half.y], [j * half.x / 2, -j * half.y],
          [-j * half.x / 2, j * half.y], [j * half.x / 2, j * half.y]])]
          .filter(([dx, dy]) => Math.hypot(dx, dy) <= room || (dx === 0 && dy === 0));
        for (const [dx, dy] of moves) {
          const box = [p.x + dx - half.x, p.y + dy - half.y, p.x + dx + half.x, p.y + dy + half.y];
          // the estimate rules most places out cheaply; the page's own layout has the last word
          if (free(box) && write(L.point(p.x + dx, p.y + dy), size, code, name)) { done = true; break; }
        }
        if (done) break;
      }
    }
  }
}

// Event counts on square cells (an aggregate: never an event's own position).
export class Heat {
  constructor(map, ctx) {
    this.map = map;
    this.ctx = ctx;
    this.layer = null;
    this.key = null;
  }

  // The public heat map has a smallest cell and counts whole periods (the service's
  // settings, in /map/config.json): the page asks for nothing finer.
  cellFor(zoom) {
    const cell = zoom >= 14 ? 100 : zoom >= 13 ? 150 : zoom >= 12 ? 250 : 500;
    return Math.max(cell, this.ctx.config.heat?.min_cell_m ?? 0);
  }

  query() {
    const {state} = this.ctx;
    const period = this.ctx.config.heat?.period ?? 'month';
    const q = new URLSearchParams({cell: this.cellFor(this.map.getZoom())});
    if (state.category) q.set('category', state.category);
    if (state.from) q.set('from', periodStart(state.from, period));
    if (state.to) q.set('to', periodAfter(state.to, period));
    return `/events/heat?${q}`;
  }

  async update() {
    const {state, style, api} = this.ctx;
    if (!state.heat) {
      if (this.layer) this.map.removeLayer(this.layer);
      this.layer = null;
      this.key = null;
      return '';
    }
    const url = this.query();
    if (url !== this.key) {
      this.key = url;
      const body = await api(url);
      if (url !== this.key) return this.legend();
      const counts = body.cells.map((c) => c[2]).sort((a, b) => a - b);
      const max = counts.length ? counts[Math.floor(counts.length * 0.97)] : 1;
      const options = {...style.heat, max: Math.max(max, 1), maxZoom: this.map.getZoom()};
      if (this.layer) this.map.removeLayer(this.layer);
      this.layer = L.heatLayer(body.cells, options).addTo(this.map);
      this.total = counts.reduce((a, b) => a + b, 0);
      this.withheld = body.withheld?.groups ? {...body.withheld, k: body.min_count} : null;
    }
    return this.legend();
  }

  legend() {
    const stops = Object.entries(this.ctx.style.heat.gradient).map(([at, c]) => `${c} ${at * 100}%`).join(',');
    const {state, vocabulary} = this.ctx;
    const what = state.category ? label(vocabulary.event_categories[state.category]) : t('all');
    const period = state.from || state.to ? ` · ${state.from || '…'} ~ ${state.to || '…'}` : '';
    return `<h3>${t('event_density')} · ${what}${period}</h3>` +
      `<div class="row"><span>${t('events')}</span><span class="count">${number(this.total ?? 0)}</span></div>` +
      (this.withheld ? `<div class="row withheld" data-withheld="${this.withheld.groups}">` +
        `<span>${t('heat_withheld', {n: this.withheld.groups, k: this.withheld.k, max: this.withheld.at_most})}` +
        '</span></div>' : '') +
      `<div class="gradient" style="background:linear-gradient(90deg,${stops})"></div>` +
      `<div class="ends"><span>${t('low')}</span><span>${t('high')}</span></div>`;
  }
}

// The first day of the period ('month', 'quarter' or 'year') holding a month ('2025-05'),
// and the first day of the period after it.
function periodStart(month, period) {
  const [y, m] = month.split('-').map(Number);
  const first = period === 'year' ? 1 : period === 'quarter' ? m - ((m - 1) % 3) : m;
  return `${y}-${String(first).padStart(2, '0')}-01`;
}

function periodAfter(month, period) {
  const [y, m] = periodStart(month, period).split('-').map(Number);
  const next = m + (period === 'year' ? 12 : period === 'quarter' ? 3 : 1);
  return next > 12 ? `${y + 1}-${String(next - 12).padStart(2, '0')}-01` : `${y}-${String(next).padStart(2, '0')}-01`;
}

// Diagonal lines of a colour, 8 px apart, over a faint wash of it: a canvas fill.
function hatch(colour) {
  const tile = document.createElement('canvas');
  tile.width = tile.height = 8;
  const g = tile.getContext('2d');
  g.fillStyle = colour;
  g.globalAlpha = 0.08;
  g.fillRect(0, 0, 8, 8);
  g.globalAlpha = 0.85;
  g.strokeStyle = colour;
  g.lineWidth = 1.5;
  g.beginPath();
  for (const d of [-8, 0, 8]) { g.moveTo(d, 8); g.lineTo(d + 8, 0); }
  g.stroke();
  return g.createPattern(tile, 'repeat');
}

// The ground a life circle serves (all stations' areas, dissolved) and the
// households left out of it.
export class Coverage {
  constructor(map, ctx) {
    this.map = map;
    this.ctx = ctx;
    this.group = L.layerGroup().addTo(map);
    this.summary = null;
  }

  async update() {
    const {state, style, api, levels} = this.ctx;
    const minutes = state.coverage;
    this.group.clearLayers();
    this.summary = null;
    if (!minutes) return '';
    const [served, report] = await Promise.all([
      api(`/map/served/${minutes}.json`),
      api(`/coverage?minutes=${minutes}&level=${levels[0].name}`),
    ]);
    if (minutes !== state.coverage) return this.legend();
    const options = {pane: 'coverage', interactive: false};
    L.geoJSON(served, {...options, style: style.coverage.served}).addTo(this.group);
    // hatched, not filled: at 5 minutes most of a town is left out, and a solid fill hid the map
    // (the map draws on a canvas, whose fill may be a pattern)
    this.hatch ??= hatch(style.coverage.uncovered.fillColor);
    L.geoJSON(report.uncovered, {...options, style: {...style.coverage.uncovered, fillColor: this.hatch, fillOpacity: 1}})
      .addTo(this.group);
    // over the units whose figures are published (a withheld one is null: left out of both sums)
    const known = report.units.filter((u) => u.households != null && u[`households_${minutes}min`] != null);
    const households = known.reduce((a, u) => a + u.households, 0);
    const within = known.reduce((a, u) => a + u[`households_${minutes}min`], 0);
    const left = report.uncovered.features.reduce((a, f) => a + (f.properties.households || 0), 0);
    this.summary = {minutes, share: households ? within / households : null,
                    areas: report.uncovered.features.length, households: left,
                    withheld: report.uncovered_withheld || 0, k: report.min_count};
    return this.legend();
  }

  text() {
    const s = this.summary;
    if (!s) return '';
    return t('coverage_summary', {m: s.minutes, share: number(s.share, 'pct'), n: number(s.areas), hh: number(s.households)}) +
      (s.withheld ? t('coverage_withheld', {w: number(s.withheld), k: s.k}) : '');
  }

  legend() {
    if (!this.summary) return '';
    const {style} = this.ctx;
    return `<h3>${t('coverage')} · ${t('minutes', {m: this.summary.minutes})}</h3>` +
      row(style.coverage.served.fillColor, t('served')) +
      row(style.coverage.uncovered.fillColor, t('uncovered_households', {n: number(this.summary.areas)}),
          number(this.summary.households), 'hatched');
  }
}
