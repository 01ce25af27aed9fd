// The workbench's map layers: the villages to choose from, the plan's blocks
// coloured by grid (with the brush), the grid outlines and names, the
// published outlines to compare with, the areas that move, and the split line.
// Geometry arrives from the service; the page only draws it.

import {number, t} from './i18n.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#edc948', '#76b7b2', '#ff9da7',
                 '#9c755f', '#86bcb6', '#d37295', '#a0cbe8', '#8cd17d', '#f1ce63', '#bab0ac', '#fabfd2'];

export function esc(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]);
}

// A stable colour per grid code: a grid keeps its colour through every edit.
export class Colours {
  constructor() { this.given = new Map(); }

  of(code) {
    if (!code) return '#3a4658';
    if (!this.given.has(code)) {
      const used = new Set(this.given.values());
      this.given.set(code, PALETTE.find((c) => !used.has(c)) ?? PALETTE[this.given.size % PALETTE.length]);
    }
    return this.given.get(code);
  }

  reset() { this.given.clear(); }

  // Codes changed (renumbering: {old: new}): each grid keeps its colour under its new code. The
  // old codes keep theirs too, for an undo.
  rename(renamed) {
    const before = new Map(this.given);
    for (const [old, code] of Object.entries(renamed ?? {})) {
      if (before.has(old)) this.given.set(code, before.get(old));
    }
  }

  snapshot() { return new Map(this.given); }
}

// The villages (and communities) a plan can be opened for, clickable.
export class Villages {
  constructor(map, style, onPick) {
    this.map = map;
    this.layer = L.geoJSON(null, {
      style: () => ({color: style.levels.village.color, weight: 1.5, opacity: 0.9, fillColor: '#0f2740', fillOpacity: 0.35}),
      onEachFeature: (feature, layer) => {
        layer.bindTooltip(esc(feature.properties.name), {sticky: true, className: 'plan-tooltip'});
        layer.on('click', () => onPick(feature.properties, layer.getBounds()));
        layer.on('mouseover', () => layer.setStyle({fillOpacity: 0.6}));
        layer.on('mouseout', () => layer.setStyle({fillOpacity: 0.35}));
      },
    });
  }

  load(collection, labels) {
    this.layer.clearLayers();
    this.layer.addData(collection);
    this.labels = L.layerGroup(labels.map(([lat, lon, , name]) => L.marker([lat, lon], {
      pane: 'labels', interactive: false, keyboard: false,
      icon: L.divIcon({className: 'grid-label village', html: `<span class="name">${esc(name)}</span>`, iconSize: null}),
    })));
    return this.layer.getBounds();
  }

  show(on) {
    for (const layer of [this.layer, this.labels]) {
      if (on) layer.addTo(this.map); else layer.remove();
    }
  }
}

// The stations inside the plan's unit: a grid without one is flagged in the figures.
export class Stations {
  constructor(map, style) {
    this.style = style;
    this.layer = L.layerGroup().addTo(map);
  }

  load(collection) {
    this.layer.clearLayers();
    const kinds = this.style.stations.kinds;
    L.geoJSON(collection, {pane: 'labels', interactive: false, pointToLayer: (feature, latlng) => L.circleMarker(latlng, {
      pane: 'labels', interactive: false, radius: 5, weight: 1.5, color: '#061426',
      fillColor: kinds[feature.properties.kind] ?? '#ffffff', fillOpacity: 1})}).addTo(this.layer);
  }
}

// A block a stroke would have the plan refuse (across a fence, out of or into a locked grid).
const PEN = {color: '#d7dee8', weight: 1.4, opacity: 0.95, dashArray: '3 3', fillColor: '#5b6472', fillOpacity: 0.85};
const REFUSED = {color: '#ff4d6d', weight: 3, opacity: 1, dashArray: '4 3', fillColor: '#ff4d6d', fillOpacity: 0.35};

// The plan's blocks, coloured by the grid each is in. Painting: a press on a
// block starts a stroke, every block the pointer passes over joins it, and the
// release sends the whole stroke as one edit (ctx.paint).
export class Blocks {
  constructor(map, ctx) {
    this.map = map;
    this.ctx = ctx;
    this.byId = new Map();
    this.stroke = null;
    this.layer = L.geoJSON(null, {
      pane: 'blocks',
      renderer: L.svg({pane: 'blocks', padding: 0.5}),
      style: (feature) => this.styleOf(feature.properties.block_id),
      onEachFeature: (feature, layer) => {
        this.byId.set(feature.properties.block_id, layer);
        layer.on('mousedown', (e) => this.press(e, feature.properties.block_id));
        layer.on('mouseover', () => this.enter(feature.properties));
        layer.on('mouseout', () => ctx.hover(null));
        layer.on('click', () => ctx.clickBlock(feature.properties.block_id));
        layer.on('contextmenu', (e) => {
          L.DomEvent.preventDefault(e.originalEvent);
          ctx.pickGrid(ctx.state.assignment[feature.properties.block_id]);
        });
      },
    }).addTo(map);
    document.addEventListener('mouseup', () => this.release());
  }

  load(collection) {
    this.layer.clearLayers();
    this.byId.clear();
    this.layer.addData(collection);
    return this.layer.getBounds();
  }

  styleOf(id, preview = null) {
    const code = preview ?? this.ctx.state?.assignment?.[id] ?? '';
    const selected = code && code === this.ctx.selected;
    if (!code && this.ctx.state) return PEN;  // in the holding pen (or about to be)
    return {
      color: preview ? '#ffffff' : '#0b1a2c', weight: preview ? 1.6 : 0.6, opacity: 0.9,
      dashArray: preview ? '3 2' : null,
      fillColor: this.ctx.colours.of(code), fillOpacity: preview ? 0.9 : (selected ? 0.78 : 0.55),
    };
  }

  restyle() {
    for (const [id, layer] of this.byId) layer.setStyle(this.styleOf(id));
  }

  press(e, id) {
    if (e.originalEvent.button !== 0 || !this.ctx.canPaint()) return;
    L.DomEvent.preventDefault(e.originalEvent);
    this.stroke = new Set();
    this.add(id);
  }

  enter(props) {
    this.ctx.hover(props);
    if (this.stroke) this.add(props.block_id);
  }

  // The brush reaches the block and, with a larger brush, the blocks within n shared edges of it.
  add(id) {
    const reached = this.ctx.context.reach(id, this.ctx.brushSize).filter((b) => !this.stroke.has(b));
    if (!reached.length) return;
    for (const b of reached) this.stroke.add(b);
    this.preview();
  }

  // The stroke so far: the blocks it will paint in the grid's colour, those the plan would refuse
  // outlined in red, and why, said at once (nothing is sent before the release).
  preview() {
    const to = this.ctx.strokeTarget();
    const judged = this.ctx.context.judge([...this.stroke], to);
    const refused = new Set([...judged.fenced, ...judged.lockedOut]);
    for (const b of this.stroke) {
      this.byId.get(b)?.setStyle(refused.has(b) ? REFUSED : this.styleOf(b, to));
      if (refused.has(b)) this.byId.get(b)?.bringToFront();
    }
    this.ctx.strokeNote(this.ctx.context.explain(judged, to));
  }

  release() {
    if (!this.stroke) return;
    const ids = [...this.stroke];
    this.stroke = null;
    this.ctx.paint(ids);
  }

  // The pixel of a block's inside (for the tests and the curious).
  where(id) {
    const layer = this.byId.get(id);
    return layer ? layer.getBounds().getCenter() : null;
  }
}

export const COMPARE = {
  published: {color: '#38d6ff', weight: 2.4, dashArray: '8 5', opacity: 0.95},
  moves: {color: '#ff5cd6', weight: 2.2, opacity: 1, fillColor: 'url(#moved-hatch)', fillOpacity: 1},
};

// The hatching of the moved areas: thin diagonal magenta lines on nothing, an SVG pattern in
// the compare pane's own SVG (where Leaflet draws them).
function hatch(map) {
  const svg = map.getPane('compare').querySelector('svg');
  if (!svg || svg.querySelector('#moved-hatch')) return;
  const ns = 'http://www.w3.org/2000/svg';
  const defs = document.createElementNS(ns, 'defs');
  const pattern = document.createElementNS(ns, 'pattern');
  for (const [k, v] of Object.entries({id: 'moved-hatch', width: '8', height: '8', patternUnits: 'userSpaceOnUse',
                                      patternTransform: 'rotate(45)'})) pattern.setAttribute(k, v);
  const line = document.createElementNS(ns, 'line');
  for (const [k, v] of Object.entries({x1: '0', y1: '0', x2: '0', y2: '8', stroke: '#ff5cd6', 'stroke-width': '2',
                                      'stroke-opacity': '0.85'})) line.setAttribute(k, v);
  pattern.append(line);
  defs.append(pattern);
  svg.prepend(defs);
}

// Grid outlines with their names and households, the selected grid, the
// published outlines (compare) and the areas whose households move.
export class Outlines {
  constructor(map, ctx) {
    this.map = map;
    this.ctx = ctx;
    const style = ctx.style;
    this.grids = L.geoJSON(null, {pane: 'outlines', interactive: false,
                                  style: () => ({color: '#f4f8ff', weight: 2.6, opacity: 0.95, fill: false})}).addTo(map);
    this.selected = L.geoJSON(null, {pane: 'outlines', interactive: false, style: () => ({...style.selected, fill: false})}).addTo(map);
    // Compare: three things, three looks. The selected grid is the map's yellow (style.selected);
    // the published outlines a cyan dashed line; the areas whose households move a magenta outline
    // hatched over the blocks, whose new colours stay visible through it.
    this.published = L.geoJSON(null, {pane: 'compare', interactive: false,
                                      style: () => ({...COMPARE.published, fill: false})});
    this.moves = L.geoJSON(null, {pane: 'compare', interactive: false, style: () => ({...COMPARE.moves})});
    this.moves.on('add', () => hatch(map));
    this.labels = L.layerGroup().addTo(map);
  }

  draw(state) {
    this.grids.clearLayers();
    this.grids.addData(state.grids);
    this.labels.clearLayers();
    const figures = new Map(state.impact.grids.map((g) => [g.code, g]));
    for (const unit of state.units) {
      if (unit.label == null) continue;
      const f = figures.get(unit.code) ?? {};
      const html = `<span class="name">${esc(unit.name)}</span><span class="hh ${f.band ?? ''}">${number(f.households)} ${t('hh_unit')}</span>`;
      L.marker(unit.label, {pane: 'labels', interactive: false, keyboard: false,
                            icon: L.divIcon({className: 'grid-label', html, iconSize: null})}).addTo(this.labels);
    }
    this.select(state);
  }

  select(state) {
    this.selected.clearLayers();
    const feature = state.grids.features.find((f) => f.properties.code === this.ctx.selected);
    if (feature) this.selected.addData(feature);
  }

  compare(published, moves) {
    this.published.clearLayers();
    this.moves.clearLayers();
    if (published) { this.published.addData(published).addTo(this.map); } else { this.published.remove(); }
    if (moves) { this.moves.addData(moves).addTo(this.map); } else { this.moves.remove(); }
  }
}

// The line a grid is split along, drawn with Geoman; done(line) gets it as GeoJSON.
export class SplitLine {
  constructor(map, done) {
    this.map = map;
    map.pm.setGlobalOptions({snappable: false});
    map.on('pm:create', (e) => {
      const line = e.layer.toGeoJSON().geometry;
      e.layer.remove();
      done(line);
    });
  }

  setLanguage(lang) {
    this.map.pm.setLang(lang === 'en' ? 'en' : 'zh');
  }

  start() {
    this.map.pm.enableDraw('Line', {templineStyle: {color: '#ff4d6d', weight: 3}, hintlineStyle: {color: '#ff4d6d', dashArray: [5, 5]},
                                    pathOptions: {color: '#ff4d6d', weight: 3}, finishOn: null, tooltips: false});
    // the one instruction is the page's own (#mode-hint): Geoman's tooltips said it two more ways
  }

  stop() {
    this.map.pm.disableDraw();
  }
}
