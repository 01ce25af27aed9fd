// The trend of one unit's events (ECharts): received and closed per period
// (month, quarter or year) as bars, the closure and on-time rates as lines on a
// second axis, and a marker on the period the slider shows.

import {number, t} from './i18n.js';

const LEGEND_ROW = 22;
const LEGEND_GAP = 10;
const COLOURS = {received: '#38d6ff', closed: '#2ec27e', closure_rate: '#ffd23f', on_time_rate: '#ff8c42'};

export class TrendChart {
  constructor(el) {
    this.el = el;
    this.chart = echarts.init(el, null, {renderer: 'canvas'});
    this.resize = () => this.chart.resize();
    window.addEventListener('resize', this.resize);
  }

  // months: ['2025-01', ...]; rows: {month: {received, closed, closure_rate, on_time_rate}}; at: the month marked
  draw(months, rows, at) {
    const value = (m, key) => rows[m]?.[key] ?? null;
    const bar = (key) => ({type: 'bar', name: t(`ev_${key}`), yAxisIndex: 0, barGap: '10%', itemStyle: {color: COLOURS[key]},
                           data: months.map((m) => value(m, key))});
    const line = (key) => ({type: 'line', name: t(`ev_${key}`), yAxisIndex: 1, symbolSize: 5, connectNulls: false,
                            itemStyle: {color: COLOURS[key]}, lineStyle: {width: 2},
                            data: months.map((m) => value(m, key))});
    const axisText = {color: '#8ba3c2', fontSize: 11};
    const received = bar('received');
    received.markLine = at && months.includes(at) ? {
      silent: true, symbol: 'none', label: {show: false}, lineStyle: {color: '#ffffff', type: 'solid', width: 1.5},
      data: [{xAxis: at}],
    } : undefined;
    const series = [received, bar('closed'), line('closure_rate'), line('on_time_rate')];
    this.chart.setOption({
      animation: false,
      grid: {left: 6, right: 6, top: 30 + LEGEND_ROW * this.legendRows(series.map((s) => s.name)), bottom: 4, containLabel: true},
      legend: {top: 0, itemWidth: 12, itemHeight: 8, itemGap: LEGEND_GAP, textStyle: {color: '#c8d8ee', fontSize: 11}},
      tooltip: {trigger: 'axis', valueFormatter: (v) => (v === null || v === undefined ? '—' : number(v, v <= 1 && v % 1 ? 'pct' : 'int'))},
      xAxis: {type: 'category', data: months, axisLabel: {...axisText, interval: months.length <= 12 ? 0 : 'auto', formatter: (m) => (m.length > 4 ? m.slice(5) : m)},
              axisTick: {alignWithLabel: true}},
      yAxis: [
        {type: 'value', name: t('events'), nameTextStyle: axisText, axisLabel: {...axisText, formatter: (v) => number(v)},
         splitLine: {lineStyle: {color: '#1d3a5c'}}},
        {type: 'value', min: 0, max: 1, name: '%', nameTextStyle: axisText,
         axisLabel: {...axisText, formatter: (v) => `${Math.round(v * 100)}`}, splitLine: {show: false}},
      ],
      series,
    }, true);
  }

  // How many rows the legend takes at this width (ECharts wraps it): the plot starts
  // below them, so a legend of two rows (English, a laptop) never covers the axis names.
  legendRows(names) {
    const measure = (this.measure ??= document.createElement('canvas').getContext('2d'));
    measure.font = `11px ${getComputedStyle(this.el).fontFamily}`;
    const width = this.el.clientWidth - 10;
    let rows = 1;
    let x = 0;
    for (const name of names) {
      const item = 12 + 5 + measure.measureText(name).width;
      if (x > 0 && x + item > width) { rows += 1; x = 0; }
      x += item + LEGEND_GAP;
    }
    return rows;
  }

  months() {
    return this.chart.getOption().xAxis[0].data;
  }

  dispose() {
    window.removeEventListener('resize', this.resize);
    this.chart.dispose();
  }
}
