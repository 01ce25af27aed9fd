// What lies around and across the plan on the workbench's map, and what the brush may do
// there: the neighbouring villages dimmed (gridgeo.plan.neighbouring_units), the fences
// inside the village (the level-1 grids a plan of level 2 may not cross: gridgeo.plan.fences,
// whose rule is that a block can be painted only into a grid inside the same fence), the
// brush's reach (gridgeo.plan.within_steps: the block and every block within n shared edges)
// and the grids locked as finished. A stroke the plan would refuse is shown and explained
// while it is drawn, before anything is sent.

import {language, STRINGS, t} from './i18n.js';
import {esc} from './plan-layers.js';

Object.assign(STRINGS.zh, {
  brush_size: '画刷大小',
  brush_one: '单个图块',
  brush_steps: '半径 {n} 块',
  lock: '锁定',
  unlock: '解锁',
  locked_tip: '已锁定：不能划入或划出图块',
  fence_crossed: '不能这样画：{n} 个图块在{level}“{from}”内，而“{grid}”属于{level}“{to}”。本方案只调整下一级网格，不能跨越{level}边界：请在“{to}”内绘制，或新建包含{level}的方案。',
  fence_crossed_some: '（其余 {m} 个图块照常划入）',
  locked_out: '“{grid}”已锁定，不能从中划出图块：先在列表中解锁。',
  locked_in: '“{grid}”已锁定，不能向其中划入图块：先在列表中解锁。',
  neighbours_label: '相邻村社',
  mode_erase: '橡皮',
  mode_erase_tip: '点击或拖过图块，把它们移出网格，放入待分配区',
  hint_erase: '橡皮：点击或拖过图块，把它们移入待分配区（灰色）。保存前须用画刷把待分配区的图块都划入网格。',
  pen: '待分配区：{n} 个图块尚未划入任何网格（灰色）。保存前请用画刷把它们划入网格。',
  pen_not_saved: '不能保存：待分配区还有 {n} 个图块不属于任何网格。请先用画刷把它们划入网格。',
  edit_unassign: '移入待分配区',
  moved_area: '户数迁移的区域',
  selected_grid: '所选网格',
});
Object.assign(STRINGS.en, {
  brush_size: 'Brush size',
  brush_one: 'one block',
  brush_steps: 'radius {n} blocks',
  lock: 'Lock',
  unlock: 'Unlock',
  locked_tip: 'Locked: no block can be painted into or out of it',
  fence_crossed: 'Not possible: {n} block(s) lie in {level} “{from}”, and “{grid}” belongs to {level} “{to}”. This plan redraws the level below only and cannot cross a {level} boundary: paint inside “{to}”, or start a plan that includes the {level}.',
  fence_crossed_some: ' (the other {m} block(s) are painted as usual)',
  locked_out: '“{grid}” is locked: no block can be painted out of it. Unlock it in the list first.',
  locked_in: '“{grid}” is locked: no block can be painted into it. Unlock it in the list first.',
  neighbours_label: 'neighbouring villages',
  mode_erase: 'Eraser',
  mode_erase_tip: 'Click or drag over blocks to take them out of their grids into the holding pen',
  hint_erase: 'Eraser: click or drag over blocks to put them in the holding pen (grey). Before saving, paint every block in the pen into a grid.',
  pen: 'Holding pen: {n} block(s) in no grid (grey). Paint them into grids before saving.',
  pen_not_saved: 'Cannot save: {n} block(s) in the holding pen belong to no grid. Paint them into grids first.',
  edit_unassign: 'Into the holding pen',
  moved_area: 'area whose households move',
  selected_grid: 'selected grid',
});

export const BRUSH_SIZES = [0, 1, 2, 3];

export class Context {
  constructor(map, ctx) {
    this.map = map;
    this.ctx = ctx;
    map.createPane('around').style.zIndex = 400;
    map.createPane('fences').style.zIndex = 455;
    for (const name of ['around', 'fences']) map.getPane(name).style.pointerEvents = 'none';
    this.neighbours = L.geoJSON(null, {pane: 'around', interactive: false,
      style: () => ({color: '#3fa7ff', weight: 1.2, opacity: 0.45, fillColor: '#0f2740', fillOpacity: 0.5})}).addTo(map);
    this.fences = L.geoJSON(null, {pane: 'fences', interactive: false,
      style: () => ({color: '#c7a3ff', weight: 4.5, opacity: 0.95, dashArray: '10 6', fill: false})}).addTo(map);
    this.labels = L.layerGroup().addTo(map);
    this.fenceOf = {};
    this.adjacent = new Map();
    this.level = null;
  }

  // The plan's context from the service (the GET of a plan: body.context), once per plan.
  load(context, villageLabels) {
    const c = context ?? {};
    this.level = c.fence_level ?? null;
    this.raw = c;
    this.fenceOf = c.fence_of ?? {};
    this.fenceNames = new Map((c.fences?.features ?? []).map((f) => [f.properties.code, f.properties.name]));
    this.adjacent = new Map();
    for (const [a, b] of c.pairs ?? []) {
      if (!this.adjacent.has(a)) this.adjacent.set(a, []);
      if (!this.adjacent.has(b)) this.adjacent.set(b, []);
      this.adjacent.get(a).push(b);
      this.adjacent.get(b).push(a);
    }
    this.neighbours.clearLayers();
    this.fences.clearLayers();
    this.labels.clearLayers();
    if (c.neighbours) this.neighbours.addData(c.neighbours);
    if (c.fences) this.fences.addData(c.fences);
    const at = new Map((villageLabels ?? []).map(([lat, lon, code]) => [code, [lat, lon]]));
    for (const f of c.neighbours?.features ?? []) {
      const where = at.get(f.properties.code);
      if (!where) continue;
      L.marker(where, {pane: 'labels', interactive: false, keyboard: false,
        icon: L.divIcon({className: 'grid-label around', html: `<span class="name">${esc(f.properties.name)}</span>`, iconSize: null}),
      }).addTo(this.labels);
    }
  }

  // Drawn now (for the tests and the curious): the codes of the neighbours and of the fences.
  drawn() {
    const codes = (group) => group.getLayers().map((l) => l.feature.properties.code).sort();
    return {neighbours: codes(this.neighbours), fences: codes(this.fences)};
  }

  // The brush's blocks around one: the block and every block within `steps` shared edges.
  reach(id, steps) {
    const seen = new Set([id]);
    let ring = [id];
    for (let k = 0; k < steps; k += 1) {
      ring = ring.flatMap((b) => this.adjacent.get(b) ?? []).filter((b) => !seen.has(b));
      for (const b of ring) seen.add(b);
    }
    return [...seen];
  }

  // A grid's fence: that of its blocks ('' when the plan has no fences).
  gridFence(code) {
    if (!this.level) return '';
    const assignment = this.ctx.state.assignment;
    const block = Object.keys(assignment).find((b) => assignment[b] === code);
    return block ? this.fenceOf[block] ?? '' : '';
  }

  // Which of these blocks a stroke into grid `to` may paint, and why the others not:
  // {ok: [...], fenced: [...], lockedOut: [...], lockedIn: bool}.
  judge(ids, to) {
    const {assignment} = this.ctx.state;
    const locked = this.ctx.locked;
    const out = {ok: [], fenced: [], lockedOut: [], lockedIn: Boolean(to) && locked.has(to)};
    const target = to ? this.gridFence(to) : '';
    for (const id of ids) {
      if (assignment[id] === to) continue;  // for the eraser (to ''), the blocks already in the pen
      if (locked.has(assignment[id])) out.lockedOut.push(id);
      else if (this.level && target && this.fenceOf[id] && this.fenceOf[id] !== target) out.fenced.push(id);
      else out.ok.push(id);
    }
    if (out.lockedIn) { out.lockedOut.push(...out.ok, ...out.fenced); out.ok = []; out.fenced = []; }
    return out;
  }

  // The explanation of what a stroke cannot do, in the page's language ('' when it can do it all).
  explain(judged, to) {
    const name = (code) => this.ctx.state.units.find((u) => u.code === code)?.name ?? code;
    const parts = [];
    if (judged.lockedIn) parts.push(t('locked_in', {grid: name(to)}));
    else if (judged.lockedOut.length) {
      const from = [...new Set(judged.lockedOut.map((id) => this.ctx.state.assignment[id]))];
      parts.push(from.map((code) => t('locked_out', {grid: name(code)})).join(' '));
    }
    if (judged.fenced.length) {
      const fences = [...new Set(judged.fenced.map((id) => this.fenceOf[id]))];
      const target = this.gridFence(to);
      const sep = language() === 'zh' ? '”“' : '”, “';
      const c = this.raw;
      const level = language() === 'en' ? (c.fence_label_en || c.fence_level) : (c.fence_label || c.fence_level);
      parts.push(t('fence_crossed', {n: judged.fenced.length, level,
        from: fences.map((f) => this.fenceNames.get(f) ?? f).join(sep), grid: name(to),
        to: this.fenceNames.get(target) ?? target}));
    }
    if (parts.length && judged.ok.length) parts.push(t('fence_crossed_some', {m: judged.ok.length}));
    return parts.join(' ');
  }
}
