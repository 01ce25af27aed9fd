// The one map (一张图): wiring only. The state lives in the URL's hash so that a
// link reproduces the view; the layers (layers.js) and the panel (panel.js) redraw
// from it. Every request goes to this service.

import {label, language, number, setLanguage, t} from './i18n.js';
import {ExportMenu} from './export.js';
import {Coverage, EVENT_FIELD, Fills, Heat, Labels, Lines, Stations, ZOOM_OFFSET, isEventField} from './layers.js';
import {mapRoads} from './roads.js';
import {Panel, Search} from './panel.js';
import {EventsPanel} from './events-panel.js';
import {Boundaries} from './boundaries.js';
import {SitingPanel} from './siting.js';

// every level below the top one can be coloured (the store's code scheme says which they are)
const choroplethLevels = (ctx) => ctx.levels.slice(1).map((lv) => lv.name);
const SCHEMES = ['fisher_jenks', 'quantiles', 'equal_interval'];
const MINUTES = [5, 10, 15];
const EVENT_PERIODS = ['month', 'quarter', 'year'];
// the choropleth's figures: those the tiles carry, then the event indicators (ev_closure_rate ...)
const choroplethFields = (ctx) => [...Object.keys(ctx.style.fields),
                                   ...Object.keys(ctx.style.event_fields ?? {}).map((k) => `${EVENT_FIELD}${k}`)];

let pending = 0;

// A key (viewer and above) kept for this tab, as the workbench keeps it: the page sends it with its requests.
const KEY = sessionStorage.getItem('gridgeo.key');

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// A request refused or never answered: what the page tells the reader (kept until dismissed).
class Failed extends Error {
  constructor(path, status, problem) {
    super(`${path}: ${status}`);
    Object.assign(this, {path, status, problem});
  }
}

// What a request is for, in the reader's words (never a raw path).
function what(path) {
  const parts = [['/stats', 'what_stats'], ['/coverage', 'what_coverage'], ['/events', 'what_events'],
    ['/search', 'what_search'], ['/collections', 'what_features'], ['/tiles', 'what_tiles']];
  const found = parts.find(([prefix]) => path.startsWith(prefix));
  return t(found ? found[1] : 'what_data');
}

async function api(path, {quiet = false} = {}) {
  pending += 1;
  try {
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await fetch(path, {headers: {Accept: 'application/json', ...(KEY ? {'X-API-Key': KEY} : {})}});
      } catch {
        const error = new Failed(path, 0, null);
        if (!quiet) message(t('service_unreachable', {what: what(path)}));
        throw error;
      }
      // 503 with Retry-After: the service is still preparing this (e.g. the service areas after a
      // publish); wait as it asks rather than fail
      if (response.status === 503 && response.headers.get('Retry-After') && attempt < 40) {
        toast(t('preparing_part'));
        await sleep(1000 * Math.min(Number(response.headers.get('Retry-After')) || 5, 30));
        continue;
      }
      if (!response.ok) {
        const problem = await response.json().catch(() => null);
        const error = new Failed(path, response.status, problem);
        if (!quiet) message(t('load_failed', {what: what(path), detail: problemText(problem, response)}));
        throw error;
      }
      return await response.json();
    }
  } finally {
    pending -= 1;
  }
}

function problemText(problem, response) {
  if (problem?.message_zh && language() === 'zh') return problem.message_zh;
  return problem?.message_en || problem?.detail || problem?.title || `${response.status} ${response.statusText ?? ""}`.trim();
}

// A message that stays until the reader closes it (failures, links that could not be followed).
function message(text, kind = 'error', {append = false} = {}) {
  const box = document.getElementById('message');
  const el = document.getElementById('message-text');
  el.textContent = append && !box.hidden && el.textContent ? `${el.textContent}\n${text}` : text;
  box.className = kind;
  box.dataset.kind = kind;
  box.hidden = false;
}

// Progress: any wait of the page's (its requests, the tiles) over 300 ms shows the bar.
function watchProgress(busy) {
  const bar = document.getElementById('progress');
  let since = 0;
  setInterval(() => {
    const now = Date.now();
    if (!busy()) {
      since = 0;
      bar.hidden = true;
      return;
    }
    since ||= now;
    if (now - since >= 300) bar.hidden = false;
  }, 100);
}

// A service on a store it has never prepared computes the figures, coverage and tile
// geometry once (a minute at city scale): say so, and start when it is ready.
async function ready() {
  const panel = document.getElementById('preparing');
  const started = Date.now();
  for (;;) {
    let health = null;
    try {
      health = await (await fetch('/health', {headers: {Accept: 'application/json'}})).json();
    } catch (error) {
      health = null;
    }
    if (health && health.ready) {
      panel.hidden = true;
      return health;
    }
    panel.hidden = false;
    const detail = panel.querySelector('.detail');
    if (health && health.failed) detail.textContent = t('prepare_failed', {why: health.failed});
    else detail.textContent = t('preparing_detail', {version: health ? health.data_version : '?',
                                                     seconds: Math.round((Date.now() - started) / 1000)});
    await sleep(2000);
  }
}

function toast(text, error = false) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = error ? 'error' : '';
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 2500);
}

// --- state <-> URL hash ------------------------------------------------------

function defaultState(ctx) {
  return {
    layers: new Set([...ctx.levels.map((lv) => lv.name), 'stations', 'roads']),
    kinds: new Set(Object.keys(ctx.vocabulary.station_kinds)),
    heat: false, field: '', flevel: ctx.config.main_level ?? 'grid2', scheme: ctx.style.choropleth.scheme,
    coverage: 0, category: '', from: '', to: '', unit: '', lang: 'zh', view: null, ignored: [], labelScale: 1,
    at: '', hot: false, period: 'month',
  };
}

function readHash(state, ctx) {
  const q = new URLSearchParams(location.hash.slice(1));
  const list = (key) => (q.get(key) ?? '').split(',').filter(Boolean);
  if (q.has('layers')) state.layers = new Set(list('layers'));
  if (q.has('kinds')) state.kinds = new Set(list('kinds'));
  state.heat = q.get('heat') === '1';
  state.field = q.get('field') ?? '';
  if (state.field && !choroplethFields(ctx).includes(state.field)) {
    state.ignored.push(t('link_field', {field: state.field}));
    state.field = '';
  }
  if (choroplethLevels(ctx).includes(q.get('flevel'))) state.flevel = q.get('flevel');
  if (SCHEMES.includes(q.get('scheme'))) state.scheme = q.get('scheme');
  state.coverage = MINUTES.includes(Number(q.get('cov'))) ? Number(q.get('cov')) : 0;
  state.category = q.get('cat') ?? '';
  if (state.category && !(state.category in ctx.vocabulary.event_categories)) {
    state.ignored.push(t('link_category', {category: state.category}));
    state.category = '';
  }
  state.from = q.get('from') ?? '';
  state.to = q.get('to') ?? '';
  state.unit = q.get('unit') ?? '';
  state.at = /^\d{4}(-\d{2}|-Q[1-4])?$/.test(q.get('at') ?? '') ? q.get('at') : '';
  state.period = EVENT_PERIODS.includes(q.get('per')) ? q.get('per') : 'month';
  state.hot = q.get('hot') === '1';
  state.lang = q.get('lang') === 'en' ? 'en' : 'zh';
  state.labelScale = LABEL_SCALES.includes(Number(q.get('names'))) ? Number(q.get('names')) : 1;
  const [z, lat, lon] = (q.get('map') ?? '').split('/').map(Number);
  state.view = Number.isFinite(z) && Number.isFinite(lat) && Number.isFinite(lon) ? {z, lat, lon} : null;
}

function writeHash(ctx) {
  const {state, map} = ctx;
  const c = map.getCenter();
  const q = new URLSearchParams();
  q.set('map', `${map.getZoom().toFixed(2)}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
  q.set('layers', [...state.layers].join(','));
  if (state.kinds.size !== Object.keys(ctx.vocabulary.station_kinds).length) q.set('kinds', [...state.kinds].join(','));
  if (state.heat) q.set('heat', '1');
  if (state.field) { q.set('field', state.field); q.set('flevel', state.flevel); q.set('scheme', state.scheme); }
  if (state.coverage) q.set('cov', state.coverage);
  if (state.category) q.set('cat', state.category);
  if (state.from) q.set('from', state.from);
  if (state.to) q.set('to', state.to);
  if (state.unit) q.set('unit', state.unit);
  if (state.at) q.set('at', state.at);
  if (state.period !== 'month') q.set('per', state.period);
  if (state.hot) q.set('hot', '1');
  if (state.lang !== 'zh') q.set('lang', state.lang);
  if (state.labelScale !== 1) q.set('names', state.labelScale);
  for (const extra of ctx.hashExtras ?? []) extra.hash(q);  // e.g. the boundary overlays (boundaries.js)
  history.replaceState(null, '', `#${q.toString().replaceAll('%2C', ',').replaceAll('%2F', '/')}`);
}

// --- controls -------------------------------------------------------------------

function buildControls(ctx) {
  const {state, style, vocabulary} = ctx;
  document.getElementById('layer-list').innerHTML = ctx.levels.map((lv) => `
    <li><label><input type="checkbox" data-layer="${lv.name}" ${state.layers.has(lv.name) ? 'checked' : ''}>
      <span class="swatch" style="border-color:${style.levels[lv.name].color}"></span>
      <span data-level-label="${lv.name}"></span>
      <span class="zoom-hint">${lv.count}</span></label></li>`).join('') + `
    <li><label><input type="checkbox" data-layer="stations" ${state.layers.has('stations') ? 'checked' : ''}>
      <span class="swatch dot" style="background:${style.stations.kinds.grid2_station}"></span>
      <span data-i18n="stations"></span></label></li>`;
  document.getElementById('kind-list').innerHTML = Object.keys(vocabulary.station_kinds).map((kind) => `
    <li><label><input type="checkbox" data-kind="${kind}" ${state.kinds.has(kind) ? 'checked' : ''}>
      <span class="swatch dot" style="background:${style.stations.kinds[kind]}"></span>
      <span data-kind-label="${kind}"></span></label></li>`).join('');
  document.getElementById('heat-toggle').checked = state.heat;

  const levels = choroplethLevels(ctx);
  fillSelect('choropleth-field', ['', ...choroplethFields(ctx)], state.field);
  fillSelect('choropleth-level', levels, state.flevel);
  fillSelect('choropleth-scheme', SCHEMES, state.scheme);
  fillSelect('event-category', ['', ...Object.keys(vocabulary.event_categories)], state.category);
  document.getElementById('coverage-choice').innerHTML = [0, ...MINUTES].map((m) =>
    `<button type="button" data-minutes="${m}" aria-pressed="${state.coverage === m}"></button>`).join('');
  for (const id of ['event-from', 'event-to']) {
    const input = document.getElementById(id);
    if (ctx.config.events) {
      input.min = ctx.config.events.first.slice(0, 7);
      input.max = ctx.config.events.last.slice(0, 7);
    }
  }
  document.getElementById('event-from').value = state.from;
  document.getElementById('event-to').value = state.to;
}

function fillSelect(id, values, chosen) {
  document.getElementById(id).innerHTML = values.map((v) =>
    `<option value="${v}" ${v === chosen ? 'selected' : ''}></option>`).join('');
}

// Texts that depend on the language (everything else is data-i18n).
function relabel(ctx) {
  const {style, vocabulary} = ctx;
  setLanguage(ctx.state.lang);
  document.getElementById('region-name').textContent = ctx.config.root.name;
  for (const el of document.querySelectorAll('[data-level-label]')) el.textContent = ctx.levelLabel(el.dataset.levelLabel);
  for (const el of document.querySelectorAll('[data-kind-label]')) el.textContent = label(vocabulary.station_kinds[el.dataset.kindLabel]);
  const names = {
    // the menu's words: a short form where the full name would be cut (the legend keeps the full one)
    'choropleth-field': (v) => (isEventField(v) ? t(v) : v ? label({label: style.fields[v].short ?? style.fields[v].label,
                                           label_en: style.fields[v].short_en ?? style.fields[v].label_en}) : t('none')),
    'choropleth-level': (v) => ctx.levelLabel(v),
    'choropleth-scheme': (v) => t(v),
    'event-category': (v) => (v ? label(vocabulary.event_categories[v]) : t('all')),
  };
  for (const [id, name] of Object.entries(names)) {
    for (const option of document.getElementById(id).options) option.textContent = name(option.value);
  }
  for (const b of document.querySelectorAll('#coverage-choice button')) {
    b.textContent = Number(b.dataset.minutes) ? t('minutes', {m: b.dataset.minutes}) : t('off');
  }
  kpis(ctx);
  ctx.panel.render();
  ctx.events?.relabel();
  ctx.siting?.relabel();
}

function kpis(ctx) {
  const f = ctx.config.root.figures;
  // each grid level's count under its own name (一级 31 · 二级 128 · 三级 90), thousands separated
  const gridLevels = ctx.levels.filter((lv) => lv.name.startsWith('grid'));
  const short = (lv) => ctx.levelLabel(lv.name).replace(/网格$/, '').replace(/\s*grids?$/i, '');
  const grids = gridLevels.map((lv) => `<span class="part" data-level="${lv.name}"><small>${short(lv)}</small>` +
    `${number(lv.count)}</span>`).join('');
  const items = [
    ['population', number(f.population)], ['households', number(f.households)], ['grids', grids],
    ['stations', number(f.stations)], ['events', number(f.events)], ['share15', number(f.share_15min, 'pct')],
  ];
  document.getElementById('kpis').innerHTML = items.map(([key, value]) =>
    `<div data-kpi="${key}"><dt>${t(key)}</dt><dd>${value}</dd></div>`).join('');
}

// A wall screen is read from across the room: the names of units, larger (the link keeps it: names=1.7).
const LABEL_SCALES = [1, 1.3, 1.7];

function pressScale(state) {
  for (const b of document.querySelectorAll('#label-scale button')) {
    b.setAttribute('aria-pressed', String(Number(b.dataset.scale) === state.labelScale));
  }
}

function listen(ctx) {
  const {state, map} = ctx;
  const on = (id, event, fn) => document.getElementById(id).addEventListener(event, fn);
  on('layer-list', 'change', (e) => {
    const name = e.target.dataset.layer;
    if (e.target.checked) state.layers.add(name); else state.layers.delete(name);
    if (name === 'stations') ctx.stations.update(); else ctx.lines.redraw();
    ctx.labels.update();
    writeHash(ctx);
  });
  on('kind-list', 'change', (e) => {
    const kind = e.target.dataset.kind;
    if (e.target.checked) state.kinds.add(kind); else state.kinds.delete(kind);
    ctx.stations.update();
    writeHash(ctx);
  });
  on('heat-toggle', 'change', (e) => { state.heat = e.target.checked; refresh(ctx, 'heat'); });
  on('choropleth-field', 'change', (e) => {
    state.field = e.target.value;
    if (state.field === 'band') document.getElementById('choropleth-level').value = state.flevel = ctx.config.main_level ?? 'grid2';
    refresh(ctx, 'fills');
    ctx.panel.render();
  });
  on('choropleth-level', 'change', (e) => { state.flevel = e.target.value; refresh(ctx, 'fills'); });
  on('choropleth-scheme', 'change', (e) => { state.scheme = e.target.value; refresh(ctx, 'fills'); });
  on('label-scale', 'click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    state.labelScale = Number(b.dataset.scale);
    pressScale(state);
    ctx.labels.update();
    writeHash(ctx);
  });
  on('coverage-choice', 'click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    state.coverage = Number(b.dataset.minutes);
    for (const other of document.querySelectorAll('#coverage-choice button')) {
      other.setAttribute('aria-pressed', String(other === b));
    }
    refresh(ctx, 'coverage');
  });
  on('event-category', 'change', (e) => { state.category = e.target.value; refresh(ctx, 'heat', 'events'); });
  on('event-from', 'change', (e) => { state.from = e.target.value; refresh(ctx, 'heat', 'events'); });
  on('event-to', 'change', (e) => { state.to = e.target.value; refresh(ctx, 'heat', 'events'); });
  on('language', 'click', () => {
    state.lang = language() === 'zh' ? 'en' : 'zh';
    relabel(ctx);
    refresh(ctx);
  });
  on('share', 'click', async () => {
    writeHash(ctx);
    try {
      await navigator.clipboard.writeText(location.href);
      toast(t('link_copied'));
    } catch {
      prompt(t('share_link'), location.href);
    }
  });
  map.on('moveend', () => { ctx.labels.update(); writeHash(ctx); });
  map.on('zoomend', () => { if (state.heat) refresh(ctx, 'heat'); });
}

// Redraw the named parts (default all) and the legend.
async function refresh(ctx, ...parts) {
  const all = parts.length === 0;
  ctx.map.closePopup();  // a station's popup belongs to the view it was opened in
  const jobs = [];
  // an event indicator's choropleth follows the events' filter (one request serves both: /events/map)
  if (!all && parts.includes('events') && !parts.includes('fills') && ctx.fills.followsEvents()) parts.push('fills');
  if (all || parts.includes('fills')) jobs.push(ctx.fills.update().then((html) => { ctx.legends.fills = html; }));
  if (all || parts.includes('fills') || parts.includes('coverage')) ctx.stations.ring();  // their ring follows the ground
  if (all || parts.includes('heat')) jobs.push(ctx.heat.update().then((html) => { ctx.legends.heat = html; }));
  if (all || parts.includes('coverage')) {
    jobs.push(ctx.coverage.update().then((html) => {
      ctx.legends.coverage = html;
      document.getElementById('coverage-summary').textContent = ctx.coverage.text();
    }));
  }
  if (all || parts.includes('events')) jobs.push(ctx.events.update().then((html) => { ctx.legends.hotspots = html; }));
  writeHash(ctx);
  await Promise.allSettled(jobs);
  const legend = document.getElementById('legend');
  const was = legend.getBoundingClientRect();
  legend.innerHTML = ['fills', 'coverage', 'heat', 'hotspots']
    .map((k) => (ctx.legends[k] ? `<div data-legend="${k}">${ctx.legends[k]}</div>` : '')).join('');
  // names keep clear of the legend: placed again when its box changed (a new category's classes
  // usually keep it), not at every filter change: placing them measures each name on the page
  const box = legend.getBoundingClientRect();
  if (all || ['left', 'top', 'right', 'bottom'].some((side) => box[side] !== was[side])) ctx.labels.update();
}

// --- selection ------------------------------------------------------------------

// What a click selects: inside a selected unit, the unit one level below it (drill
// down a level at a time: village, then its level-1 grid, then level 2); with the
// whole region or outside the selection, the level whose names the zoom shows (at
// least the top level); never finer than the unit clicked.
function drillTarget(ctx, code) {
  const widths = ctx.levels.map((lv) => lv.width);
  const natural = ctx.levels.find((lv) => lv.name === ctx.labels.levelForZoom(ctx.map.getZoom()))?.width ??
    (ctx.map.getZoom() < ctx.style.levels[ctx.levels[0].name].labels[1] ? widths[0] : widths[widths.length - 1]);
  const here = ctx.state.unit || ctx.config.root.code;
  const below = widths.find((w) => w > here.length) ?? here.length;
  let width = natural;
  if (code.startsWith(here)) width = ctx.state.unit ? below : Math.max(natural, below);  // the whole region: what the zoom names
  return code.slice(0, Math.min(width, code.length));
}

async function select(ctx, code, {fit = false} = {}) {
  const root = ctx.config.root.code;
  ctx.map.closePopup();
  ctx.state.unit = code && code !== root ? code : '';
  writeHash(ctx);
  let unit;
  try {
    unit = await ctx.panel.load(ctx.state.unit);
  } catch (error) {
    if (!(error instanceof Failed)) throw error;
    if (error.status === 404 && ctx.state.unit) return openNearest(ctx, ctx.state.unit, {fit});
    message(error.status ? t('load_failed', {what: what(error.path), detail: problemText(error.problem, error)})
      : t('service_unreachable', {what: what(error.path)}));
    return undefined;
  }
  if ((ctx.state.unit || '') !== (unit.code === root ? '' : unit.code)) return;  // another click came first
  ctx.panel.show(unit);
  if (document.body.dataset.ready === '1') refresh(ctx, 'events');  // the cards, trend and ranking follow the unit
  else ctx.events?.named();
  ctx.outline.clearLayers();
  if (unit.code !== root) {
    const feature = await api(`/collections/${unit.level}/items/${encodeURIComponent(unit.code)}`);
    if (ctx.state.unit === unit.code) L.geoJSON(feature, {pane: 'selection', interactive: false,
                                                          style: ctx.style.selected}).addTo(ctx.outline);
  }
  if (fit) ctx.fit(unit.bbox ?? ctx.config.bounds);
  document.body.dataset.unit = unit.code;
}

// A unit the service does not have (a stale or mistyped link): the nearest unit above it that it
// has (its code's prefixes at the scheme's widths), or the whole region, and a message saying so.
async function openNearest(ctx, code, {fit}) {
  const widths = ctx.levels.map((lv) => lv.width).filter((w) => w < code.length).reverse();
  for (const width of widths) {
    const above = code.slice(0, width);
    try {
      await ctx.panel.load(above);
    } catch (error) {
      if (error instanceof Failed && error.status === 404) continue;
      throw error;
    }
    await select(ctx, above, {fit: true});
    message(t('unit_missing', {code, name: ctx.panel.unit?.name ?? above}), 'warning');
    return;
  }
  await select(ctx, '', {fit: fit || true});
  message(t('unit_missing', {code, name: ctx.config.root.name}), 'warning');
}

function stationPopup(ctx, props, latlng) {
  const kind = label(ctx.vocabulary.station_kinds[props.kind]);
  const popup = L.popup({className: 'station-popup'}).setLatLng(latlng).setContent(
    `<h3>${esc(props.name)}</h3><div>${t('kind')}：${esc(kind)}</div>` +
    (props.grid_code ? `<div>${t('grid')}：<a data-code="${esc(props.grid_code)}">${esc(props.grid_code)}</a></div>` : ''),
  ).openOn(ctx.map);
  // the grid by its name, as a person reads it (the code stays in the link)
  if (props.grid_code) {
    api(`/stats/unit/${encodeURIComponent(props.grid_code)}`, {quiet: true}).then((unit) => {
      const link = popup.getElement()?.querySelector('[data-code]');
      if (link && unit.figures?.name) link.textContent = unit.figures.name;
    }).catch(() => {});
  }
}

const esc = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

// The box that follows the pointer over a unit: its name, its level, its households.
function hover(ctx, props, event) {
  const box = document.getElementById('hover');
  if (!props) {
    box.hidden = true;
    return;
  }
  const level = ctx.levels.find((lv) => lv.width === String(props.code ?? '').length);
  const households = props.households === undefined || props.households === null ? '—' : number(props.households);
  box.innerHTML = `<b>${esc(props.name ?? props.code)}</b> <span class="meta">${esc(level ? ctx.levelLabel(level.name) : '')}</span>` +
    `<div>${t('households')} ${households}</div>`;
  box.dataset.code = props.code ?? '';
  box.hidden = false;
  if (event) {
    box.style.left = `${event.clientX + 14}px`;
    box.style.top = `${event.clientY + 14}px`;
  }
}

function basemap(ctx) {
  const b = ctx.config.basemap;
  if (!b) return;
  if (b.kind === 'tianditu') {
    const wmts = (layer) => `http://t{s}.tianditu.gov.cn/${layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0` +
      `&LAYER=${layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=${b.key}`;
    for (const layer of ['vec', 'cva']) {
      L.tileLayer(wmts(layer), {subdomains: '01234567', maxZoom: 18, className: 'basemap-dark',
                                attribution: '天地图 © 国家地理信息公共服务平台'}).addTo(ctx.map);
    }
  } else {
    L.tileLayer(b.url, {maxZoom: 18, attribution: b.attribution || '', className: 'basemap-dark'}).addTo(ctx.map);
  }
}

// --- start ----------------------------------------------------------------------

async function start() {
  let page = null;  // the context once it is made: its tiles count as waits too
  watchProgress(() => pending > 0 || Boolean(page?.idle && !page.idle()));
  await ready();
  const [config, style, vocabulary, tiles] = await Promise.all([
    api('/map/config.json'), api('/static/app/style.json'), api('/vocabulary'), api('/tiles'),
  ]);
  const vocabLevels = Object.fromEntries(vocabulary.levels.map((lv) => [lv.name, lv]));
  for (const lv of config.levels) style.levels[lv.name] ??= style.levels[lv.style];  // a scheme's own levels
  const ctx = {
    api, config, style, vocabulary, message,
    levels: config.levels,
    minzoom: Object.fromEntries(tiles.layers.map((layer) => [layer.id, layer.minzoom])),
    levelLabel: (name) => label(vocabLevels[name] ?? {label: name}),
    legends: {},
  };
  ctx.state = defaultState(ctx);
  readHash(ctx.state, ctx);

  const map = L.map('map', {zoomSnap: 0.25, zoomDelta: 0.5, minZoom: 7, maxZoom: 18, preferCanvas: true});
  ctx.map = map;
  L.control.scale({imperial: false, position: 'bottomright'}).addTo(map);
  for (const [name, z] of [['coverage', 350], ['lines', 450], ['selection', 500], ['stations', 550]]) map.createPane(name).style.zIndex = z;
  map.getPane('selection').style.pointerEvents = 'none';
  const [w, s, e, n] = config.bounds;
  ctx.fit = (bbox) => map.fitBounds([[bbox[1], bbox[0]], [bbox[3], bbox[2]]], {padding: [24, 24], maxZoom: 17});
  if (ctx.state.view) map.setView([ctx.state.view.lat, ctx.state.view.lon], ctx.state.view.z);
  else map.fitBounds([[s, w], [n, e]], {padding: [12, 12]});
  basemap(ctx);

  ctx.select = (code, options) => select(ctx, code, options);
  ctx.hover = (props, event) => hover(ctx, props, event);
  map.on('mousemove', (e) => {
    const box = document.getElementById('hover');
    if (!box.hidden) {
      box.style.left = `${e.originalEvent.clientX + 14}px`;
      box.style.top = `${e.originalEvent.clientY + 14}px`;
    }
  });
  map.on('mouseout', () => hover(ctx, null));
  ctx.fills = new Fills(map, ctx);
  ctx.writeHash = () => writeHash(ctx);
  ctx.roads = mapRoads(map, ctx, ZOOM_OFFSET);  // the ground under the lines, with its toggle (roads.js)
  ctx.lines = new Lines(map, ctx, (props) => ctx.select(drillTarget(ctx, props.code), {fit: true}));
  ctx.stations = new Stations(map, ctx, (props, latlng) => stationPopup(ctx, props, latlng));
  ctx.labels = new Labels(map, ctx);
  ctx.heat = new Heat(map, ctx);
  ctx.coverage = new Coverage(map, ctx);
  ctx.outline = L.layerGroup().addTo(map);
  ctx.panel = new Panel(ctx);
  ctx.writeHash = () => writeHash(ctx);
  ctx.boundaries = new Boundaries(map, ctx);  // other offices' boundaries, and the grid's team
  ctx.hashExtras = [ctx.boundaries];
  ctx.panelExtras = [ctx.boundaries];
  ctx.search = new Search(ctx);
  ctx.exports = new ExportMenu(ctx);
  ctx.key = KEY;
  ctx.refresh = (...parts) => refresh(ctx, ...parts);
  ctx.events = new EventsPanel(ctx);
  await ctx.events.start();
  ctx.siting = new SitingPanel(ctx);  // 选址, for a planner's key (siting.js)
  await ctx.siting.start();
  map.getContainer().addEventListener('click', (e) => {
    const link = e.target.closest('.leaflet-popup-content [data-code]');
    if (link) ctx.select(link.dataset.code, {fit: true});
  });

  buildControls(ctx);
  pressScale(ctx.state);
  listen(ctx);
  relabel(ctx);
  await Promise.all([select(ctx, ctx.state.unit, {fit: Boolean(ctx.state.unit && !ctx.state.view)}), refresh(ctx),
                     ctx.labels.update()]);
  // Nothing on its way: no request of the page's own, no tile loading.
  ctx.idle = () => pending === 0 && !ctx.roads?.loading() &&
    ![ctx.fills.layer, ctx.lines.layer, ctx.stations.layer, ctx.events.hotspots.layer]
      .some((l) => map.hasLayer(l) && l.isLoading());
  for (const layer of [ctx.fills.layer, ctx.lines.layer, ctx.stations.layer]) {
    layer?.on?.('tileerror', () => message(t('load_failed', {what: t('what_tiles'), detail: t('tiles_failed')})));
  }
  document.getElementById('message-close').addEventListener('click', () => { document.getElementById('message').hidden = true; });
  if (ctx.state.ignored.length) {
    message(t('link_ignored', {what: ctx.state.ignored.join(language() === 'zh' ? '；' : '; ')}), 'warning', {append: true});
  }
  page = ctx;
  window.onemap = ctx;  // for the browser tests and the curious
  document.body.dataset.ready = '1';
}

start().catch((error) => {
  console.error(error);
  document.body.dataset.ready = 'failed';
});
