// Where the next stations go (选址), for a planner's key: k new sites by walking
// distance in the unit selected (or the view, when the whole city is selected), as
// draggable markers; the households gained per grid and the totals before and after.
// Dragging a marker asks the service to judge the sites again (/siting/evaluate:
// gridgeo.siting.evaluate, no solving) and the figures follow. Every figure is the
// service's; the page only shows them and writes them to a file on 导出.

import './siting-words.js';
import {number, t} from './i18n.js';

const ROLES = ['planner', 'reviewer', 'admin'];
const MAX_BOX = 0.25;  // degrees a side, as the service takes (api/routes/siting.py)
const esc = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

export class SitingPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.answer = null;   // the last answer of the service (propose or evaluate)
    this.ground = null;   // the scope, radius and level it was computed for
    this.seq = 0;         // answers to older requests are dropped
    this.markers = L.layerGroup();
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = '/static/app/siting.css';
    document.head.append(link);
    this.el = document.createElement('section');
    this.el.id = 'siting-panel';
    this.el.hidden = true;
    document.getElementById('controls').append(this.el);
  }

  // Only for a key of planner or above (the service says who it is at /me).
  async start() {
    if (!this.ctx.key) return;
    const me = await this.ctx.api('/me', {quiet: true}).catch(() => null);
    if (!me || !ROLES.includes(me.role)) return;
    this.el.innerHTML = `
      <h2 data-i18n="siting">选址</h2>
      <p class="note" id="siting-scope"></p>
      <div class="siting-form">
        <label class="field"><span data-i18n="siting_method">方法</span><select id="siting-method">
          <option value="maximal" data-i18n="siting_maximal">最大覆盖</option>
          <option value="cover" data-i18n="siting_cover">全覆盖</option></select></label>
        <label class="field"><span data-i18n="siting_k">新站点数</span>
          <input id="siting-k" type="number" min="1" max="20" step="1" value="3"></label>
        <label class="field"><span data-i18n="siting_minutes">步行分钟</span>
          <input id="siting-minutes" type="number" min="1" max="60" step="0.5" value="15"></label>
      </div>
      <div class="siting-actions">
        <button id="siting-run" type="button" data-i18n="siting_run">计算</button>
        <button id="siting-geojson" type="button" data-i18n="siting_export" disabled>导出</button>
        <button id="siting-csv" type="button" data-i18n="siting_export_csv" disabled>导出表格</button>
        <button id="siting-clear" type="button" data-i18n="siting_clear" disabled>清除</button>
      </div>
      <p id="siting-status" class="note" role="status" aria-live="polite"></p>
      <div id="siting-result"></div>`;
    this.el.hidden = false;
    this.markers.addTo(this.ctx.map);
    const k = this.el.querySelector('#siting-k');
    this.el.querySelector('#siting-method').addEventListener('change', (e) => { k.disabled = e.target.value === 'cover'; });
    this.el.querySelector('#siting-run').addEventListener('click', () => this.propose());
    this.el.querySelector('#siting-geojson').addEventListener('click', () => this.download('geojson'));
    this.el.querySelector('#siting-csv').addEventListener('click', () => this.download('csv'));
    this.el.querySelector('#siting-clear').addEventListener('click', () => this.clear());
    // the scope follows the unit selected (the breadcrumbs change with it) and the view
    new MutationObserver(() => this.scopeNote()).observe(document.getElementById('breadcrumbs'), {childList: true, subtree: true});
    this.ctx.map.on('moveend', () => this.scopeNote());
    this.relabel();
  }

  relabel() {
    if (this.el.hidden) return;
    for (const el of this.el.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    this.scopeNote();
    if (this.answer) this.show();
  }

  // The scope: the unit selected, or the view when the whole city is selected.
  scope() {
    const unit = this.ctx.panel?.unit;
    if (unit && unit.code && unit.code !== this.ctx.config.root.code) return {unit: unit.code, name: unit.name};
    const b = this.ctx.map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => Number(v.toFixed(6)));
    return {bbox, name: t('siting_view')};
  }

  scopeNote() {
    const note = this.el.querySelector('#siting-scope');
    if (note) note.textContent = t('siting_scope', {name: this.ground?.name ?? this.scope().name});
  }

  status(text, busy = false) {
    const el = this.el.querySelector('#siting-status');
    el.textContent = text;
    el.classList.toggle('busy', busy);
    this.el.dataset.busy = busy ? '1' : '';
  }

  async post(path, body) {
    let response;
    try {
      response = await fetch(path, {method: 'POST', body: JSON.stringify(body),
                                    headers: {'Content-Type': 'application/json', Accept: 'application/json',
                                              'X-API-Key': this.ctx.key}});
    } catch {
      throw new Error(t('siting_unreachable'));
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) throw new Error(answer?.detail || answer?.title || `${response.status}`);
    return answer;
  }

  async propose() {
    const where = this.scope();
    if (where.bbox && (where.bbox[2] - where.bbox[0] > MAX_BOX || where.bbox[3] - where.bbox[1] > MAX_BOX)) {
      this.ctx.message(t('siting_too_wide'), 'warning');
      return;
    }
    const minutes = Number(this.el.querySelector('#siting-minutes').value);
    const method = this.el.querySelector('#siting-method').value;
    const ground = {...(where.unit ? {unit: where.unit} : {bbox: where.bbox}), minutes, level: this.level()};
    const body = {...ground, method, ...(method === 'maximal' ? {k: Number(this.el.querySelector('#siting-k').value)} : {})};
    await this.ask('/siting/propose', body, {...ground, name: where.name}, t('siting_computing'));
  }

  // Judge the markers where they stand now (after a drag).
  async evaluate() {
    if (!this.ground) return;
    const sites = this.markerList().map((m) => { const p = m.getLatLng(); return [Number(p.lng.toFixed(7)), Number(p.lat.toFixed(7))]; });
    const ids = this.markerList().map((m) => m.options.siteId);
    const {name, ...ground} = this.ground;
    await this.ask('/siting/evaluate', {...ground, sites, ids}, this.ground, t('siting_evaluating'));
  }

  async ask(path, body, ground, waiting) {
    const seq = ++this.seq;
    const run = this.el.querySelector('#siting-run');
    run.disabled = true;
    this.status(waiting, true);
    try {
      const answer = await this.post(path, body);
      if (seq !== this.seq) return;
      this.answer = answer;
      this.ground = ground;
      this.show();
      this.status(answer.message && !answer.feasible ? answer.message : '');
      this.el.dataset.answered = String(seq);
    } catch (error) {
      if (seq !== this.seq) return;
      this.status('');
      this.ctx.message(t('siting_failed', {detail: error.message}));  // stays until closed
    } finally {
      if (seq === this.seq) run.disabled = false;
    }
  }

  level() {
    return this.ctx.config.main_level ?? 'grid2';
  }

  markerList() {
    return this.markers.getLayers();
  }

  show() {
    const a = this.answer;
    this.scopeNote();
    // the markers: made anew after a proposal, moved ones kept after an evaluation
    const features = a.sites.features;
    const ids = this.markerList().map((m) => m.options.siteId);
    if (a.method !== 'evaluate' || ids.join() !== features.map((f) => f.properties.site_id).join()) {
      this.markers.clearLayers();
      features.forEach((f, i) => {
        const [lon, lat] = f.geometry.coordinates;
        const marker = L.marker([lat, lon], {draggable: true, siteId: f.properties.site_id, pane: 'markerPane',
          icon: L.divIcon({className: 'siting-site', html: `<span>${i + 1}</span>`, iconSize: [26, 26], iconAnchor: [13, 13]})});
        marker.on('dragend', () => this.evaluate());
        this.markers.addLayer(marker);
      });
    }
    features.forEach((f, i) => {
      const marker = this.markerList()[i];
      marker.bindTooltip(t('siting_site_tip', {n: i + 1, hh: number(f.properties.households_new)}), {direction: 'top'});
    });
    const tot = a.totals;
    const rows = a.units.filter((u) => u.households > 0 || u.households_gained)
      .sort((x, y) => (y.households_gained - x.households_gained) || (x.share_after ?? 1) - (y.share_after ?? 1));
    const gainedRows = rows.filter((u) => u.households_gained !== 0);
    const row = (u) => `<tr data-code="${esc(u.code)}" title="${esc(t('siting_row_tip', {name: u.name, hh: number(u.households),
        before: number(u.share_before, 'pct'), after: number(u.share_after, 'pct')}))}"><td class="name">${esc(u.name)}</td>
      <td>${number(u.households_before)}</td><td>${number(u.households_after)}</td>
      <td class="gain">${u.households_gained > 0 ? '+' : ''}${number(u.households_gained)}</td></tr>`;
    this.el.querySelector('#siting-result').innerHTML = `
      <dl class="siting-totals">
        <div><dt>${t('siting_before')}</dt><dd id="siting-before">${number(tot.households_before)}</dd><dd class="pct">${number(tot.share_before, 'pct')}</dd></div>
        <div><dt>${t('siting_after')}</dt><dd id="siting-after">${number(tot.households_after)}</dd><dd class="pct">${number(tot.share_after, 'pct')}</dd></div>
        <div><dt>${t('siting_gained')}</dt><dd id="siting-gained">+${number(tot.households_gained)}</dd><dd class="pct">${t('siting_of', {n: number(tot.households)})}</dd></div>
      </dl>
      <p class="note">${t('siting_radius', {m: number(a.radius_m), sites: features.length})}${a.optimal === false ? ` · ${t('siting_not_optimal')}` : ''}</p>
      <table class="siting-units">
        <thead><tr><th>${t('siting_grid')}</th><th>${t('siting_before')}</th><th>${t('siting_after')}</th><th>${t('siting_gained')}</th></tr></thead>
        <tbody>${gainedRows.map(row).join('') || `<tr><td colspan="4" class="none">${t('siting_none_gained')}</td></tr>`}</tbody>
      </table>
      <p class="note">${t('siting_rows', {n: gainedRows.length, all: rows.length})}</p>`;
    this.el.querySelector('.siting-units tbody').addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-code]');
      if (tr) this.ctx.select(tr.dataset.code, {fit: true});
    });
    for (const id of ['#siting-geojson', '#siting-csv', '#siting-clear']) this.el.querySelector(id).disabled = false;
  }

  clear() {
    this.seq += 1;
    this.answer = null;
    this.ground = null;
    this.markers.clearLayers();
    this.el.querySelector('#siting-result').innerHTML = '';
    this.status('');
    for (const id of ['#siting-geojson', '#siting-csv', '#siting-clear']) this.el.querySelector(id).disabled = true;
    this.scopeNote();
  }

  // The proposal as a file: the sites with the figures (GeoJSON, the per-grid table and the
  // totals as members of the collection), or the per-grid table with the sites listed (CSV).
  download(format) {
    const a = this.answer;
    if (!a) return;
    const {name, ...ground} = this.ground;
    const stamp = new Date().toISOString().slice(0, 10);
    let text;
    let type;
    if (format === 'geojson') {
      text = JSON.stringify({...a.sites, scope: {...ground, name}, radius_m: a.radius_m, level: a.level,
                             totals: a.totals, units: a.units}, null, 1);
      type = 'application/geo+json';
    } else {
      const columns = ['code', 'name', 'addresses', 'households', 'households_before', 'households_after',
                       'households_gained', 'share_before', 'share_after'];
      const cell = (v) => (v === null || v === undefined ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
      const lines = [columns.join(','), ...a.units.map((u) => columns.map((c) => cell(u[c])).join(','))];
      lines.push('', 'site_id,lon,lat,households_new');
      for (const f of a.sites.features) lines.push([f.properties.site_id, ...f.geometry.coordinates, f.properties.households_new].map(cell).join(','));
      text = `\ufeff${lines.join('\r\n')}\r\n`;  // a BOM, so that Excel reads the names as UTF-8
      type = 'text/csv';
    }
    const url = URL.createObjectURL(new Blob([text], {type}));
    const link = Object.assign(document.createElement('a'), {href: url, download: `siting-${ground.unit ?? 'view'}-${stamp}.${format}`});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
}
