// Print and export (打印与导出): the view as PNG or PDF for a meeting, the selection's figures as Excel.
// The service draws and writes them (/export/map.png|pdf, /export/figures.xlsx: gridgeo.printing and
// gridgeo.workbook); this menu only says what the view is: the level and figure of the choropleth (an
// event indicator with its period and category), the selected unit, the map's bounds and the language.
import {STRINGS, t} from './i18n.js';
import {isEventField} from './layers.js';

Object.assign(STRINGS.zh, {
  export: '打印/导出', export_png: '地图图片 (PNG)', export_pdf: '打印地图 (PDF)', export_xlsx: '指标表 (Excel)',
  export_hint: '当前视图：标题、图例、比例尺、指北针、日期与数据版本',
});
Object.assign(STRINGS.en, {
  export: 'Print / export', export_png: 'Map image (PNG)', export_pdf: 'Map to print (PDF)',
  export_xlsx: 'Figures (Excel)', export_hint: 'The current view: title, legend, scale bar, north arrow, date and data version',
});

// An event indicator's choropleth (ev_*) as the events panel asks it: the field, the kind of period, the
// period shown and (for a key that sees them) the category. The service answers the export with the values
// /events/map gives the same filter.
function eventQuery(ctx, q) {
  const {state, events} = ctx;
  q.set('field', state.field);
  q.set('period', events.period());
  q.set('at', events.at());
  if (state.category && events.authorised) q.set('category', state.category);
  return q;
}

// The query of the current view, as /export/map.* takes it.
export function viewQuery(ctx) {
  const {state, map} = ctx;
  const q = new URLSearchParams();
  q.set('level', state.flevel || ctx.config.main_level || 'grid2');
  if (isEventField(state.field) && ctx.events) eventQuery(ctx, q);
  else if (state.field && state.field in ctx.style.fields) q.set('field', state.field);  // a print has the tiles' figures
  if (state.scheme) q.set('scheme', state.scheme);
  if (state.unit) q.set('unit', state.unit);
  const b = map.getBounds();
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v)).toFixed(6);
  q.set('bbox', [clamp(b.getWest(), -180, 180), clamp(b.getSouth(), -90, 90), clamp(b.getEast(), -180, 180),
                 clamp(b.getNorth(), -90, 90)].join(','));
  q.set('lang', state.lang === 'en' ? 'en' : 'zh');
  return q;
}

// The figures of the selection; with an event indicator shown, its values per unit of the choropleth's level
// (inside the selected unit).
export function figuresQuery(ctx) {
  const q = new URLSearchParams();
  if (isEventField(ctx.state.field) && ctx.events) {
    if (ctx.state.unit) q.set('unit', ctx.state.unit);
    q.set('level', ctx.state.flevel || ctx.config.main_level || 'grid2');
    return eventQuery(ctx, q);
  }
  if (ctx.state.unit) q.set('unit', ctx.state.unit);
  else q.set('level', ctx.state.flevel || ctx.config.main_level || 'grid2');
  return q;
}

export class ExportMenu {
  constructor(ctx) {
    this.ctx = ctx;
    const menu = document.createElement('details');
    menu.id = 'export';
    menu.className = 'export';
    menu.innerHTML = `<summary data-i18n="export">${t('export')}</summary>
      <div class="export-menu" data-i18n-title="export_hint" title="${t('export_hint')}">
        <a id="export-png" download data-i18n="export_png">${t('export_png')}</a>
        <a id="export-pdf" download data-i18n="export_pdf">${t('export_pdf')}</a>
        <a id="export-xlsx" download data-i18n="export_xlsx">${t('export_xlsx')}</a>
      </div>`;
    document.getElementById('share').before(menu);
    // links follow the view when the menu opens, and again just before a click
    menu.addEventListener('toggle', () => { if (menu.open) this.update(); });
    for (const a of menu.querySelectorAll('a')) {
      a.addEventListener('pointerdown', () => this.update());
      a.addEventListener('click', (e) => {
        setTimeout(() => { menu.open = false; }, 0);
        if (this.ctx.key) { e.preventDefault(); this.keyed(a.href); }  // a link cannot carry the key: fetch it
      });
    }
    document.addEventListener('click', (e) => { if (!menu.contains(e.target)) menu.open = false; });
    this.menu = menu;
  }

  // A download for a caller with a key (the page keeps it in sessionStorage): fetched with the key,
  // saved under the name the service gives it.
  async keyed(href) {
    const response = await fetch(href, {headers: {'X-API-Key': this.ctx.key}});
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      alert(problem.detail || `${response.status} ${response.statusText}`);
      return;
    }
    const disposition = response.headers.get('Content-Disposition') || '';
    const name = decodeURIComponent((disposition.match(/filename\*=UTF-8''([^;]+)/) || [])[1] || 'gridgeo');
    const url = URL.createObjectURL(await response.blob());
    const a = Object.assign(document.createElement('a'), {href: url, download: name});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  update() {
    const view = viewQuery(this.ctx).toString();
    document.getElementById('export-png').href = `/export/map.png?${view}`;
    document.getElementById('export-pdf').href = `/export/map.pdf?${view}`;
    document.getElementById('export-xlsx').href = `/export/figures.xlsx?${figuresQuery(this.ctx)}`;
  }
}
