// Other offices' boundaries on the one map (警格, 学区 ...), and who answers for a grid.
//
// - an overlay per boundary set (the store's, from /map/config.json): outlines and names in a
//   colour of their own, drawn over the grids but never taking their clicks;
// - in the panel of the selected unit: the units of each shown set it falls in, with the share
//   of the unit in each and the households of the piece (/crosswalk), and the unit's team
//   (/grids/{code}/team: names and phones for viewers, the office's number for the public).
//
// The page reads the public answers without a key; with the key entered on the workbench in
// this browser session (sessionStorage 'gridgeo.key') the service answers as to a viewer.
// map.js and panel.js call it through three hooks: ctx.hashExtras, ctx.panelExtras and start().

import {language, number} from './i18n.js';

const KEY = 'gridgeo.key';
const COLOURS = ['#ff5fd2', '#ffd23f', '#7cf29a', '#ff8a4c'];

const WORDS = {
  zh: {
    boundaries: '其他部门边界', falls_in: '所在{set}', share_of_unit: '占本单元', households: '户数',
    share_of_other: '占{set}', team: '网格团队', no_team: '尚无人员名单', phone: '电话',
    office_only: '公开信息：仅显示网格办及服务电话', office: '网格办', service_phone: '服务电话',
    withheld: '—', loading: '加载中…', failed: '未能加载', main: '主要',
    load: '{grids} 个网格 · {households} 户 · 事件 {events} · 逾期 {overdue}',
  },
  en: {
    boundaries: "Other offices' boundaries", falls_in: 'In {set}', share_of_unit: 'of this unit', households: 'households',
    share_of_other: 'of the {set}', team: 'Grid team', no_team: 'No roster yet', phone: 'phone',
    office_only: 'Public view: the grid office and its service number only', office: 'Office',
    service_phone: 'Service number', withheld: '—', loading: 'loading…', failed: 'could not load', main: 'main',
    load: '{grids} grid(s) · {households} households · {events} events · {overdue} overdue',
  },
};

function w(key, values = {}) {
  const text = (WORDS[language()] ?? WORDS.zh)[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => values[k] ?? '');
}

const esc = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

async function get(path) {
  const headers = {Accept: 'application/json'};
  const key = sessionStorage.getItem(KEY);
  if (key) headers['X-API-Key'] = key;
  const response = await fetch(path, {headers});
  if (!response.ok) {
    const error = new Error(`${path}: ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

export class Boundaries {
  constructor(map, ctx) {
    this.map = map;
    this.ctx = ctx;
    this.sets = ctx.config.boundary_sets ?? [];
    this.colour = Object.fromEntries(this.sets.map((name, i) => [name, COLOURS[i % COLOURS.length]]));
    const wanted = new URLSearchParams(location.hash.slice(1)).get('bsets');
    this.shown = new Set((wanted ?? '').split(',').filter((name) => this.sets.includes(name)));
    this.layers = new Map();  // set -> L.LayerGroup of outlines and names
    this.answers = new Map();  // request path -> answer (or a promise of it)
    const css = document.createElement('style');
    css.textContent = `.boundary-label span{font-size:12px;font-weight:600;white-space:nowrap;text-shadow:0 0 3px #061426,0 0 3px #061426}
      .boundary-label{background:none;border:none}
      #unit-boundaries table{width:100%;border-collapse:collapse}#unit-boundaries td,#unit-boundaries th{padding:2px 6px;text-align:left}
      #unit-boundaries tr.sliver{opacity:.7}#unit-boundaries a{color:#7fd3ff;text-decoration:none}#unit-boundaries h3{margin:.8em 0 .3em}`;
    document.head.append(css);
    map.createPane('boundaries').style.zIndex = 460;
    map.getPane('boundaries').style.pointerEvents = 'none';  // the grids below keep their clicks
    this.controls();
    for (const name of this.shown) this.draw(name);
  }

  // --- the overlay -----------------------------------------------------------------

  controls() {
    if (!this.sets.length) return;
    const section = document.createElement('section');
    section.id = 'boundary-sets';
    section.innerHTML = `<h2 data-boundaries-title></h2><ul class="checks">${this.sets.map((name) => `
      <li><label><input type="checkbox" data-boundary-set="${esc(name)}" ${this.shown.has(name) ? 'checked' : ''}>
        <span class="swatch" style="border-color:${this.colour[name]};border-style:dashed"></span>
        <span>${esc(name)}</span></label></li>`).join('')}</ul>`;
    const first = document.querySelector('#controls section');
    first.after(section);
    section.addEventListener('change', (e) => {
      const name = e.target.dataset.boundarySet;
      if (!name) return;
      if (e.target.checked) {
        this.shown.add(name);
        this.draw(name);
      } else {
        this.shown.delete(name);
        this.layers.get(name)?.remove();
      }
      this.ctx.writeHash?.();
      this.ctx.panel.render();
    });
    this.relabel();
  }

  relabel() {
    const title = document.querySelector('[data-boundaries-title]');
    if (title) title.textContent = w('boundaries');
  }

  async draw(name) {
    let group = this.layers.get(name);
    if (!group) {
      group = L.layerGroup();
      this.layers.set(name, group);
      const items = await this.ctx.api(`/collections/${encodeURIComponent(name)}/items?limit=10000`);
      const colour = this.colour[name];
      L.geoJSON(items, {
        pane: 'boundaries', interactive: false,
        style: {color: colour, weight: 2.5, opacity: 0.95, dashArray: '7 5', fill: false},
        onEachFeature: (feature, layer) => {
          const centre = layer.getBounds().getCenter();
          L.marker(centre, {
            pane: 'boundaries', interactive: false, keyboard: false,
            icon: L.divIcon({className: 'boundary-label', html: `<span style="color:${colour}">${esc(feature.properties.name ?? feature.id)}</span>`,
                             iconSize: null}),
          }).addTo(group);
        },
      }).addTo(group);
      group.feature_count = items.features.length;
    }
    if (this.shown.has(name)) group.addTo(this.map);
    document.body.dataset.boundaries = [...this.shown].join(',');
  }

  hash(q) {
    if (this.shown.size) q.set('bsets', [...this.shown].join(','));
  }

  // --- the panel -----------------------------------------------------------------

  answer(path) {
    if (!this.answers.has(path)) {
      const promise = get(path).then((body) => {
        this.answers.set(path, body);
        return body;
      }, (error) => {
        this.answers.set(path, {failed: error.status ?? 0});
        return null;
      });
      this.answers.set(path, promise);
      promise.then(() => {
        if (this.ctx.panel.unit && path.includes(encodeURIComponent(this.ctx.panel.unit.code))) this.ctx.panel.render();
      });
    }
    const found = this.answers.get(path);
    return found instanceof Promise ? null : found;
  }

  render(body, unit) {
    this.relabel();
    if (!unit || unit.code === this.ctx.config.root.code) return;
    const parts = [...this.shown].map((name) => this.pieces(name, unit)).join('');
    const team = this.team(unit);
    if (!parts && !team) return;
    const box = document.createElement('div');
    box.id = 'unit-boundaries';
    box.innerHTML = parts + team;
    const children = body.querySelector('.children');  // after the unit's figures, before its children
    if (children) children.before(box); else body.append(box);
  }

  pieces(name, unit) {
    const path = `/crosswalk?boundaries=${encodeURIComponent(name)}&level=${encodeURIComponent(unit.level)}` +
      `&code=${encodeURIComponent(unit.code)}`;
    const body = this.answer(path);
    const head = `<h3 style="border-left:4px solid ${this.colour[name]};padding-left:6px">${esc(w('falls_in', {set: name}))}</h3>`;
    if (!body) return `<section class="boundary-pieces" data-set="${esc(name)}">${head}<p class="note">${w('loading')}</p></section>`;
    if (body.failed) return `<section class="boundary-pieces" data-set="${esc(name)}">${head}<p class="note">${w('failed')}</p></section>`;
    const rows = [...body.rows].sort((a, b) => b.share_of_grid - a.share_of_grid).map((r) => `
      <tr data-other="${esc(r.other)}" class="${r.sliver ? 'sliver' : ''}">
        <td>${esc(r.other_name || r.other)}${r.main_of_grid ? ` <small>(${w('main')})</small>` : ''}</td>
        <td data-share="${r.share_of_grid}">${number(r.share_of_grid, 'pct')}</td>
        <td>${r.households === null || r.households === undefined ? w('withheld') : number(r.households)}</td></tr>`).join('');
    return `<section class="boundary-pieces" data-set="${esc(name)}">${head}
      <table><thead><tr><th></th><th>${w('share_of_unit')}</th><th>${w('households')}</th></tr></thead>
      <tbody>${rows}</tbody></table></section>`;
  }

  team(unit) {
    const body = this.answer(`/grids/${encodeURIComponent(unit.code)}/team`);
    if (!body || body.failed) return '';
    const head = `<h3>${w('team')}</h3>`;
    if (!body.members) {
      const office = body.office ?? {};
      const lines = [office.name ? `<div>${w('office')}：${esc(office.name)}</div>` : '',
        office.phone ? `<div>${w('service_phone')}：<span data-phone>${esc(office.phone)}</span></div>` : ''].join('');
      return `<section class="unit-team" data-public="1">${head}${lines}<p class="note">${w('office_only')}</p></section>`;
    }
    if (!body.members.length) return `<section class="unit-team">${head}<p class="note">${w('no_team')}</p></section>`;
    const rows = body.members.map((m) => `
      <tr data-role="${esc(m.role)}"><td>${esc(language() === 'en' ? m.role_en || m.role : m.role)}</td>
        <td>${esc(m.name)}${m.grids === undefined ? '' : `<div class="person-load" data-overdue="${m.overdue ?? ''}">${
          esc(w('load', {grids: number(m.grids), households: number(m.households ?? 0), events: number(m.events ?? 0),
            overdue: number(m.overdue ?? 0)}))}</div>`}</td>
        <td><a href="tel:${esc(m.phone)}" data-phone>${esc(m.phone)}</a></td></tr>`).join('');
    return `<section class="unit-team">${head}<table><tbody>${rows}</tbody></table></section>`;
  }
}
