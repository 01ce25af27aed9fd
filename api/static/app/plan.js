// The planner's workbench (/plan): wiring only. The page keeps the working
// state (which grid every block is in, the grids' names) with an undo stack;
// every edit goes to the service (POST /plans/{id}/edit), which applies it with
// gridgeo.plan and answers with the new state and its figures. Geometry,
// figures and validation all come from there; blocks travel once per plan.
// The review (submit, the pre-publish report, approve, return, publish) is
// plan-review.js; what the caller may do is each plan's `can`, from the service.

import './plan-words.js';
import {language, setLanguage, t} from './i18n.js';
import {Blocks, Colours, esc, Outlines, SplitLine, Stations, Villages} from './plan-layers.js';
import {Importer} from './plan-import.js';
import {diffView, editLog, gridList, named, plansList, summary} from './plan-panel.js';
import {Review} from './plan-review.js';
import {beijing, Rollbacks} from './plan-admin.js';
import {Roads} from './roads.js';
import {BRUSH_SIZES, Context} from './plan-context.js';

const KEY = 'gridgeo.key';
// The levels of the store's code scheme (from /map/config.json): a plan is opened on a
// village (or a full level below it that has a full level below it) and paints a full
// level below that.
let PLAN_LEVELS = ['grid1', 'grid2'];
let PARENT_LEVELS = ['village', 'grid1'];

function schemeLevels(config) {
  const names = config.levels.map((lv) => lv.name);
  const village = config.village_level ?? 'village';
  const below = config.levels.filter((lv) => lv.full && names.indexOf(lv.name) > names.indexOf(village)).map((lv) => lv.name);
  PLAN_LEVELS = below;
  PARENT_LEVELS = [village, ...below.slice(0, -1)];
}

class Refused extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || String(status));
    this.status = status;
    this.problem = problem;
  }
}

const ctx = {
  state: null, selected: '', mode: 'pan', ticked: new Set(), undo: [], redo: [], pending: 0,
  chosen: null, start: 'published', colours: new Colours(), locked: new Set(), brushSize: 0,
};

// --- talking to the service -----------------------------------------------------------

// The public data (vocabulary, levels, villages, stations, search) is read without the key: the
// service refuses a key it does not know on every path, and a mistyped key must not stop the page
// from starting; the plan and upload routes get the key and ask for another when it is refused.
async function api(path, {method = 'GET', body, blob = false, anonymous = false} = {}) {
  ctx.pending += 1;
  busy();
  try {
    const headers = {Accept: blob ? '*/*' : 'application/json'};
    const key = anonymous ? null : sessionStorage.getItem(KEY);
    if (key) headers['X-API-Key'] = key;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    if (!response.ok) {
      const problem = await response.json().catch(() => ({title: response.statusText}));
      // a key refused, or one without the role (not a step its scope or role does not allow: those say why)
      if (response.status === 401 || (response.status === 403 && !problem.reason)) askForKey(problem.detail);
      throw new Refused(response.status, problem);
    }
    return blob ? await response.blob() : await response.json();
  } finally {
    ctx.pending -= 1;
    busy();
  }
}

function busy() {
  document.body.classList.toggle('busy', ctx.pending > 0);
}

function working() {
  return {assignment: ctx.state.assignment, names: Object.fromEntries(ctx.state.units.map((u) => [u.code, u.name]))};
}

// --- messages ---------------------------------------------------------------------------

function toast(text) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 3000);
}

function message(text, kind = 'error') {
  const box = document.getElementById('message');
  document.getElementById('message-text').textContent = text;
  box.className = kind;
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearMessage() {
  const box = document.getElementById('message');
  box.hidden = true;
  delete box.dataset.stroke;
}

// A refusal in the planner's language: gridgeo's own message when it has one.
function refusal(error) {
  const p = error.problem ?? {};
  const text = p.message_zh && language() === 'zh' ? p.message_zh : p.message_en || p.detail || error.message;
  return named(text, ctx.state?.units ?? []);
}

function staleText(problem) {
  // one sentence per change of someone else's, naming every grid it touched (by name; Beijing time)
  const names = new Map((ctx.state?.units ?? []).map((u) => [u.code, u.name]));
  const changes = new Map();
  for (const c of problem.conflicts ?? []) {
    const key = JSON.stringify([c.author, c.revision, c.at, c.based_on, c.change === 'removed']);
    if (!changes.has(key)) changes.set(key, {...c, codes: []});
    changes.get(key).codes.push(c.code);
  }
  const who = [...changes.values()].map((c) => t(c.codes.length > 1 ? 'stale_units' : 'stale_unit', {
    code: c.codes.map((code) => names.get(code) || code).join(language() === 'zh' ? '、' : ', '),
    author: c.author, revision: c.revision,
    based_on: c.based_on ?? '—',
    when: !c.at ? '' : language() === 'zh' ? `（${beijing(c.at)}）` : ` (${beijing(c.at)}, Beijing time)`,
    removed: c.change === 'removed' ? t('removed_word') : '',
  })).join('；');
  return t('stale', {who: who || problem.detail});
}

function askForKey(detail) {
  document.getElementById('key-box').hidden = false;
  if (detail && sessionStorage.getItem(KEY)) message(t('key_refused', {detail}));
}

// --- the plan on the page -----------------------------------------------------------------

function show(body, {blocks}) {
  const first = !ctx.state || ctx.state.plan.id !== body.plan.id;
  if (first) {
    ctx.colours.reset();
    ctx.undo = [];
    ctx.redo = [];
    ctx.ticked.clear();
    ctx.selected = '';
    ctx.locked = new Set(readLocks(body.plan.id));
  }
  ctx.state = {
    plan: body.plan, level: body.level, band: body.band, revision: body.revision, history: body.history,
    published: body.published, assignment: body.assignment, units: body.units, grids: body.grids,
    impact: body.impact, log: first ? [] : ctx.state.log,
    saved: {assignment: body.assignment, units: body.units},
  };
  if (first) restoreUnsaved();
  if (!ctx.state.units.some((u) => u.code === ctx.selected)) ctx.selected = ctx.state.units[0]?.code ?? '';
  if (blocks) {
    const bounds = ctx.blocks.load(body.blocks);
    ctx.context.load(body.context, ctx.villageLabels);
    ctx.map.fitBounds(bounds, {padding: [30, 30]});
    const box = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()].map((v) => v.toFixed(6));
    api(`/collections/stations/items?bbox=${box.join(',')}&limit=10000`, {anonymous: true})
      .then((found) => ctx.stations.load(found));
  }
  ctx.villages.show(false);
  if (ctx.importer?.report) ctx.importer.close();
  location.hash = hash();
  document.getElementById('welcome').hidden = true;
  document.getElementById('plan-panel').hidden = false;
  document.getElementById('tools-box').hidden = ctx.readOnly();
  if (ctx.readOnly()) setMode('pan');
  else if (first) setMode('paint');
  render();
}

// After an edit, undo or redo: the new state, keeping what was saved.
function adopt(snapshot) {
  const {locked, colours, ...state} = snapshot;
  Object.assign(ctx.state, state);
  if (locked) ctx.locked = new Set(locked);
  if (colours) ctx.colours.given = new Map(colours);  // an undone renumbering gives the old codes their colours back
  for (const code of [...ctx.ticked]) if (!snapshot.units.some((u) => u.code === code)) ctx.ticked.delete(code);
  if (!snapshot.units.some((u) => u.code === ctx.selected)) ctx.selected = snapshot.units[0]?.code ?? '';
  render();
  refreshCompare();
}

function snapshot() {
  const {assignment, units, grids, impact, log} = ctx.state;
  return {assignment, units, grids, impact, log, locked: [...ctx.locked], colours: [...ctx.colours.given]};
}

// --- grids locked as finished: kept in this browser per plan -----------------------------------
const LOCKS = (id) => `gridgeo.locked.${id}`;

function readLocks(id) {
  try {
    return JSON.parse(localStorage.getItem(LOCKS(id)) ?? '[]');
  } catch {
    return [];
  }
}

function keepLocks() {
  if (!ctx.state) return;
  try {
    localStorage.setItem(LOCKS(ctx.state.plan.id), JSON.stringify([...ctx.locked]));
  } catch {
    // storage refused: the locks last as long as the page
  }
}

function toggleLock(code) {
  if (ctx.locked.has(code)) ctx.locked.delete(code); else ctx.locked.add(code);
  keepLocks();
  render();
}

// --- unsaved edits ---------------------------------------------------------------------------
// The working state of a plan with edits not yet saved is kept in this browser (localStorage) at
// every change, so that a reload, a crash or a closed tab loses nothing: opening the plan again
// brings the edits back on the revision they were made on (a save then meets the usual check of
// what others saved meanwhile). Opening another plan with edits unsaved asks first.
const UNSAVED = (id) => `gridgeo.unsaved.${id}`;

function keepUnsaved() {
  const s = ctx.state;
  if (!s || ctx.readOnly()) return;
  try {
    if (dirty()) {
      localStorage.setItem(UNSAVED(s.plan.id), JSON.stringify({
        revision: s.revision, saved: s.saved, ...snapshot(), at: new Date().toISOString()}));
    } else localStorage.removeItem(UNSAVED(s.plan.id));
  } catch {
    // a full or refused storage: the page still asks before discarding, and the service has the last save
  }
}

function restoreUnsaved() {
  const s = ctx.state;
  let kept = null;
  try {
    kept = JSON.parse(localStorage.getItem(UNSAVED(s.plan.id)) ?? 'null');
  } catch {
    kept = null;
  }
  if (!kept?.assignment || !kept.saved) return;
  if (ctx.readOnly()) {
    localStorage.removeItem(UNSAVED(s.plan.id));
    message(t('unsaved_dropped', {status: t(s.plan.status), n: kept.log?.length ?? 0}), 'warning');
    return;
  }
  Object.assign(s, {revision: kept.revision, saved: kept.saved, assignment: kept.assignment, units: kept.units,
    grids: kept.grids, impact: kept.impact, log: kept.log ?? []});
  message(t('unsaved_restored', {n: s.log.length, when: beijing(kept.at), r: kept.revision}), 'info');
}

// Whether the page may leave the plan open now: without unsaved edits at once; with them, the
// planner chooses to save them, to discard them, or to stay.
function leaveOk() {
  if (!ctx.state || ctx.readOnly() || !dirty()) return Promise.resolve(true);
  const dialog = document.getElementById('unsaved-dialog');
  document.getElementById('unsaved-text').textContent = t('unsaved_question', {
    name: `${ctx.state.plan.name} · ${ctx.state.plan.parent_name}`, n: ctx.state.log.length || 1});
  return new Promise((resolve) => {
    const buttons = ['unsaved-save', 'unsaved-discard', 'unsaved-stay'].map((id) => document.getElementById(id));
    const finish = async (choice) => {
      for (const b of buttons) b.onclick = null;
      dialog.oncancel = null;
      dialog.close();
      if (choice === 'unsaved-save') resolve(await save({quiet: true}));
      else if (choice === 'unsaved-discard') {
        localStorage.removeItem(UNSAVED(ctx.state.plan.id));
        resolve(true);
      } else resolve(false);
    };
    for (const b of buttons) b.onclick = () => finish(b.id);
    dialog.oncancel = (e) => { e.preventDefault(); finish('unsaved-stay'); };
    dialog.showModal();
  });
}

function dirty() {
  const s = ctx.state;
  return JSON.stringify(s.assignment) !== JSON.stringify(s.saved.assignment) ||
    JSON.stringify(s.units.map((u) => [u.code, u.name])) !== JSON.stringify(s.saved.units.map((u) => [u.code, u.name]));
}

function render() {
  const s = ctx.state;
  if (!s) return;
  document.getElementById('plan-head').hidden = false;
  document.getElementById('plan-name').textContent = `${s.plan.name} · ${s.plan.parent_name}`;
  const status = document.getElementById('plan-status');
  status.textContent = t(s.plan.status);
  status.className = `status ${s.plan.status}`;
  document.getElementById('plan-revision').textContent = t('revision', {r: s.revision});
  document.getElementById('plan-dirty').hidden = !dirty();
  const waiting = pen();
  const penBox = document.getElementById('pen');
  penBox.hidden = !waiting;
  penBox.textContent = waiting ? t('pen', {n: waiting}) : '';
  penBox.dataset.blocks = waiting;
  ctx.blocks.restyle();
  ctx.outlines.draw(s);
  summary(s.impact);
  gridList(ctx);
  editLog(ctx);
  hint();
  ctx.review.render();
  document.getElementById('undo').disabled = !ctx.undo.length;
  document.getElementById('redo').disabled = !ctx.redo.length;
  document.getElementById('merge').disabled = ctx.ticked.size < 2;
  document.body.dataset.revision = s.revision;
  document.body.dataset.dirty = dirty() ? '1' : '0';
  keepUnsaved();
}

// Editable when the caller may save the plan: a draft inside their scope.
ctx.readOnly = () => !ctx.state || !(ctx.state.plan.can ?? []).includes('save');
ctx.canPaint = () => ((ctx.mode === 'paint' && Boolean(ctx.selected)) || ctx.mode === 'erase') && !ctx.readOnly();
// Where a stroke puts its blocks: the selected grid, or the holding pen ('') for the eraser.
ctx.strokeTarget = () => (ctx.mode === 'erase' ? '' : ctx.selected);

// --- edits --------------------------------------------------------------------------------

async function edit(change) {
  const s = ctx.state;
  clearMessage();
  try {
    const answer = await api(`/plans/${s.plan.id}/edit`, {method: 'POST', body: {...working(), ...change}});
    if (!answer.log) { render(); return null; }
    ctx.undo.push(snapshot());
    ctx.redo = [];
    const {log, ...next} = answer;
    if (log.renamed) {  // renumbering: every grid keeps its colour and its lock under its new code
      ctx.colours.rename(log.renamed);
      ctx.locked = new Set([...ctx.locked].map((code) => log.renamed[code] ?? code));
      keepLocks();
    }
    adopt({...next, log: [...s.log, log]});
    return log;
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    message(t('refused', {detail: refusal(error)}));
    render();  // the brush's preview goes back to what the plan is
    return null;
  }
}

// A stroke released: the blocks the plan allows are painted; what it would refuse (across a
// fence, a locked grid) was shown during the stroke and stays said, and is not sent.
ctx.paint = async (ids) => {
  const to = ctx.strokeTarget();
  const judged = ctx.context.judge(ids, to);
  const why = ctx.context.explain(judged, to);
  if (!judged.ok.length) { ctx.blocks.restyle(); return; }
  await edit(to ? {op: 'reassign', blocks: judged.ok, to} : {op: 'unassign', blocks: judged.ok});
  if (why) ctx.strokeNote(why);
};

// What a stroke cannot do, said while it is drawn (a warning that stays until dismissed).
ctx.strokeNote = (text) => {
  const box = document.getElementById('message');
  if (text) { message(text, 'warning'); box.dataset.stroke = '1'; }
  else if (box.dataset.stroke === '1') { clearMessage(); }
};

ctx.clickBlock = async (id) => {
  if (!ctx.state) return;
  if (ctx.mode === 'pan') ctx.pickGrid(ctx.state.assignment[id]);
  else if (ctx.mode === 'add' && !ctx.readOnly()) {
    if (ctx.locked.has(ctx.state.assignment[id])) { ctx.strokeNote(ctx.context.explain(ctx.context.judge([id], ''), '')); return; }
    const log = await edit({op: 'add', blocks: [id]});
    if (log) { ctx.pickGrid(log.code); setMode('paint'); }
  }
};

ctx.pickGrid = (code) => {
  if (!code || code === ctx.selected) return;  // the list stays as it is (a double-click renames)
  ctx.selected = code;
  render();
};

ctx.hover = (props) => {
  const box = document.getElementById('hover');
  if (!props || !ctx.state) { box.hidden = true; return; }
  const code = ctx.state.assignment[props.block_id];
  const unit = ctx.state.units.find((u) => u.code === code);
  box.innerHTML = `<b>${t('block', {id: esc(props.block_id)})}</b>
    <div>${t('in_grid')}：${unit ? esc(unit.name) : t('unassigned')}</div>
    <div>${t('households')} ${props.households} · ${t('population')} ${props.population} · ${t('units')} ${props.units}</div>`;
  box.hidden = false;
};

function step(from, to) {
  if (!from.length) return;
  to.push(snapshot());
  adopt(from.pop());
}

async function split(line) {
  await edit({op: 'split', to: ctx.selected, line});
  setMode('paint');
}

function setMode(mode) {
  if (ctx.mode === 'split' && mode !== 'split') ctx.splitLine.stop();
  if (mode === 'split' && !ctx.selected) mode = 'paint';
  ctx.mode = mode;
  const map = ctx.map;
  if (mode === 'pan' || mode === 'split') map.dragging.enable(); else map.dragging.disable();  // paint, erase, add
  if (mode === 'split') ctx.splitLine.start();
  map.getContainer().dataset.mode = mode;
  for (const b of document.querySelectorAll('#modes button')) b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
  hint();
}

function hint() {
  const unit = ctx.state?.units.find((u) => u.code === ctx.selected);
  const grid = unit ? unit.name : '';
  const keys = {pan: 'hint_pan', paint: grid ? 'hint_paint' : 'hint_paint_none', add: 'hint_add', erase: 'hint_erase',
                split: grid ? 'hint_split' : 'hint_split_none'};
  document.getElementById('mode-hint').textContent = t(keys[ctx.mode], {grid});
}

// --- save, publish, export, compare --------------------------------------------------------------

// The blocks in the holding pen (the eraser's), in no grid: a plan is saved with none.
function pen() {
  return Object.values(ctx.state?.assignment ?? {}).filter((code) => !code).length;
}

async function save({quiet = false} = {}) {
  const s = ctx.state;
  if (!dirty()) { if (!quiet) toast(t('nothing_to_save')); return true; }
  if (pen()) { message(t('pen_not_saved', {n: pen()})); return false; }  // gridgeo.plan.save refuses it too
  clearMessage();
  try {
    const body = await api(`/plans/${s.plan.id}/save`, {method: 'POST', body: {
      ...working(), base: s.saved.assignment, base_revision: s.revision,
      base_names: Object.fromEntries(s.saved.units.map((u) => [u.code, u.name])),
      message: s.log.map((e) => e.message).join('; ')}});
    show(body, {blocks: false});
    ctx.state.log = [];
    render();
    toast(body.saved ? t('saved', {r: body.revision}) : t('nothing_to_save'));
    listPlans();
    return true;
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    message(error.status === 409 && error.problem.conflicts ? staleText(error.problem) : t('failed', {detail: refusal(error)}));
    return false;
  }
}

// The plan again from the service, after a step of its review (its status, `can`, history).
async function reload(id) {
  show(await api(`/plans/${id}`), {blocks: false});
}

async function download(format) {
  const s = ctx.state;
  try {
    const blob = await api(`/plans/${s.plan.id}/export?format=${format}`, {method: 'POST', body: working(), blob: true});
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = `plan-${s.plan.id}-${s.plan.parent}.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    message(t('failed', {detail: refusal(error)}));
  }
}

async function refreshCompare() {
  const on = document.getElementById('compare').checked;
  if (!on || !ctx.state) {
    ctx.outlines.compare(null, null);
    document.getElementById('diff').hidden = true;
    return;
  }
  const diff = await api(`/plans/${ctx.state.plan.id}/diff`, {method: 'POST', body: working()});
  ctx.outlines.compare(ctx.state.published, diff.moves);
  diffView(ctx, diff);
}

// --- opening plans -----------------------------------------------------------------------------------

async function listPlans() {
  if (!sessionStorage.getItem(KEY)) return;
  const {plans} = await api('/plans');
  plansList(ctx, plans);
  ctx.review.queue(plans);
}

// Who the key is: name, role and the units it covers, in the top bar.
async function whoAmI() {
  if (!sessionStorage.getItem(KEY)) return;
  ctx.me = await api('/me');
  const me = ctx.me;
  const el = document.getElementById('who');
  el.textContent = t('who', {name: me.name, role: t(`role_${me.role}`), scope: me.scopes.join('、') || t('whole_city')});
  el.dataset.role = me.role;
}

// A grid's name, edited where it is shown: double-click, type, Enter (Escape keeps it).
function renameInPlace(nameEl) {
  const row = nameEl.closest('[data-grid]');
  if (!row || ctx.readOnly()) return;
  const code = row.dataset.grid;
  const unit = ctx.state.units.find((u) => u.code === code);
  const input = document.createElement('input');
  input.type = 'text';
  input.className = 'rename';
  input.value = unit?.name ?? '';
  input.dataset.rename = code;
  nameEl.replaceWith(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (keep) => {
    if (done) return;
    done = true;
    const name = input.value.trim();
    if (keep && name && name !== unit?.name) await edit({op: 'rename', to: code, name});
    else render();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); finish(true); }
    if (e.key === 'Escape') { e.preventDefault(); finish(false); }
  });
  input.addEventListener('blur', () => finish(true));
}

async function openPlan(id) {
  if (ctx.state?.plan.id === id && !ctx.readOnly() && dirty()) {  // open already, with its edits: keep them
    toast(t('already_open'));
    return;
  }
  if (!(await leaveOk())) return;
  clearMessage();
  const body = await api(`/plans/${id}`);
  show(body, {blocks: true});
  toast(t('opened', {name: body.plan.name}));
  listPlans();
}

function choose(unit) {
  ctx.chosen = unit;
  document.getElementById('chosen').textContent = t('chosen', {name: unit.name, code: unit.code});
  document.getElementById('new-name').value = t('default_name', {name: unit.name});
  document.getElementById('create').disabled = false;
  fillLevels();
}

function fillBrushSizes() {
  const select = document.getElementById('brush-size');
  select.innerHTML = BRUSH_SIZES.map((n) => `<option value="${n}" ${n === ctx.brushSize ? 'selected' : ''}>${
    n ? t('brush_steps', {n}) : t('brush_one')}</option>`).join('');
}

function fillLevels() {
  const select = document.getElementById('new-level');
  const parentLevel = ctx.chosen?.level ?? PARENT_LEVELS[0];
  const below = PLAN_LEVELS.filter((lv) => ctx.levelOrder.indexOf(lv) > ctx.levelOrder.indexOf(parentLevel));
  const main = ctx.config?.main_level ?? 'grid2';
  select.innerHTML = below.map((lv) => `<option value="${lv}" ${lv === main ? 'selected' : ''}>${esc(ctx.levelLabel(lv))}</option>`).join('');
}

async function create() {
  if (!ctx.chosen || !(await leaveOk())) return;
  clearMessage();
  const button = document.getElementById('create');
  button.disabled = true;
  try {
    const body = await api('/plans', {method: 'POST', body: {
      name: document.getElementById('new-name').value.trim() || t('default_name', {name: ctx.chosen.name}),
      parent: ctx.chosen.code, level: document.getElementById('new-level').value, start: ctx.start}});
    show(body, {blocks: true});
    listPlans();
  } catch (error) {
    if (!(error instanceof Refused)) throw error;
    message(t('failed', {detail: refusal(error)}));
  } finally {
    button.disabled = false;
  }
}

function searchBox() {
  const input = document.getElementById('search');
  const list = document.getElementById('search-results');
  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) { list.hidden = true; return; }
    timer = setTimeout(async () => {
      const {results} = await api(`/search?q=${encodeURIComponent(q)}&limit=20`, {anonymous: true});
      const found = results.filter((r) => PARENT_LEVELS.includes(r.level));
      list.innerHTML = found.map((r) => `<li data-code="${r.code}" data-name="${esc(r.name)}" data-level="${r.level}">
        <span>${esc(r.name)}</span><span class="meta">${esc(ctx.levelLabel(r.level))} ${r.code}</span></li>`).join('') ||
        `<li class="empty">—</li>`;
      list.hidden = false;
    }, 200);
  });
  list.addEventListener('click', (e) => {
    const item = e.target.closest('li[data-code]');
    if (!item) return;
    list.hidden = true;
    input.value = item.dataset.name;
    choose({code: item.dataset.code, name: item.dataset.name, level: item.dataset.level});
  });
}

// --- the page's controls ------------------------------------------------------------------------------

function listen() {
  const on = (id, event, fn) => document.getElementById(id).addEventListener(event, fn);
  on('key-form', 'submit', async (e) => {
    e.preventDefault();
    const key = document.getElementById('key').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    document.getElementById('key').value = '';
    try {
      await whoAmI();
      await listPlans();
      document.getElementById('key-box').hidden = true;
      clearMessage();
      await ctx.rollbacks.list().catch((error) => message(t('failed', {detail: refusal(error)})));
      // a link to a plan opened before the key was given opens the plan now
      const id = Number(new URLSearchParams(location.hash.slice(1)).get('plan'));
      if (id && ctx.state?.plan.id !== id) await openPlan(id).catch((error) => message(t('failed', {detail: refusal(error)})));
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      sessionStorage.removeItem(KEY);
    }
  });
  on('forget-key', 'click', () => {
    sessionStorage.removeItem(KEY);
    ctx.me = null;
    ctx.rollbacks.list();
    askForKey();
  });
  on('language', 'click', () => {
    setLanguage(language() === 'zh' ? 'en' : 'zh');
    ctx.splitLine.setLanguage(language());
    fillLevels();
    fillBrushSizes();
    location.hash = hash();
    render();
    whoAmI();
    listPlans();
    ctx.rollbacks.list().catch(() => {});
    refreshCompare();
    if (ctx.review.dialog.open) ctx.review.fill(ctx.review.mode, ctx.review.report);
    if (ctx.rollbacks.dialog.open) ctx.rollbacks.fill(ctx.rollbacks.preview);
  });
  on('new-start', 'click', (e) => {
    const b = e.target.closest('button[data-start]');
    if (!b) return;
    ctx.start = b.dataset.start;
    for (const other of document.querySelectorAll('#new-start button')) other.setAttribute('aria-pressed', String(other === b));
  });
  on('create', 'click', create);
  on('drafts', 'click', (e) => {
    const item = e.target.closest('li[data-plan]');
    if (item) openPlan(Number(item.dataset.plan));
  });
  on('modes', 'click', (e) => {
    const b = e.target.closest('button[data-mode]');
    if (b) setMode(b.dataset.mode);
  });
  on('grid-list', 'click', (e) => {
    const tick = e.target.closest('input[data-tick]');
    if (tick) {
      if (tick.checked) ctx.ticked.add(tick.dataset.tick); else ctx.ticked.delete(tick.dataset.tick);
      document.getElementById('merge').disabled = ctx.ticked.size < 2;
      return;
    }
    const row = e.target.closest('[data-grid]');
    const lock = e.target.closest('button[data-lock]');
    if (lock) { toggleLock(lock.dataset.lock); return; }
    if (row) ctx.pickGrid(row.dataset.grid);
  });
  on('brush-size', 'change', (e) => { ctx.brushSize = Number(e.target.value); });
  on('merge', 'click', async () => {
    const codes = [...ctx.ticked];
    const into = codes.includes(ctx.selected) ? ctx.selected : codes.slice().sort()[0];
    if (await edit({op: 'merge', codes, to: into})) { ctx.ticked.clear(); ctx.pickGrid(into); }
  });
  on('renumber', 'click', () => edit({op: 'renumber'}));
  on('undo', 'click', () => step(ctx.undo, ctx.redo));
  on('redo', 'click', () => step(ctx.redo, ctx.undo));
  on('save', 'click', () => save());
  on('review-queue', 'click', (e) => {
    const item = e.target.closest('li[data-plan]');
    if (item) openPlan(Number(item.dataset.plan));
  });
  on('grid-list', 'dblclick', (e) => {
    const name = e.target.closest('.grid-name');
    if (name) renameInPlace(name);
  });
  for (const b of document.querySelectorAll('[data-export]')) b.addEventListener('click', () => download(b.dataset.export));
  on('compare', 'change', refreshCompare);
  on('message-close', 'click', clearMessage);
  document.addEventListener('keydown', (e) => {
    if (!ctx.state || e.target.closest('input, textarea, select')) return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === 'z') { e.preventDefault(); step(...(e.shiftKey ? [ctx.redo, ctx.undo] : [ctx.undo, ctx.redo])); }
    else if ((e.ctrlKey || e.metaKey) && key === 'y') { e.preventDefault(); step(ctx.redo, ctx.undo); }
    else if (key === 'escape') setMode('pan');
    else if (key === 'b' && !ctx.readOnly()) setMode('paint');
    else if (key === 'e' && !ctx.readOnly()) setMode('erase');
    else if (key === 'h') setMode('pan');
  });
  window.addEventListener('beforeunload', (e) => {
    if (ctx.state && !ctx.readOnly() && dirty()) e.preventDefault();
  });
}

function hash() {
  const q = new URLSearchParams();
  if (ctx.state) q.set('plan', ctx.state.plan.id);
  if (language() !== 'zh') q.set('lang', language());
  return `#${q}`;
}

// --- start -----------------------------------------------------------------------------------------------

async function start() {
  const q = new URLSearchParams(location.hash.slice(1));
  setLanguage(q.get('lang') === 'en' ? 'en' : 'zh');
  const [style, vocabulary, config, tiles] = await Promise.all([
    api('/static/app/style.json', {anonymous: true}), api('/vocabulary', {anonymous: true}),
    api('/map/config.json', {anonymous: true}),
    api('/tiles', {anonymous: true}).catch(() => ({layers: []})),  // no tiles yet: no roads drawn, the rest works
  ]);
  schemeLevels(config);
  const village = PARENT_LEVELS[0];
  const [villages, labels] = await Promise.all([
    api(`/collections/${village}/items?limit=10000`, {anonymous: true}),
    api(`/map/labels/${village}.json`, {anonymous: true}),
  ]);
  for (const lv of config.levels) style.levels[lv.name] ??= style.levels[lv.style];  // a scheme's own levels
  ctx.style = style;
  ctx.config = config;
  // a grid's code past its village's: what tells the grids of one village apart
  const villageWidth = config.levels.find((lv) => lv.name === village)?.width ?? 12;
  ctx.codeTail = (code) => code.slice(villageWidth);
  const levels = Object.fromEntries(vocabulary.levels.map((lv) => [lv.name, lv]));
  ctx.levelOrder = vocabulary.levels.map((lv) => lv.name);
  ctx.levelLabel = (name) => (language() === 'en' ? levels[name]?.label_en : levels[name]?.label) ?? name;

  const map = L.map('map', {zoomSnap: 0.25, zoomDelta: 0.5, minZoom: 8, maxZoom: 19, boxZoom: false});
  ctx.map = map;
  L.control.scale({imperial: false, position: 'bottomright'}).addTo(map);
  for (const [name, z] of [['blocks', 410], ['compare', 440], ['outlines', 450], ['labels', 460]]) map.createPane(name).style.zIndex = z;
  for (const name of ['compare', 'outlines', 'labels']) map.getPane(name).style.pointerEvents = 'none';
  if (config.basemap?.kind === 'xyz') L.tileLayer(config.basemap.url, {maxZoom: 19, attribution: config.basemap.attribution || ''}).addTo(map);
  // the roads under the blocks (which are cut from them), from street level
  const roadTiles = tiles.layers.find((layer) => layer.id === 'roads');
  if (roadTiles) {
    ctx.roads = new Roads(map, {pane: 'roads', zIndex: 405, minzoom: roadTiles.minzoom, opacity: 0.9});
    ctx.roads.show(true);
  }
  ctx.villages = new Villages(map, style, (props, bounds) => {
    choose({code: props.code, name: props.name, level: village});
    map.fitBounds(bounds, {padding: [40, 40], maxZoom: 16});
  });
  map.fitBounds(ctx.villages.load(villages, labels.labels), {padding: [20, 20]});
  ctx.villages.show(true);
  ctx.villageLabels = labels.labels;
  ctx.context = new Context(map, ctx);
  ctx.blocks = new Blocks(map, ctx);
  ctx.outlines = new Outlines(map, ctx);
  ctx.stations = new Stations(map, style);
  ctx.splitLine = new SplitLine(map, split);
  ctx.importer = new Importer(map, ctx, {
    key: () => sessionStorage.getItem(KEY),
    onOpen: async (plans) => {
      await openPlan(plans[0].id);
      toast(t('import_opened', {n: plans.length}));
    },
    onError: (text) => message(text),
  });
  ctx.splitLine.setLanguage(language());
  ctx.review = new Review(ctx, {api, reload, toast, message, clearMessage, save, listPlans});
  ctx.rollbacks = new Rollbacks(ctx, {api, toast, message, clearMessage, listPlans});

  fillLevels();
  fillBrushSizes();
  searchBox();
  listen();
  setMode('pan');
  if (!sessionStorage.getItem(KEY)) askForKey();
  else {
    await whoAmI().catch(() => {});
    await listPlans().catch(() => {});
    await ctx.rollbacks.list().catch((error) => message(t('failed', {detail: refusal(error)})));
    const id = Number(q.get('plan'));
    if (id) await openPlan(id).catch((error) => message(t('failed', {detail: refusal(error)})));
  }
  ctx.idle = () => ctx.pending === 0 && !ctx.roads?.loading();
  window.workbench = ctx;  // for the browser tests and the curious
  document.body.dataset.ready = '1';
}

start().catch((error) => {
  console.error(error);
  document.body.dataset.ready = 'failed';
});
