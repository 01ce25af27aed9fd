// Uploading an office's file on the workbench: the service checks it with gridgeo.intake
// (POST /imports) and answers what it found; the page shows the mapping (editable), the
// counts per level, what would change and every problem (on the map too), checks again
// with an edited mapping, and opens the file's grids as draft plans. An upload never
// publishes: the drafts are fixed and published with the workbench's own tools.

import {language, number, t} from './i18n.js';
import {esc} from './plan-layers.js';

const SYSTEMS = ['', 'wgs84', 'cgcs2000', 'gcj02', 'bd09'];

export class Importer {
  constructor(map, ctx, {key, onOpen, onError}) {
    this.map = map;
    this.ctx = ctx;
    this.key = key;
    this.onOpen = onOpen;
    this.onError = onError;
    this.report = null;
    this.units = L.geoJSON(null, {pane: 'outlines', interactive: false,
      style: () => ({color: '#ffb454', weight: 1.6, opacity: 0.95, dashArray: '5 3', fill: false})});
    this.problems = L.geoJSON(null, {pane: 'outlines', interactive: false,
      style: (f) => ({color: f.properties.severity === 'error' ? '#ff4d6d' : '#ffd166', weight: 2.5,
                      fillColor: f.properties.severity === 'error' ? '#ff4d6d' : '#ffd166', fillOpacity: 0.45}),
      pointToLayer: (f, latlng) => L.circleMarker(latlng, {pane: 'outlines', radius: 7})});
    document.getElementById('import-crs').innerHTML = SYSTEMS.map((s) =>
      `<option value="${s}">${esc(s ? t(`crs_${s}`) : t('crs_file'))}</option>`).join('');
    const on = (id, event, fn) => document.getElementById(id).addEventListener(event, fn);
    on('import-file', 'change', (e) => { document.getElementById('import-upload').disabled = !e.target.files.length; });
    on('import-upload', 'click', () => this.upload());
    on('import-check', 'click', () => this.check());
    on('import-open', 'click', () => this.open());
    on('import-close', 'click', () => this.close());
    on('import-problems', 'click', (e) => {
      const item = e.target.closest('li[data-problem]');
      if (item) this.zoomTo(Number(item.dataset.problem));
    });
  }

  async request(path, {method = 'GET', body, form} = {}) {
    this.ctx.pending += 1;
    document.body.classList.add('busy');
    try {
      const headers = {Accept: 'application/json'};
      const key = this.key();
      if (key) headers['X-API-Key'] = key;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const response = await fetch(path, {method, headers, body: form ?? (body === undefined ? undefined : JSON.stringify(body))});
      const answer = await response.json().catch(() => ({title: response.statusText}));
      if (!response.ok) throw Object.assign(new Error(answer.detail || answer.title), {problem: answer, status: response.status});
      return answer;
    } finally {
      this.ctx.pending -= 1;
      document.body.classList.toggle('busy', this.ctx.pending > 0);
    }
  }

  async upload() {
    const files = document.getElementById('import-file').files;
    if (!files.length) return;
    const form = new FormData();
    for (const f of files) form.append('file', f, f.name);
    const crs = document.getElementById('import-crs').value;
    if (crs) form.append('crs', crs);
    try {
      this.show(await this.request('/imports', {method: 'POST', form}));
    } catch (error) {
      this.onError(t('import_failed', {detail: error.message}));
    }
  }

  async check() {
    if (!this.report) return;
    const columns = {};
    for (const select of document.querySelectorAll('#import-mapping select[data-target]')) {
      if (select.value) columns[select.dataset.target] = select.value;
    }
    const crs = document.getElementById('import-report-crs').value || null;
    try {
      this.show(await this.request(`/imports/${this.report.id}/check`, {method: 'POST',
        body: {kind: this.report.kind, crs, columns, values: this.report.mapping.values ?? {},
               lon: this.report.mapping.lon ?? null, lat: this.report.mapping.lat ?? null,
               location: this.report.mapping.location ?? null}}));
    } catch (error) {
      this.onError(t('import_failed', {detail: error.message}));
    }
  }

  async open() {
    if (!this.report?.can_open) return;
    const name = t('import_plan_name', {source: this.report.source.replace(/\.[^.]+$/, '')});
    try {
      const {plans} = await this.request(`/imports/${this.report.id}/plans`, {method: 'POST', body: {name}});
      this.close();
      await this.onOpen(plans);
    } catch (error) {
      this.onError(t('import_failed', {detail: error.message}));
    }
  }

  close() {
    this.report = null;
    this.units.remove();
    this.problems.remove();
    document.getElementById('import-panel').hidden = true;
    document.getElementById(this.ctx.state ? 'plan-panel' : 'welcome').hidden = false;
  }

  show(report) {
    this.report = report;
    document.getElementById('welcome').hidden = true;
    document.getElementById('plan-panel').hidden = true;
    const panel = document.getElementById('import-panel');
    panel.hidden = false;
    panel.dataset.ok = String(report.ok);
    panel.dataset.kind = report.kind ?? '';
    document.getElementById('import-source').textContent = `${report.source} → ${this.kindLabel(report.kind)}`;
    const verdict = document.getElementById('import-verdict');
    verdict.className = `verdict ${report.ok ? 'good' : 'bad'}`;
    verdict.textContent = report.ok ? t('import_ok') : t('import_refused', {errors: report.errors, warnings: report.warnings});
    document.getElementById('import-counts').innerHTML = Object.entries(report.counts ?? {}).map(([level, n]) =>
      `<div data-count="${esc(level)}"><dt>${esc(this.ctx.levelLabel(level))}</dt><dd>${number(n)}</dd></div>`).join('');
    this.mapping(report);
    document.getElementById('import-changes').innerHTML = (report.changes ?? []).map((c) => `<p class="note" data-change="${esc(c.collection)}">${
      esc(c.kept === undefined ? t('import_change_layer', {layer: c.collection, published: number(c.published), rows: number(c.in_file)})
        : t('import_change_level', {level: this.ctx.levelLabel(c.collection), replaced: number(c.replaced), parents: number(c.parents),
                                     kept: number(c.kept), added: number(c.added), removed: number(c.removed)}))}</p>`).join('');
    const zh = language() === 'zh';
    document.getElementById('import-problems').innerHTML = report.problems.length ? report.problems.map((p, i) => `
      <li class="${p.severity}" data-problem="${i}" data-kind="${esc(p.kind)}">
        <b>${esc(t(`severity_${p.severity}`))}</b> ${esc(zh ? p.message_zh : p.message_en)}</li>`).join('')
      : `<li class="empty">${esc(t('import_no_problems'))}</li>`;
    const open = document.getElementById('import-open');
    open.disabled = !report.can_open;
    open.title = report.can_open ? '' : t('import_cannot_open');
    this.units.clearLayers();
    this.problems.clearLayers();
    if (report.units) this.units.addData(report.units).addTo(this.map);
    if (report.located?.features.length) this.problems.addData(report.located).addTo(this.map);
    const bounds = this.units.getLayers().length ? this.units.getBounds() : null;
    if (bounds?.isValid()) this.map.fitBounds(bounds, {padding: [30, 30]});
  }

  mapping(report) {
    const chosen = report.mapping.columns ?? {};
    const options = (target) => ['', ...report.columns].map((c) =>
      `<option value="${esc(c)}" ${chosen[target] === c ? 'selected' : ''}>${esc(c || '—')}</option>`).join('');
    const targets = report.targets ?? Object.keys(chosen);
    document.getElementById('import-mapping').innerHTML = targets.map((target) => `
      <tr data-target-row="${esc(target)}"><th>${esc(target)}</th><td>←</td>
        <td><select data-target="${esc(target)}">${options(target)}</select></td></tr>`).join('')
      + `<tr><th>${esc(t('import_crs'))}</th><td></td><td><select id="import-report-crs">${SYSTEMS.map((s) =>
        `<option value="${s}" ${(report.mapping.crs ?? '') === s ? 'selected' : ''}>${esc(s ? t(`crs_${s}`) : (report.mapping.crs || t('crs_file')))}</option>`).join('')}</select></td></tr>`;
  }

  zoomTo(index) {
    const problem = this.report?.problems[index];
    if (!problem) return;
    const bare = (codes) => String(codes ?? '').replace(/\s/g, '');
    const found = this.problems.getLayers().find((layer) => layer.feature.properties.kind === problem.kind
      && bare(layer.feature.properties.codes) === bare(problem.codes));
    if (found) {
      const b = found.getBounds ? found.getBounds() : L.latLngBounds([found.getLatLng()]);
      this.map.fitBounds(b, {padding: [60, 60], maxZoom: 17});
    }
  }

  kindLabel(kind) {
    return kind ? t(`kind_${kind}`) : '?';
  }
}
