// The side panel: one unit's figures, its parent chain as breadcrumbs and its
// children; and the search box. Both call ctx.select(code) to move around.

import {label, number, t} from './i18n.js';

const FIGURES = [
  ['households', 'int'], ['population', 'int'], ['addresses', 'int'], ['units', 'int'],
  ['workers', 'int'], ['households_per_worker', '1'], ['events', 'int'], ['events_per_1000', '1'],
  ['stations', 'int'], ['share_5min', 'pct'], ['share_10min', 'pct'], ['share_15min', 'pct'],
];

export class Panel {
  constructor(ctx) {
    this.ctx = ctx;
    this.crumbs = document.getElementById('breadcrumbs');
    this.body = document.getElementById('unit');
    this.chart = null;
    this.unit = null;
    for (const el of [this.crumbs, this.body]) {
      el.addEventListener('click', (e) => {
        const target = e.target.closest('[data-code]');
        if (target) this.ctx.select(target.dataset.code, {fit: true});
      });
    }
  }

  // The unit's figures, chain and children: from /stats/unit/{code}, or for the
  // whole city from the configuration and the top level's figures.
  async load(code) {
    const {config, api} = this.ctx;
    const root = config.root;
    if (!code || code === root.code) {
      const top = config.levels[0].name;
      const children = (await api(`/stats/${top}`)).units;
      return {...root, name: root.name, figures: root.figures, chain: [], children, child_level: top, bbox: null};
    }
    const unit = await api(`/stats/unit/${encodeURIComponent(code)}`, {quiet: true});  // select() says what failed
    return {...unit, name: unit.figures.name};
  }

  show(unit) {
    this.unit = unit;
    this.render();
  }

  render() {
    const unit = this.unit;
    if (!unit) return;
    const {config, levelLabel} = this.ctx;
    const root = config.root;
    const chain = unit.code === root.code ? [] : [{code: root.code, name: root.name}, ...unit.chain];
    this.crumbs.innerHTML = chain.map((c) => `<a data-code="${c.code}">${c.name}</a><span class="sep">›</span>`).join('') +
      `<span class="here">${unit.name}</span>`;
    const levelText = unit.level === 'city' ? t('city') : levelLabel(unit.level);
    const parent = chain.length ? chain[chain.length - 1].code : null;
    this.body.innerHTML = `
      <div class="unit-head">
        <h2 id="unit-name">${unit.name}</h2>
        <div class="sub"><span class="level-tag">${levelText}</span><span>${t('code')} ${unit.code}</span>
          ${this.band(unit.figures.band)}</div>
      </div>
      <div class="unit-actions">
        ${parent ? `<button type="button" data-code="${parent}" id="unit-up">${t('up')}</button>` : ''}
        ${unit.bbox ? `<button type="button" id="unit-zoom">${t('zoom_to')}</button>` : ''}
      </div>
      <dl class="figures">${FIGURES.filter(([f]) => f in unit.figures).map(([f, fmt]) =>
        `<div data-figure="${f}"><dt>${t(f)}</dt><dd>${number(unit.figures[f], fmt)}</dd></div>`).join('')}</dl>
      ${this.withheld(unit)}
      ${this.children(unit)}`;
    this.body.querySelector('#unit-zoom')?.addEventListener('click', (e) => {
      e.stopPropagation();
      this.ctx.fit(unit.bbox);
    });
    for (const extra of this.ctx.panelExtras ?? []) extra.render(this.body, unit);  // boundaries.js
    this.drawChart(unit);
  }

  // A public figure under the minimum count is null (shown as '—'): say why, once.
  withheld(unit) {
    const k = unit.min_count ?? this.ctx.config.min_count;
    const any = unit.figures.suppressed || (unit.children ?? []).some((c) => c.suppressed);
    return any && k ? `<p class="withheld-note" data-min-count="${k}">${t('withheld_note', {k})}</p>` : '';
  }

  band(value) {
    const entry = value && this.ctx.style.band[value];
    return entry ? `<span class="badge" style="background:${entry.color}" data-band="${value}">${label(entry)}</span>` : '';
  }

  childField() {
    const field = this.ctx.state.field;
    // a figure the units carry (an event indicator of the choropleth is the events panel's)
    return field && field !== 'band' && field in this.ctx.style.fields ? field : 'households';
  }

  children(unit) {
    if (!unit.child_level || !unit.children.length) return '';
    const field = this.childField();
    const meta = this.ctx.style.fields[field];
    const banded = unit.children.some((c) => c.band);
    const last = banded || field !== 'share_15min';  // the 15-minute share once, not twice when it is the map's figure
    const rows = unit.children.map((c) => `
      <tr class="child" data-code="${c.code}"><td>${c.name}</td><td>${number(c.households)}</td>
        ${field !== 'households' ? `<td>${number(c[field], meta.format)}</td>` : ''}
        ${last ? `<td>${this.band(c.band) || number(c.share_15min, 'pct')}</td>` : ''}</tr>`).join('');
    return `<div class="children">
      <h3>${t('children', {level: this.ctx.levelLabel(unit.child_level), n: unit.children.length})}</h3>
      <div class="chart" id="children-chart"></div>
      <table><thead><tr><th></th><th>${t('households')}</th>
        ${field !== 'households' ? `<th>${label(meta)}</th>` : ''}
        ${last ? `<th>${banded ? t('band') : t('share_15min')}</th>` : ''}</tr></thead><tbody>${rows}</tbody></table></div>`;
  }

  // The children side by side: the figure the map shows (households by default),
  // coloured by band where the level has one.
  drawChart(unit) {
    this.chart?.dispose();
    this.chart = null;
    const el = document.getElementById('children-chart');
    if (!el || !window.echarts) return;
    const field = this.childField();
    const {style} = this.ctx;
    const items = [...unit.children].sort((a, b) => (b[field] ?? -1) - (a[field] ?? -1));
    const accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim();
    this.chart = echarts.init(el, null, {renderer: 'canvas'});
    // a few bars are named under the axis; many are named on hover, and the axis says their order
    const named = items.length <= CHART_NAMES;
    // under the axis a child is named without the name of the unit it lies in (塘内社区第6网格 → 第6网格)
    const around = [unit.figures?.name, ...(unit.chain ?? []).map((c) => c.name)].filter(Boolean)
      .sort((a, b) => b.length - a.length);
    const short = (name) => {
      const prefix = around.find((p) => name.startsWith(p) && name.length > p.length);
      return prefix ? name.slice(prefix.length) : name;
    };
    const muted = {color: '#8ba3c2', fontSize: 11};
    this.chart.setOption({
      animation: false,
      grid: {left: 4, right: 8, top: 30, bottom: named ? 4 : 22, containLabel: true},
      tooltip: {trigger: 'axis', axisPointer: {type: 'shadow'}, valueFormatter: (v) => number(v, style.fields[field].format)},
      xAxis: {type: 'category', data: items.map((c) => c.name), axisTick: {show: false},
              axisLabel: named ? {...muted, interval: 0, rotate: items.length > 5 ? 30 : 0, formatter: short} : {show: false},
              name: named ? '' : t('chart_order', {level: this.ctx.levelLabel(unit.child_level), n: number(items.length)}),
              nameLocation: 'middle', nameGap: 8, nameTextStyle: muted},
      yAxis: {type: 'value', name: label(style.fields[field]), nameTextStyle: {...muted, align: 'left'},
              axisLabel: {...muted, formatter: (v) => number(v)}, splitLine: {lineStyle: {color: '#1d3a5c'}}},
      series: [{
        type: 'bar', name: label(style.fields[field]),
        data: items.map((c) => ({value: c[field], code: c.code,
                                 itemStyle: {color: (c.band && style.band[c.band]?.color) || accent}})),
        markLine: field === 'households' && items.some((c) => c.band) ? {
          // the band's bounds written inside the plot, above their lines (at the end they were cut)
          silent: true, symbol: 'none', label: {color: '#ffd23f', position: 'insideEndTop', fontSize: 11},
          lineStyle: {color: '#ffd23f', type: 'dashed'},
          data: [{yAxis: 300}, {yAxis: 500}],
        } : undefined,
      }],
    });
    this.chart.on('click', (e) => this.ctx.select(e.data.code, {fit: true}));
  }
}

const CHART_NAMES = 12;  // at most this many bars are named under the chart

// Search by code prefix or name; Enter takes the first result.
export class Search {
  constructor(ctx) {
    this.ctx = ctx;
    this.input = document.getElementById('search');
    this.list = document.getElementById('search-results');
    this.timer = null;
    this.results = [];
    this.input.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.run(), 200);
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        clearTimeout(this.timer);
        this.run().then(() => this.results.length && this.pick(this.results[0].code));
      } else if (e.key === 'Escape') {
        this.close();
      }
    });
    this.list.addEventListener('click', (e) => {
      const item = e.target.closest('[data-code]');
      if (item) this.pick(item.dataset.code);
    });
  }

  async run() {
    const q = this.input.value.trim();
    if (!q) return this.close();
    const body = await this.ctx.api(`/search?q=${encodeURIComponent(q)}&limit=12`);
    if (q !== this.input.value.trim()) return;
    this.results = body.results;
    this.list.innerHTML = this.results.length
      ? this.results.map((r) => `<li data-code="${r.code}"><span>${r.name}</span>` +
                                `<span class="meta">${this.ctx.levelLabel(r.level)} · ${r.code}</span></li>`).join('')
      : `<li class="meta">${t('nothing_found')}</li>`;
    this.list.hidden = false;
  }

  pick(code) {
    this.close();
    this.ctx.select(code, {fit: true});
  }

  close() {
    this.list.hidden = true;
  }
}
