// The workbench's panels: the figures of every grid after each edit (balance
// bar against the band, contiguity, station, compactness, 15-minute share),
// the plans to open, the edit log, the history and the comparison with the
// published grids. All figures come from the service (gridgeo.plan.impact, diff).

import {label, language, number, t} from './i18n.js';
import {esc} from './plan-layers.js';
import {beijing} from './plan-admin.js';

const BAR_MAX_SHARE = 1.5;  // the bar's scale reaches this multiple of the band's top

export function summary(impact) {
  const s = impact.summary;
  const items = [
    ['grid_count', number(s.grids), ''],
    ['within_band', `${number(s.within)} / ${number(s.grids)}`, s.within < s.grids ? 'warn' : 'good'],
    ['non_contiguous', number(s.non_contiguous.length), s.non_contiguous.length ? 'bad' : 'good'],
    ['without_station', number((s.without_station ?? []).length), (s.without_station ?? []).length ? 'warn' : 'good'],
  ];
  if (s.share_15min !== undefined) items.push(['share_15min', number(s.share_15min, 'pct'), '']);
  document.getElementById('summary').innerHTML = items.map(([key, value, kind]) =>
    `<div data-summary="${key}" class="${kind}"><dt>${t(key)}</dt><dd>${value}</dd></div>`).join('');
}

// One row per grid: click selects it (the brush paints into it), the box ticks it for a merge.
export function gridList(ctx) {
  const {state, style} = ctx;
  const [low, high] = state.band;
  const top = Math.max(high * BAR_MAX_SHARE, ...state.impact.grids.map((g) => g.households));
  const pct = (v) => `${(100 * v / top).toFixed(2)}%`;
  document.getElementById('band-text').textContent = t('band_text', {low, high});
  document.getElementById('grid-list').innerHTML = state.impact.grids.map((g) => {
    const flags = [];
    if (!g.contiguous) flags.push(`<span class="flag bad" data-flag="pieces">${t('pieces', {n: g.pieces})}</span>`);
    if (g.has_station === false) flags.push(`<span class="flag warn" data-flag="station">${t('no_station')}</span>`);
    const band = style.band[g.band] ?? {};
    const checked = ctx.ticked.has(g.code) ? 'checked' : '';
    const locked = ctx.locked?.has(g.code);
    return `
      <div class="grid-row ${g.band} ${g.code === ctx.selected ? 'selected' : ''} ${g.contiguous ? '' : 'broken'} ${locked ? 'locked' : ''}"
           data-grid="${g.code}" data-households="${g.households}" data-band="${g.band}"
           data-contiguous="${g.contiguous}" data-pieces="${g.pieces}">
        <div class="row-head">
          <input type="checkbox" class="tick" data-tick="${g.code}" ${checked} title="${t('select_for_merge')}"
                 ${ctx.readOnly() ? 'disabled' : ''}>
          <span class="swatch-box" style="background:${ctx.colours.of(g.code)}"></span>
          <span class="grid-name">${esc(g.name)}</span>
          <span class="code">${ctx.codeTail(g.code)}</span>
          <span class="hh" data-value="households">${number(g.households)}</span>
          <button type="button" class="lock" data-lock="${g.code}" aria-pressed="${Boolean(locked)}"
                  title="${locked ? t('locked_tip') : t('lock')}" ${ctx.readOnly() ? 'disabled' : ''}>${locked ? t('unlock') : t('lock')}</button>
        </div>
        <div class="bar" title="${low}–${high}">
          <span class="band" style="left:${pct(low)};width:${pct(high - low)}"></span>
          <span class="fill" style="width:${pct(g.households)};background:${band.color ?? '#888'}"></span>
        </div>
        <div class="row-foot">
          <span class="band-label" style="color:${band.color ?? 'inherit'}">${label(band) || t(g.band)}</span>
          <span>${t('population')} ${number(g.population)}</span>
          <span>${t('compactness')} ${number(g.polsby_popper, '2')}</span>
          ${g.share_15min !== undefined ? `<span>15′ ${number(g.share_15min, 'pct')}</span>` : ''}
          ${flags.join('')}
        </div>
      </div>`;
  }).join('');
}

export function plansList(ctx, plans) {
  const list = document.getElementById('drafts');
  if (!plans.length) {
    list.innerHTML = `<li class="empty">${t('no_plans')}</li>`;
    return;
  }
  list.innerHTML = plans.slice().reverse().map((p) => `
    <li data-plan="${p.id}" class="${p.id === ctx.state?.plan?.id ? 'current' : ''}">
      <div><span class="plan-title">${esc(p.name)}</span><span class="status ${p.status}">${t(p.status)}</span></div>
      <div class="meta">${esc(p.parent_name)} · ${esc(p.authors.join('、'))} · ${t('revision', {r: p.revision})} ·
        ${esc(beijing(p.updated_at))}</div>
    </li>`).join('');
}

// A message of the service's with the plan's grid codes replaced by the grids' names, for reading.
export function named(text, units) {
  const names = new Map(units.map((u) => [u.code, u.name]));
  return String(text ?? '').replace(/\d{9,}/g, (code) => names.get(code) ?? code);
}

export function editLog(ctx) {
  const entries = ctx.state.log;
  document.getElementById('log').innerHTML = entries.length
    ? entries.map((e) => `<li><b>${t(`edit_${e.edit}`)}</b> ${esc(named(language() === 'zh' && e.message_zh ? e.message_zh : e.message, ctx.state.units))}</li>`).join('')
    : `<li class="empty">${t('no_edits')}</li>`;
  document.getElementById('history').innerHTML = ctx.state.history.slice().reverse().map((h) => `
    <li><b>${t(`edit_${h.action}`)}</b> ${esc(h.author)} · ${t('revision', {r: h.revision})} ·
      ${esc(beijing(h.at))}<div class="meta">${esc(named(historyText(h.message), ctx.state.units))}</div></li>`).join('');
}

// The store's own words in a plan's history, in the page's language (a planner's message as written).
function historyText(message) {
  const created = /^(\d+) units copied from revision (\d+)$/.exec(message ?? '');
  if (created) return t('history_created', {n: number(Number(created[1])), r: created[2]});
  if (message === 'saved from the workbench') return t('history_saved');
  return message ?? '';
}

// The comparison with the published grids: what changed and who moves where.
export function diffView(ctx, diff) {
  const box = document.getElementById('diff');
  const names = new Map([...ctx.state.units.map((u) => [u.code, u.name])]);
  const kinds = ctx.style.diff ?? {};
  const changed = diff.units.filter((u) => u.change !== 'unchanged');
  const moves = diff.moves.features.map((f) => f.properties);
  const s = diff.summary;
  const nameOf = (code, fallback) => (code ? esc(names.get(code) ?? fallback ?? code) : t('unassigned'));
  box.innerHTML = !changed.length && !moves.length ? `<p class="note">${t('no_changes')}</p>` : `
    <h3>${t('changes')} <span class="meta">${t('before_after')}</span></h3>
    <table class="diff-units">${changed.map((u) => `
      <tr data-change="${u.change}" data-code="${u.code}">
        <td><span class="tag" style="background:${kinds[u.change]?.color ?? '#888'}">${label(kinds[u.change]) || u.change}</span></td>
        <td>${nameOf(u.code, u.name_after || u.name_before)}</td>
        <td class="num">${number(u.households_before)} → ${number(u.households_after)}</td></tr>`).join('')}
    </table>
    <h3>${t('from_to')}</h3>
    <p class="note" data-moved="${s.households_moved ?? 0}">${t('moved', {hh: number(s.households_moved ?? 0), pop: number(s.population_moved ?? 0), blocks: number(s.blocks_moved ?? 0)})}</p>
    <table class="moves">
      <tr><th>${t('from')}</th><th>${t('to')}</th><th class="num">${t('households')}</th></tr>
      ${moves.map((m) => `<tr data-from="${m.from_code}" data-to="${m.to_code}" data-households="${m.households}">
        <td>${nameOf(m.from_code, diff.units.find((u) => u.code === m.from_code)?.name_before)}</td>
        <td>${nameOf(m.to_code)}</td><td class="num">${number(m.households)}</td></tr>`).join('')}
    </table>`;
  box.hidden = false;
}
