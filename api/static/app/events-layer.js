// Hot and cold spots of events (Getis-Ord Gi*, from /events/hotspots) on the
// units of one level: the unit polygons of the service's tiles, filled by the
// class the service gives each code. Units the service withholds (fewer than k
// events, for the public) or finds not significant stay unfilled.

import {t} from './i18n.js';
import {Tiles, ZOOM_OFFSET} from './layers.js';

export const HOTSPOT_COLOURS = {hot: '#ff3b5c', cold: '#3d8bff'};
export const HOTSPOT_OPACITY = 0.6;

export class HotSpots {
  constructor(map, ctx, level) {
    this.map = map;
    this.ctx = ctx;
    this.level = level;
    this.classes = {};
    this.body = null;
    this.key = null;
    map.createPane('events').style.zIndex = 420;  // over the choropleth, under the boundaries
    map.getPane('events').style.pointerEvents = 'none';
    this.layer = new Tiles(`/tiles/${level}/{z}/{x}/{y}.mvt`, {
      pane: 'events',
      rendererFactory: L.canvas.tile,
      interactive: false,
      minZoom: (ctx.minzoom[level] ?? 0) + ZOOM_OFFSET,
      vectorTileLayerStyles: {[level]: (props) => this.style(props)},
    });
  }

  style(props) {
    const colour = HOTSPOT_COLOURS[this.classes[props.code]];
    if (!colour) return [];
    return {stroke: true, weight: 1, color: colour, opacity: 0.9, fill: true, fillColor: colour,
            fillOpacity: HOTSPOT_OPACITY};
  }

  // query: the /events/hotspots path for the period and categories shown, or null (layer off)
  async update(query) {
    if (!query) {
      if (this.map.hasLayer(this.layer)) this.map.removeLayer(this.layer);
      this.key = null;
      this.body = null;
      return '';
    }
    if (query !== this.key) {
      this.key = query;
      const body = await this.ctx.api(query);
      if (query !== this.key) return this.legend();
      this.body = body;
      this.classes = Object.fromEntries(body.rows.map((r) => [r.code, r.class]));
      if (this.map.hasLayer(this.layer)) this.layer.redraw(); else this.layer.addTo(this.map);
    }
    return this.legend();
  }

  counts() {
    const n = {hot: 0, cold: 0, none: 0};
    for (const c of Object.values(this.classes)) n[c] = (n[c] ?? 0) + 1;
    return n;
  }

  legend(period = '') {
    const body = this.body;
    if (!body) return '';
    const n = this.counts();
    const row = (colour, text, count, cls) => `<div class="row" data-class="${cls}"><span class="box" style="background:${colour}"></span>` +
      `<span>${text}</span><span class="count">${count}</span></div>`;
    return `<h3>${t('hotspots')}</h3>` +
      row(HOTSPOT_COLOURS.hot, t('hot'), n.hot, 'hot') + row(HOTSPOT_COLOURS.cold, t('cold'), n.cold, 'cold') +
      row('transparent', t('not_significant'), n.none, 'none') +
      `<div class="row note">${t('hotspot_rate', {level: this.ctx.levelLabel(this.level), period: this.period ?? period,
                                                    alpha: body.alpha})}</div>` +
      (body.withheld ? `<div class="row withheld" data-withheld="${body.withheld}">` +
        `${t('hotspot_withheld', {n: body.withheld, k: body.min_count})}</div>` : '');
  }
}
