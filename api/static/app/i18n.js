// The page's words, Chinese first (the interface's language), English on request.
// Level, station-kind and event-category labels come from /vocabulary, figure and
// class labels from style.json: only the page's own words live here.

export const STRINGS = {
  zh: {
    title: '网格化服务管理 · 一张图',
    motto: '一屏观全城',
    population: '实有人口',
    households: '户数',
    grids: '网格',
    stations: '服务站点',
    events: '网格事件',
    share15: '15分钟覆盖',
    search: '名称、拼音或编码',
    nothing_found: '未找到匹配的单元',
    share_link: '分享视图',
    label_scale: '名称字号', scale_normal: '标准', scale_large: '大', scale_wall: '大屏',
    link_copied: '链接已复制',
    other_language: 'EN',
    layers: '图层',
    heat: '事件热力',
    thematic: '专题图',
    field: '指标',
    none: '无',
    level: '层级',
    scheme: '分级方法',
    fisher_jenks: '自然断点',
    quantiles: '分位数',
    equal_interval: '等间距',
    coverage: '生活圈覆盖',
    off: '关闭',
    minutes: '{m}分钟',
    served: '服务范围',
    uncovered: '未覆盖区域', uncovered_households: '未覆盖 {n} 处（户）', chart_order: '{n} 个{level}，从高到低',
    coverage_summary: '{m}分钟生活圈覆盖 {share} 的户数；{n} 处未覆盖区域共 {hh} 户',
    event_filter: '事件筛选',
    category: '类别',
    all: '全部',
    from: '起',
    to: '止',
    event_density: '事件密度',
    low: '低',
    high: '高',
    no_data: '无数据或不公开',
    withheld_note: '部分数字不公开：少于 {k}，或用于保护少于 {k} 的数字（授权用户可见）',
    heat_withheld: '未显示：{n} 组（类别 × 月份）各少于 {k} 件，至多 {max} 件',
    coverage_withheld: '；另有 {w} 处少于 {k} 户的区域未显示',
    city: '市',
    children: '下辖{level} {n} 个',
    up: '返回上级',
    zoom_to: '定位',
    code: '编码',
    grid: '所属网格',
    kind: '类型',
    addresses: '标准地址',
    units: '市场主体',
    workers: '网格员',
    households_per_worker: '人均服务户数',
    events_per_1000: '千人事件数',
    share_5min: '5分钟覆盖率',
    share_10min: '10分钟覆盖率',
    share_15min: '15分钟覆盖率',
    band: '户数达标',
    has_station: '有服务站',
    yes: '是',
    no: '否',
    loading: '加载中…',
    load_failed: '{what}加载失败：{detail}',
    service_unreachable: '{what}加载失败：连不上服务，请检查网络或稍后再试。',
    tiles_failed: '部分地图图块未能加载，请稍后再试。',
    loading: '加载中…',
    what_stats: '统计数据', what_coverage: '生活圈覆盖', what_events: '事件数据', what_search: '搜索',
    what_features: '要素', what_tiles: '地图图块', what_data: '数据',
    link_field: '专题指标“{field}”不存在', link_category: '事件类别“{category}”不存在',
    link_ignored: '链接中有无法打开的部分，已略过：{what}。',
    unit_missing: '链接中的单元 {code} 不存在（可能已调整或撤销），已打开 {name}。',
    preparing: '正在准备数据',
    preparing_detail: '首次启动：正在计算第 {version} 版数据的指标、生活圈覆盖和地图切片（已 {seconds} 秒），完成后地图自动显示。',
    preparing_part: '部分数据仍在计算，稍候自动重试…',
    prepare_failed: '数据准备失败：{why}（请查看服务日志，或运行 gridgeo prepare）',
  },
  en: {
    title: 'Grid governance · One map',
    motto: 'The whole city on one screen',
    population: 'residents',
    households: 'households',
    grids: 'grids',
    stations: 'stations',
    events: 'grid events',
    share15: 'within 15 min',
    search: 'Name, pinyin, code',
    nothing_found: 'No unit found',
    share_link: 'Share view',
    label_scale: 'Names', scale_normal: 'normal', scale_large: 'large', scale_wall: 'wall',
    link_copied: 'Link copied',
    other_language: '中文',
    layers: 'Layers',
    heat: 'Event heat',
    thematic: 'Thematic map',
    field: 'Figure',
    none: 'none',
    level: 'Level',
    scheme: 'Classes',
    fisher_jenks: 'natural breaks',
    quantiles: 'quantiles',
    equal_interval: 'equal intervals',
    coverage: 'Life-circle coverage',
    off: 'off',
    minutes: '{m} min',
    served: 'served',
    uncovered: 'left out', uncovered_households: 'left out, {n} areas (households)', chart_order: '{n} {level} units, highest first',
    coverage_summary: '{share} of households within {m} minutes; {n} areas left out hold {hh} households',
    event_filter: 'Events',
    category: 'Category',
    all: 'all',
    from: 'from',
    to: 'to',
    event_density: 'event density',
    low: 'low',
    high: 'high',
    no_data: 'no data or withheld',
    withheld_note: 'Some figures withheld: fewer than {k}, or protecting a figure that is (authorised users see them)',
    heat_withheld: 'not shown: {n} groups (category × month) of fewer than {k} each, at most {max} events',
    coverage_withheld: '; {w} areas of fewer than {k} not shown',
    city: 'city',
    children: '{n} {level} inside',
    up: 'Up',
    zoom_to: 'Zoom to',
    code: 'code',
    grid: 'grid',
    kind: 'kind',
    addresses: 'addresses',
    units: 'market entities',
    workers: 'grid workers',
    households_per_worker: 'households per worker',
    events_per_1000: 'events per 1,000',
    share_5min: 'within 5 min',
    share_10min: 'within 10 min',
    share_15min: 'within 15 min',
    band: 'households band',
    has_station: 'own station',
    yes: 'yes',
    no: 'no',
    loading: 'Loading…',
    load_failed: 'Could not load the {what}: {detail}',
    service_unreachable: 'Could not load the {what}: the service cannot be reached; check the network or try again later.',
    tiles_failed: 'some map tiles could not be loaded; try again later.',
    loading: 'Loading…',
    what_stats: 'figures', what_coverage: 'coverage', what_events: 'events', what_search: 'search results',
    what_features: 'features', what_tiles: 'map tiles', what_data: 'data',
    link_field: 'no figure "{field}"', link_category: 'no event category "{category}"',
    link_ignored: 'Parts of the link could not be opened and were left out: {what}.',
    unit_missing: 'The link\'s unit {code} does not exist (perhaps redrawn or removed); {name} is shown instead.',
    preparing: 'Preparing the data',
    preparing_detail: 'First start: computing the figures, walking coverage and map geometry of data version {version} ({seconds} s so far); the map appears when they are ready.',
    preparing_part: 'Part of the data is still being computed; retrying shortly…',
    prepare_failed: 'Preparing the data failed: {why} (see the service log, or run gridgeo prepare)',
  },
};

let current = 'zh';

export function setLanguage(lang) {
  current = STRINGS[lang] ? lang : 'zh';
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  document.title = t('title');
}

export function language() {
  return current;
}

// t('minutes', {m: 15}) -> '15分钟'
export function t(key, values = {}) {
  const text = STRINGS[current][key] ?? STRINGS.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? values[name] : `{${name}}`));
}

// A label from /vocabulary or style.json: {label, label_en}.
export function label(entry) {
  if (!entry) return '';
  return current === 'en' ? entry.label_en || entry.label : entry.label;
}

export function number(value, format = 'int') {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  const locale = current === 'zh' ? 'zh-CN' : 'en-GB';
  if (format === 'pct') return `${(value * 100).toFixed(1)}%`;
  const digits = format === 'int' ? 0 : Number(format);
  return value.toLocaleString(locale, {minimumFractionDigits: digits, maximumFractionDigits: digits});
}
