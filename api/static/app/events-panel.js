// Events over time on the one map: the figure cards of the selected unit (the
// whole region when none) for the period the slider shows (a month, quarter or
// year: the period choice), with their change since the period before; the
// unit's trend; the ranking of the units inside it; the hot-spot layer; the
// slider and its play button.
//
// Every figure is the service's (computed by gridgeo.events): one request per
// filter change, /events/map, answers the unit's (or the whole region's) periods
// for the cards and the trend, the ranking of the units inside it and, when the
// choropleth shows an event indicator, every unit's value of the period shown
// with its classes (layers.js's Fills reads the same answer); then the hot spots
// (/events/hotspots) when they are on. The page adds nothing up.

import './events-words.js';
import {label, number, t} from './i18n.js';
import {TrendChart} from './events-chart.js';
import {HotSpots} from './events-layer.js';
import {EVENT_FIELD, isEventField} from './layers.js';

const CARDS = [
  // [indicator, format, which way is good (+1 up, -1 down, 0 neither)]
  ['received', 'int', 0], ['closure_rate', 'pct', 1], ['on_time_rate', 'pct', 1], ['overdue', 'int', -1],
];
const RANKED = ['closure_rate', 'on_time_rate', 'overdue', 'backlog', 'received', 'median_hours'];
const FORMAT = {received: 'int', closed: 'int', backlog: 'int', overdue: 'int', on_time: 'int',
                closure_rate: 'pct', on_time_rate: 'pct', median_hours: '1', p90_hours: '1'};
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

// The periods' labels as gridgeo.events writes them: '2025-06', '2025-Q2', '2025'.
export const PERIODS = ['month', 'quarter', 'year'];

export function periodsBetween(first, last, period) {
  const months = monthsBetween(first, last);
  const label = (m) => {
    const [y, n] = m.split('-').map(Number);
    return period === 'year' ? String(y) : period === 'quarter' ? `${y}-Q${Math.floor((n - 1) / 3) + 1}` : m;
  };
  return [...new Set(months.map(label))];
}

// The first month of a period ('2025-04' for '2025-Q2') and the first month after it.
function firstMonth(label) {
  if (/^\d{4}$/.test(label)) return `${label}-01`;
  const q = label.match(/^(\d{4})-Q(\d)$/);
  return q ? `${q[1]}-${String((Number(q[2]) - 1) * 3 + 1).padStart(2, '0')}` : label;
}

function monthAfter(label) {
  const span = /^\d{4}$/.test(label) ? 12 : /Q/.test(label) ? 3 : 1;
  const [y, m] = firstMonth(label).split('-').map(Number);
  const k = y * 12 + (m - 1) + span;
  return `${Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, '0')}`;
}

function lastMonth(label) {
  const [y, m] = monthAfter(label).split('-').map(Number);
  const k = y * 12 + (m - 1) - 1;
  return `${Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, '0')}`;
}

export class EventsPanel {
  constructor(ctx) {
    this.ctx = ctx;
    const {config} = ctx;
    this.el = document.getElementById('events-panel');
    this.authorised = false;
    this.indicator = 'closure_rate';
    this.series = {rows: {}};
    this.kept = null;  // the /events/map answer asked for last: {query, promise}
    this.ranking = null;
    this.seq = 0;
    this.playing = null;
    this.el.hidden = !config.events;  // a store without events: nothing to show
    this.hotspots = new HotSpots(ctx.map, ctx, config.main_level ?? ctx.levels[ctx.levels.length - 1].name);
    this.el.innerHTML = `
      <h2 data-i18n="events_over_time"></h2>
      <div class="events-when"><span id="events-unit"></span> · <span id="events-period"></span>
        <select id="event-period" aria-label="period" hidden></select></div>
      <div class="month-slider"><input type="range" id="event-month" min="0" max="0" step="1" value="0"
        aria-label="month"><output id="event-month-label"></output>
        <button type="button" id="event-play"></button></div>
      <dl id="event-cards" class="event-cards"></dl>
      <p id="events-note" class="withheld-note" hidden></p>
      <h3 class="events-sub" id="events-trend-title"></h3>
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
    document.getElementById('event-period').addEventListener('change', (e) => {
      this.ctx.state.period = e.target.value;
      this.ctx.state.at = '';  // the last period of the new kind
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

  // The kind of period shown: the choice of an authorised reader; the public heat map's for anyone else.
  period() {
    const publicPeriod = this.ctx.config.heat?.period ?? 'month';
    return this.authorised && PERIODS.includes(this.ctx.state.period) ? this.ctx.state.period : publicPeriod;
  }

  // Every period of the data, of the kind shown.
  get all() {
    const {events} = this.ctx.config;
    return events ? periodsBetween(events.first, events.last, this.period()) : [];
  }

  // The periods the slider steps through: those meeting the filter's from/to (months) within the data.
  range() {
    const {from, to} = this.ctx.state;
    const all = this.all;
    const chosen = all.filter((p) => (!from || lastMonth(p) >= from) && (!to || firstMonth(p) <= to));
    return chosen.length ? chosen : all;
  }

  previous(at) {
    const all = this.all;
    const i = all.indexOf(at);
    return i > 0 ? all[i - 1] : null;
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

  // The one question of a filter: the unit's periods, the ranking of the units inside it, and the
  // choropleth's units when it shows an event indicator.
  mapQuery(at = this.at()) {
    const {state, style} = this.ctx;
    const q = new URLSearchParams({period: this.period(), at});
    if (state.unit) q.set('unit', state.unit);
    const ranked = this.childLevel();
    if (ranked) {
      q.set('ranking', ranked);
      q.set('ranking_indicator', this.indicator);
    }
    if (isEventField(state.field)) {
      q.set('level', state.flevel);
      q.set('indicator', state.field.slice(EVENT_FIELD.length));
      q.set('scheme', state.scheme);
      q.set('k', style.choropleth.k);
    } else {
      q.set('choropleth', 'false');
    }
    return `/events/map?${this.common(q)}`;
  }

  // The answer to the filter shown: asked once, whoever asks (the cards here, the choropleth in layers.js).
  answer() {
    const query = this.mapQuery();
    if (this.kept?.query !== query) {
      const promise = this.ahead?.query === query ? this.ahead.promise : this.ctx.api(query);
      this.kept = {query, promise};
      promise.catch(() => { if (this.kept?.promise === promise) this.kept = null; });
    }
    return this.kept.promise;
  }

  // While playing, the next period's answer is asked for during the second the current one is shown.
  askAhead(at) {
    const query = this.mapQuery(at);
    if (this.ahead?.query === query) return;
    const promise = this.ctx.api(query, {quiet: true});
    promise.catch(() => { if (this.ahead?.promise === promise) this.ahead = null; });
    this.ahead = {query, promise};
  }

  hotspotQuery(at) {
    if (!this.ctx.state.hot) return null;
    const q = new URLSearchParams({level: this.hotspots.level, from: `${firstMonth(at)}-01`, to: `${monthAfter(at)}-01`});
    return `/events/hotspots?${this.common(q)}`;
  }

  // Redraw for the state: returns the hot spots' legend (the page's legend shows it).
  async update() {
    if (!this.ctx.config.events) return '';
    const seq = ++this.seq;
    const at = this.at();
    const periods = this.range();
    this.slider.max = String(periods.length - 1);
    this.slider.value = String(periods.indexOf(at));
    document.getElementById('event-month-label').textContent = at;
    const choice = document.getElementById('event-period');
    choice.hidden = !this.authorised;
    choice.value = this.period();
    const answer = this.answer();
    this.hotspots.period = at;
    const legend = this.hotspots.update(this.hotspotQuery(at));
    // the cards, the trend and the ranking from the one answer
    const body = await answer;
    if (seq !== this.seq) return legend;
    this.series = {rows: Object.fromEntries(body.series.map((row) => [row.period, row])), k: body.min_count};
    this.ranking = body.ranking ?? null;
    this.render(at, periods);
    return legend;
  }

  // The unit's name once the side panel has it (its code until then).
  named() {
    const {state, config, panel} = this.ctx;
    document.getElementById('events-unit').textContent =
      state.unit ? (panel.unit?.code === state.unit ? panel.unit.name : state.unit) : config.root.name;
  }

  // The cards and the trend of the answer kept (data-cards says which filter they show).
  renderCards(at, periods) {
    const {state} = this.ctx;
    this.named();
    document.getElementById('events-period').textContent = at;
    document.getElementById('events-trend-title').textContent = t(`trend_${this.period()}`);
    const previous = this.previous(at);
    const now = this.series.rows[at] ?? null;
    const before = previous ? this.series.rows[previous] ?? null : null;
    document.getElementById('event-cards').innerHTML = CARDS.map(([key, format, good]) =>
      this.card(key, format, good, now, before, previous ?? '')).join('');
    this.chart?.draw(periods, this.series.rows, at);
    document.body.dataset.cards = `${state.unit}|${at}|${state.category}`;
  }

  render(at, periods) {
    const {state} = this.ctx;
    this.rendered = {at, unit: state.unit};
    this.renderCards(at, periods);
    const now = this.series.rows[at] ?? null;
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
      `<dd>${number(value, format)}</dd><div class="since" title="${previous}">${t(`since_previous_${this.period()}`)} ${change}</div></div>`;
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

  // Play the periods from the one shown (from the first when at the last), one a second.
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
      this.askAhead(months[i + 1]);
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
    const choice = document.getElementById('event-period');
    choice.innerHTML = PERIODS.map((p) => `<option value="${p}">${t(`period_${p}`)}</option>`).join('');
    choice.value = this.period();
    if (this.rendered) this.render(this.at(), this.range());
  }
}
