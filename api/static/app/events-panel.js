// Events over time on the one map: the figure cards of the selected unit (the
// whole region when none) for the month the slider shows, with their change
// since the month before; the unit's monthly trend; the ranking of the units
// inside it; the hot-spot layer; the slider and its play button.
//
// Every figure is the service's (/events/indicators, /events/ranking,
// /events/hotspots, computed by gridgeo.events): the page asks for the unit's
// months once per filter (one request), and per month shown for the ranking (and
// the hot spots when they are on). The whole region is the sum of its top-level
// units: counts add up on a full level, and its rates are taken again from the
// sums (closed / (closed + backlog), on time / closed), never averaged.

import './events-words.js';
import {label, number, t} from './i18n.js';
import {TrendChart} from './events-chart.js';
import {HotSpots} from './events-layer.js';

const CARDS = [
  // [indicator, format, which way is good (+1 up, -1 down, 0 neither)]
  ['received', 'int', 0], ['closure_rate', 'pct', 1], ['on_time_rate', 'pct', 1], ['overdue', 'int', -1],
];
const RANKED = ['closure_rate', 'on_time_rate', 'overdue', 'backlog', 'received', 'median_hours'];
const FORMAT = {received: 'int', closed: 'int', backlog: 'int', overdue: 'int', on_time: 'int',
                closure_rate: 'pct', on_time_rate: 'pct', median_hours: '1', p90_hours: '1'};
const COUNTS = ['received', 'closed', 'backlog', 'overdue', 'on_time'];
const SHOWN = 5;  // best and worst rows of a long ranking

const esc = (text) => String(text ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

// '2025-01' ... '2025-12'
export function monthsBetween(first, last) {
  const out = [];
  let [y, m] = first.slice(0, 7).split('-').map(Number);
  const [ly, lm] = last.slice(0, 7).split('-').map(Number);
  while (y < ly || (y === ly && m <= lm)) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    m += 1;
    if (m > 12) { m = 1; y += 1; }
  }
  return out;
}

function shift(month, by) {
  const [y, m] = month.split('-').map(Number);
  const k = y * 12 + (m - 1) + by;
  return `${Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, '0')}`;
}

// The whole region's figures of one month from its top-level units' rows.
function summed(rows) {
  if (rows.length === 1) return rows[0];
  const out = {period: rows[0].period, suppressed: rows.some((r) => r.suppressed)};
  const onTime = (r) => r.on_time ?? (r.on_time_rate == null || r.closed == null ? null : Math.round(r.on_time_rate * r.closed));
  for (const key of COUNTS) {
    const values = rows.map((r) => (key === 'on_time' ? onTime(r) : r[key]));
    out[key] = values.some((v) => v === null || v === undefined) ? null : values.reduce((a, b) => a + b, 0);
  }
  const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);
  out.closure_rate = ratio(out.closed, out.closed === null || out.backlog === null ? null : out.closed + out.backlog);
  out.on_time_rate = ratio(out.on_time, out.closed);
  return out;
}

export class EventsPanel {
  constructor(ctx) {
    this.ctx = ctx;
    const {config} = ctx;
    this.all = config.events ? monthsBetween(config.events.first, config.events.last) : [];
    this.el = document.getElementById('events-panel');
    this.authorised = false;
    this.indicator = 'closure_rate';
    this.series = {key: null, rows: {}};
    this.ranking = null;
    this.seq = 0;
    this.playing = null;
    this.el.hidden = !this.all.length;  // a store without events: nothing to show
    this.hotspots = new HotSpots(ctx.map, ctx, config.main_level ?? ctx.levels[ctx.levels.length - 1].name);
    this.el.innerHTML = `
      <h2 data-i18n="events_over_time"></h2>
      <div class="events-when"><span id="events-unit"></span> · <span id="events-period"></span></div>
      <div class="month-slider"><input type="range" id="event-month" min="0" max="0" step="1" value="0"
        aria-label="month"><output id="event-month-label"></output>
        <button type="button" id="event-play"></button></div>
      <dl id="event-cards" class="event-cards"></dl>
      <p id="events-note" class="withheld-note" hidden></p>
      <h3 class="events-sub" data-i18n="trend"></h3>
      <div id="events-chart" class="events-chart"></div>
      <div class="ranking-head"><h3 class="events-sub" id="ranking-title"></h3>
        <select id="ranking-indicator" aria-label="ranking indicator"></select></div>
      <table id="ranking" class="ranking"><tbody></tbody></table>`;
    this.slider = document.getElementById('event-month');
    document.getElementById('event-play').textContent = t('play');
    this.chart = window.echarts ? new TrendChart(document.getElementById('events-chart')) : null;
    document.getElementById('ranking-indicator').addEventListener('change', (e) => {
      this.indicator = e.target.value;
      ctx.refresh('events');
    });
    document.getElementById('ranking').addEventListener('click', (e) => {
      const row = e.target.closest('tr[data-code]');
      if (row) ctx.select(row.dataset.code, {fit: true});
    });
    this.slider.addEventListener('input', () => {
      this.ctx.state.at = this.range()[Number(this.slider.value)];
      this.stop();
      ctx.refresh('events');
    });
    document.getElementById('event-play').addEventListener('click', () => (this.playing ? this.stop() : this.play()));
    document.getElementById('hotspot-toggle').checked = ctx.state.hot;
    document.getElementById('hotspot-toggle').addEventListener('change', (e) => {
      ctx.state.hot = e.target.checked;
      ctx.refresh('events');
    });
  }

  // Who is looking: a key of viewer or above sees categories (the service says so at /me).
  async start() {
    if (!this.ctx.key) return;
    const me = await this.ctx.api('/me', {quiet: true}).catch(() => null);
    this.authorised = Boolean(me && me.role !== 'anonymous');
  }

  // The months the slider steps through: the filter's from/to within the data.
  range() {
    const {from, to} = this.ctx.state;
    const months = this.all.filter((m) => (!from || m >= from) && (!to || m <= to));
    return months.length ? months : this.all;
  }

  at() {
    const months = this.range();
    return months.includes(this.ctx.state.at) ? this.ctx.state.at : months[months.length - 1];
  }

  unitLevel(code) {
    return this.ctx.levels.find((lv) => lv.width === code.length)?.name;
  }

  // The level ranked inside the unit: the next one down (for the whole region, the
  // top level, or the one below it when the top level is one unit).
  childLevel() {
    const {levels, state} = this.ctx;
    if (!state.unit) return levels[0].count > 1 || levels.length < 2 ? levels[0].name : levels[1].name;
    const i = levels.findIndex((lv) => lv.width === state.unit.length);
    return i >= 0 && i + 1 < levels.length ? levels[i + 1].name : null;
  }

  common(q) {
    const {state} = this.ctx;
    if (state.category && this.authorised) q.append('category', state.category);
    return q;
  }

  seriesQuery() {
    const {state, levels} = this.ctx;
    const months = this.range();
    const q = new URLSearchParams({level: state.unit ? this.unitLevel(state.unit) : levels[0].name, period: 'month',
                                   from: `${shift(months[0], -1)}-01`, to: `${shift(months[months.length - 1], 1)}-01`});
    if (state.unit) q.set('unit', state.unit);
    return `/events/indicators?${this.common(q)}`;
  }

  rankingQuery(at) {
    const level = this.childLevel();
    if (!level) return null;
    const {state} = this.ctx;
    const months = this.range();
    const q = new URLSearchParams({level, period: 'month', indicator: this.indicator, at,
                                   from: `${shift(months[0], -1)}-01`, to: `${shift(months[months.length - 1], 1)}-01`});
    if (state.unit) q.set('unit', state.unit);
    return `/events/ranking?${this.common(q)}`;
  }

  // The ranking asked for, or the one shown when the question is the same (a public page's
  // category change asks nothing new: the public figures are for every category).
  rankingFor(query) {
    if (!query) return Promise.resolve(null);
    if (query === this.rankingKept?.query) return Promise.resolve(this.rankingKept.body);
    return this.ctx.api(query).then((body) => {
      this.rankingKept = {query, body};
      return body;
    });
  }

  hotspotQuery(at) {
    if (!this.ctx.state.hot) return null;
    const q = new URLSearchParams({level: this.hotspots.level, from: `${at}-01`, to: `${shift(at, 1)}-01`});
    return `/events/hotspots?${this.common(q)}`;
  }

  // Redraw for the state: returns the hot spots' legend (the page's legend shows it).
  async update() {
    if (!this.all.length) return '';
    const seq = ++this.seq;
    const at = this.at();
    const months = this.range();
    this.slider.max = String(months.length - 1);
    this.slider.value = String(months.indexOf(at));
    document.getElementById('event-month-label').textContent = at;
    const seriesKey = this.seriesQuery();
    const jobs = [
      seriesKey === this.series.key ? Promise.resolve(this.series) : this.ctx.api(seriesKey).then((body) => {
        const byMonth = {};
        for (const row of body.rows) (byMonth[row.period] ??= []).push(row);
        return {key: seriesKey, rows: Object.fromEntries(Object.entries(byMonth).map(([m, rows]) => [m, summed(rows)])),
                k: body.min_count};
      }),
      this.rankingFor(this.rankingQuery(at)),
    ];
    this.hotspots.period = at;
    const legend = this.hotspots.update(this.hotspotQuery(at));
    const [series, ranking] = await Promise.all(jobs);
    if (seq !== this.seq) return legend;
    this.series = series;
    this.ranking = ranking;
    this.render(at, months);
    return legend;
  }

  // The unit's name once the side panel has it (its code until then).
  named() {
    const {state, config, panel} = this.ctx;
    document.getElementById('events-unit').textContent =
      state.unit ? (panel.unit?.code === state.unit ? panel.unit.name : state.unit) : config.root.name;
  }

  render(at, months) {
    const {state} = this.ctx;
    this.rendered = {at, unit: state.unit};
    this.named();
    document.getElementById('events-period').textContent = at;
    const now = this.series.rows[at] ?? null;
    const before = this.series.rows[shift(at, -1)] ?? null;
    document.getElementById('event-cards').innerHTML = CARDS.map(([key, format, good]) =>
      this.card(key, format, good, now, before, shift(at, -1))).join('');
    // what the public does not see, said once
    const k = this.series.k ?? this.ranking?.min_count;
    const notes = [];
    if (!this.authorised && state.category) notes.push(t('public_all_categories'));
    const hidden = (row) => row && (row.suppressed || CARDS.some(([key]) => row[key] === null || row[key] === undefined));
    if (k && (hidden(now) || (this.ranking?.rows ?? []).some((r) => r.value === null))) notes.push(t('events_withheld', {k}));
    if (!now) notes.push(t('no_events_here'));
    const note = document.getElementById('events-note');
    note.textContent = notes.join(' ');
    note.hidden = !notes.length;
    this.chart?.draw(months, this.series.rows, at);
    this.renderRanking();
    document.body.dataset.events = `${state.unit}|${at}|${state.category}|${this.indicator}`;
  }

  card(key, format, good, now, before, previous) {
    const value = now?.[key] ?? null;
    const prev = before?.[key] ?? null;
    let change = `<span class="change none">${t('no_previous')}</span>`;
    if (value !== null && prev !== null) {
      const delta = value - prev;
      const arrow = delta > 0 ? '↑' : delta < 0 ? '↓' : '→';
      const tone = delta === 0 || good === 0 ? 'flat' : (delta > 0) === (good > 0) ? 'good' : 'bad';
      const size = format === 'pct' ? `${Math.abs(delta * 100).toFixed(1)}${t('pp')}` : number(Math.abs(delta));
      change = `<span class="change ${tone}" data-change="${delta}">${arrow} ${size}</span>`;
    } else if (value === null || (before && prev === null)) {
      change = '<span class="change none">—</span>';
    }
    return `<div data-event-card="${key}" data-value="${value ?? ''}"><dt>${t(`ev_${key}`)}</dt>` +
      `<dd>${number(value, format)}</dd><div class="since" title="${previous}">${t('since_previous', {period: previous})} ${change}</div></div>`;
  }

  renderRanking() {
    const select = document.getElementById('ranking-indicator');
    select.innerHTML = RANKED.map((key) => `<option value="${key}" ${key === this.indicator ? 'selected' : ''}>${t(`ev_${key}`)}</option>`).join('');
    const level = this.childLevel();
    const body = this.ranking;
    const table = document.getElementById('ranking');
    document.getElementById('ranking-title').textContent = level ? t('ranking', {level: this.ctx.levelLabel(level)}) : '';
    if (!body || !body.rows.length) {
      table.querySelector('tbody').innerHTML = '';
      return;
    }
    const rows = body.rows;
    const ranked = rows.filter((r) => r.rank !== null && r.rank !== undefined);
    const shown = rows.length <= 2 * SHOWN ? rows : [...rows.slice(0, SHOWN), null, ...ranked.slice(-SHOWN)];
    const format = FORMAT[body.indicator];
    const better = body.higher_is_better ? 1 : -1;
    const worst = ranked.length ? ranked[ranked.length - 1].code : null;
    table.querySelector('tbody').innerHTML = shown.map((r) => {
      if (!r) return '<tr class="gap"><td colspan="4">⋯</td></tr>';
      let change = '—';
      if (r.change !== null && r.change !== undefined) {
        const tone = r.change === 0 ? 'flat' : (r.change > 0) === (better > 0) ? 'good' : 'bad';
        const size = format === 'pct' ? `${Math.abs(r.change * 100).toFixed(1)}${t('pp')}` : number(Math.abs(r.change), format);
        change = `<span class="change ${tone}">${r.change > 0 ? '↑' : r.change < 0 ? '↓' : '→'} ${size}</span>`;
      }
      const tag = r.code === worst && ranked.length > 1 ? ` <span class="tag worst">${t('worst')}</span>` :
        r.rank === 1 ? ` <span class="tag best">${t('best')}</span>` : '';
      return `<tr data-code="${esc(r.code)}" data-rank="${r.rank ?? ''}" data-value="${r.value ?? ''}">` +
        `<td class="rank">${r.rank ?? '—'}</td><td class="name">${esc(r.name)}${tag}</td>` +
        `<td>${number(r.value, format)}</td><td>${change}</td></tr>`;
    }).join('');
  }

  // Play the months from the one shown (from the first when at the last), one a second.
  play() {
    const months = this.range();
    let i = months.indexOf(this.at());
    if (i >= months.length - 1) i = -1;
    const button = document.getElementById('event-play');
    const tick = async () => {
      if (this.playing !== tick) return;
      i += 1;
      if (i >= months.length) return this.stop();
      this.ctx.state.at = months[i];
      await this.ctx.refresh('events');
      if (i >= months.length - 1) return this.stop();
      this.timer = setTimeout(tick, 1000);
    };
    this.playing = tick;
    button.textContent = t('pause');
    button.dataset.playing = '1';
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    this.playing = null;
    const button = document.getElementById('event-play');
    button.textContent = t('play');
    delete button.dataset.playing;
  }

  relabel() {
    const button = document.getElementById('event-play');
    button.textContent = t(this.playing ? 'pause' : 'play');
    if (this.series.key) this.render(this.at(), this.range());
  }
}
