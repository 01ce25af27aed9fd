// The administrator's part of the workbench: the versions of the published data
// (loads, publishes, rollbacks from the audit trail, GET /admin/audit) and the
// way back to one of them. What a rollback would change comes from the service
// (GET /admin/rollback?to=, gridgeo's rollback_preview); the rollback itself is
// POST /admin/rollback with the preview's data version, so that a change made
// meanwhile is refused (409) and shown again rather than overwritten.

import {language, number, t} from './i18n.js';
import {esc} from './plan-layers.js';
import {refusalText} from './plan-review.js';

const DATA_ACTIONS = ['load', 'publish', 'rollback'];
const SHOWN = 12;      // versions listed
const UNITS_SHOWN = 24;  // units named in the preview (the rest counted)

// A UTC time of the service, as a clock in Beijing shows it.
export function beijing(at) {
  if (!at) return '';
  const text = String(at);
  // the service's times are UTC; one written without a zone is UTC too
  const when = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`);
  if (Number.isNaN(when.getTime())) return String(at);
  return when.toLocaleString(language() === 'zh' ? 'zh-CN' : 'en-GB', {
    timeZone: 'Asia/Shanghai', hour12: false, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit'});
}

// "网格 新增1 修改2 删除1" from an audit entry's or a preview's layer counts.
function layerCounts(layers) {
  return Object.entries(layers ?? {}).map(([layer, c]) => `${t(`kind_${layer}`)} ${
    ['added', 'changed', 'removed'].filter((w) => c[w]).map((w) => `${t(w)} ${number(c[w])}`).join(' ') || '—'}`)
    .join('；');
}

export class Rollbacks {
  constructor(ctx, {api, toast, message, clearMessage, listPlans}) {
    Object.assign(this, {ctx, api, toast, message, clearMessage, listPlans});
    this.box = document.getElementById('published-box');
    this.dialog = document.getElementById('rollback-dialog');
    this.preview = null;
    document.getElementById('published-list').addEventListener('click', (e) => {
      const button = e.target.closest('[data-restore]');
      if (button) this.open(Number(button.dataset.restore));
    });
    document.getElementById('rollback-confirm').addEventListener('click', () => this.confirm());
    document.getElementById('rollback-cancel').addEventListener('click', () => this.dialog.close());
  }

  get allowed() {
    return this.ctx.me?.role === 'admin';
  }

  // The newest versions of the published data, the one the one map shows first.
  async list() {
    this.box.hidden = !this.allowed;
    if (!this.allowed) return;
    const query = DATA_ACTIONS.map((a) => `action=${a}`).join('&');
    const {entries} = await this.api(`/admin/audit?${query}&limit=${SHOWN}`);
    const versions = entries.filter((e) => e.revision !== null && e.revision !== undefined);
    document.getElementById('published-list').innerHTML = versions.map((e, k) => `
      <li data-revision="${e.revision}" data-action="${esc(e.action)}" class="${k === 0 ? 'current' : ''}">
        <div><span class="plan-title">${esc(t('revision_line', {r: e.revision, action: t(`action_${e.action}`), author: e.author}))}</span>
          ${k === 0 ? `<span class="status published">${t('current_version')}</span>` : ''}</div>
        <div class="meta">${esc(beijing(e.at))} · ${esc(layerCounts(e.what?.layers))}</div>
        ${e.message ? `<div class="meta quote">${esc(e.message)}</div>` : ''}
        ${k === 0 ? '' : `<button type="button" data-restore="${e.revision}">${t('restore')}</button>`}
      </li>`).join('');
  }

  async open(to) {
    this.clearMessage();
    try {
      this.fill(await this.api(`/admin/rollback?to=${to}`));
    } catch (error) {
      if (!error.problem) throw error;
      this.message(t('failed', {detail: refusalText(error.problem)}));
      return;
    }
    document.getElementById('rollback-message').value = '';
    this.dialog.showModal();
  }

  fill(preview, refused = '') {
    this.preview = preview;
    const {to, version, revision} = preview;
    this.dialog.dataset.to = to;
    this.dialog.dataset.version = version;
    document.getElementById('rollback-title').textContent = t('rollback_title', {to});
    document.getElementById('rollback-meta').textContent = t('rollback_meta', {to, next: revision + 1, version});
    document.getElementById('rollback-layers').innerHTML = `
      <tr><th>${t('layer')}</th><th class="num">${t('added')}</th><th class="num">${t('changed')}</th><th class="num">${t('removed')}</th></tr>
      ${Object.entries(preview.layers ?? {}).map(([layer, c]) => `
        <tr data-layer="${esc(layer)}" data-added="${c.added}" data-changed="${c.changed}" data-removed="${c.removed}">
          <td>${esc(t(`kind_${layer}`))}</td><td class="num">${number(c.added)}</td>
          <td class="num">${number(c.changed)}</td><td class="num">${number(c.removed)}</td></tr>`).join('')}`;
    const names = preview.names ?? {};
    const units = Object.entries(preview.units ?? {}).flatMap(([what, codes]) => codes.map((code) => ({what, code})));
    document.getElementById('rollback-units-box').hidden = !units.length;
    document.getElementById('rollback-units').innerHTML = units.slice(0, UNITS_SHOWN).map(({what, code}) => `
      <li data-unit="${esc(code)}" data-change="${what}"><b>${t(`unit_${what}`)}</b> ${esc(names[code] || code)}
        <span class="meta">${esc(code)}</span></li>`).join('')
      + (units.length > UNITS_SHOWN ? `<li class="meta">${t('rollback_more', {n: number(units.length)})}</li>` : '');
    const plans = preview.plans ?? [];
    document.getElementById('rollback-plans-box').hidden = !plans.length;
    document.getElementById('rollback-plans').innerHTML = plans.map((p) => `
      <li data-plan="${p.plan_id}">${esc(p.name)} <span class="meta">${esc(p.author)} · ${t(p.status)}</span></li>`).join('');
    const errors = preview.errors ?? [];
    document.getElementById('rollback-errors-box').hidden = !errors.length;
    document.getElementById('rollback-errors').innerHTML = errors.map((e) => `
      <li class="error" data-kind="${esc(e.kind)}" data-code="${esc(e.code ?? '')}">
        ${esc(language() === 'zh' ? e.message_zh : e.message_en)}</li>`).join('');
    const why = preview.refusal ? refusalText(preview.refusal) : '';
    const verdict = document.getElementById('rollback-refused');
    verdict.textContent = [refused, why].filter(Boolean).join(' ');
    verdict.hidden = !verdict.textContent;
    document.getElementById('rollback-confirm').disabled = Boolean(preview.refusal);
  }

  async confirm() {
    const reason = document.getElementById('rollback-message').value.trim();
    const verdict = document.getElementById('rollback-refused');
    if (!reason) {
      verdict.textContent = t('rollback_reason_needed');
      verdict.hidden = false;
      document.getElementById('rollback-message').focus();
      return;
    }
    const {to, version} = this.preview;
    try {
      const done = await this.api('/admin/rollback', {method: 'POST', body: {to, message: reason, version}});
      this.dialog.close();
      this.toast(t('rollback_done', {to, r: done.revision}));
      await this.list();
      this.listPlans();
    } catch (error) {
      if (!error.problem) throw error;
      if (error.status === 409) {  // the data moved since the preview: show what it would do now
        this.fill(await this.api(`/admin/rollback?to=${to}`), t('rollback_changed') + refusalText(error.problem));
      } else {
        verdict.textContent = refusalText(error.problem);
        verdict.hidden = false;
      }
    }
  }
}
