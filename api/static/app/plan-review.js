// The review on the workbench: submit, withdraw, the pre-publish report in a
// dialog, approve, return with a comment, publish. Who may do what comes from
// the service (each plan's `can`, gridgeo.review); every figure of the report
// from it too (gridgeo.plan.report). A report with warnings is approved or
// published only with its version acknowledged: the dialog's tick sends it.

import {language, number, t} from './i18n.js';
import {esc} from './plan-layers.js';

const OWN_KINDS = ['off_band', 'non_contiguous', 'without_station', 'unassigned'];

export class Review {
  constructor(ctx, {api, reload, toast, message, clearMessage, save, listPlans}) {
    Object.assign(this, {ctx, api, reload, toast, message, clearMessage, save, listPlans});
    this.dialog = document.getElementById('report-dialog');
    this.report = null;
    this.mode = null;
    const on = (id, fn) => document.getElementById(id).addEventListener('click', fn);
    on('submit', () => this.submit());
    on('withdraw', () => this.withdraw());
    on('review', () => this.open('review'));
    on('publish', () => this.open('publish'));
    on('report-approve', () => this.decide('approve'));
    on('report-return', () => this.sendBack());
    on('report-publish', () => this.decide('publish'));
    on('report-cancel', () => this.dialog.close());
    document.getElementById('report-ack').addEventListener('change', () => this.enable());
  }

  can(action) {
    return Boolean(this.ctx.state?.plan.can?.includes(action));
  }

  // The plan's buttons and the line that says where its review stands.
  render() {
    const show = (id, on) => { document.getElementById(id).hidden = !on; };
    show('save', this.can('save'));
    show('submit', this.can('submit'));
    show('withdraw', this.can('withdraw'));
    show('review', this.can('approve') || this.can('return'));
    show('publish', this.can('publish'));
    const plan = this.ctx.state.plan;
    const r = plan.review ?? {};
    const when = (at) => (at ?? '').slice(0, 16).replace('T', ' ');
    let text = '';
    let kind = '';
    if (plan.status === 'submitted') [text, kind] = [t('note_submitted', {author: r.submitted_by, at: when(r.submitted_at)}), 'waiting'];
    else if (plan.status === 'approved') [text, kind] = [t('note_approved', {author: r.approved_by, at: when(r.approved_at)}), 'good'];
    else if (plan.status === 'draft' && r.comment) {
      [text, kind] = [t('note_returned', {author: r.returned_by, at: when(r.returned_at), comment: r.comment}), 'returned'];
    } else if (plan.status === 'draft' && this.can('publish')) [text, kind] = [t('note_self_publish'), 'waiting'];
    const note = document.getElementById('review-note');
    note.textContent = text;
    note.className = `review-note ${kind}`;
    note.dataset.kind = kind;
    note.hidden = !text;
  }

  // The plans waiting for this reviewer: submitted ones to approve, approved ones to publish.
  queue(plans) {
    const mine = plans.filter((p) => p.can.includes('approve') || (p.status === 'approved' && p.can.includes('publish')));
    document.getElementById('review-box').hidden = !mine.length;
    document.getElementById('review-queue').innerHTML = mine.map((p) => `
      <li data-plan="${p.id}" class="${p.id === this.ctx.state?.plan?.id ? 'current' : ''}">
        <div><span class="plan-title">${esc(p.name)}</span><span class="status ${p.status}">${t(p.status)}</span></div>
        <div class="meta">${esc(p.parent_name)} · ${esc(t('review_waiting', {author: p.review.submitted_by ?? p.author,
          at: (p.review.submitted_at ?? p.updated_at).slice(0, 16).replace('T', ' ')}))}</div>
      </li>`).join('');
  }

  async step(action, body) {
    const id = this.ctx.state.plan.id;
    const done = await this.api(`/plans/${id}/${action}`, {method: 'POST', body});
    await this.reload(id);
    this.listPlans();
    return done;
  }

  async submit() {
    if (!(await this.save({quiet: true}))) return;
    this.clearMessage();
    await this.guard(async () => { await this.step('submit', {message: ''}); this.toast(t('submitted_ok')); });
  }

  async withdraw() {
    this.clearMessage();
    await this.guard(async () => { await this.step('withdraw', {message: ''}); this.toast(t('withdrawn_ok')); });
  }

  // Run a request; a refusal becomes the page's message.
  async guard(fn) {
    try {
      return await fn();
    } catch (error) {
      if (!error.problem) throw error;
      this.message(t('failed', {detail: refusalText(error.problem)}));
      return null;
    }
  }

  async open(mode) {
    this.clearMessage();
    if (mode === 'publish' && this.can('save') && !(await this.save({quiet: true}))) return;  // a small office's own draft
    const report = await this.guard(() => this.api(`/plans/${this.ctx.state.plan.id}/report`));
    if (!report) return;
    this.fill(mode, report);
    this.dialog.showModal();
  }

  fill(mode, report, refused = '') {
    this.mode = mode;
    this.report = report;
    const plan = this.ctx.state.plan;
    const zh = language() === 'zh';
    const s = report.summary;
    this.dialog.dataset.mode = mode;
    this.dialog.dataset.version = report.version;
    document.getElementById('report-title').textContent = t(mode === 'review' ? 'report_title_review' : 'report_title_publish');
    document.getElementById('report-plan').textContent = t('report_plan', {
      name: plan.name, parent: plan.parent_name, revision: report.revision, version: report.version});
    const kpis = [
      ['grids', t('report_grids'), s.grids_before !== undefined ? `${number(s.grids_before)} → ${number(s.grids_after)}` : '—', ''],
      ['households_moved', t('report_moved_hh'), number(s.households_moved ?? 0), ''],
      ['errors', t('report_errors_count'), number(s.errors), s.errors ? 'bad' : 'good'],
      ['warnings', t('report_warnings_count'), number(s.warnings), s.warnings ? 'warn' : 'good'],
      ['off_band', t('report_off_band'), number(s.off_band), s.off_band ? 'warn' : 'good'],
      ['non_contiguous', t('report_pieces'), number(s.non_contiguous), s.non_contiguous ? 'bad' : 'good'],
      ['without_station', t('report_no_station'), number(s.without_station), s.without_station ? 'warn' : 'good'],
    ];
    if (s.households_without_station !== null && s.households_without_station !== undefined) {
      kpis.push(['households_without_station', t('report_no_station_hh'), number(s.households_without_station),
        s.households_without_station ? 'warn' : 'good']);
    }
    document.getElementById('report-summary').innerHTML = kpis.map(([key, label, value, kind]) =>
      `<div data-summary="${key}" class="${kind}"><dt>${esc(label)}</dt><dd>${value}</dd></div>`).join('');
    const row = (p, severity) => `
      <li class="${severity}" data-kind="${esc(p.kind)}" data-code="${esc(p.code)}" ${p.value !== null ? `data-value="${p.value}"` : ''}>
        <b>${esc(t(`severity_${severity}`))}</b>
        ${p.new === true ? `<span class="tag new">${t('report_new')}</span>` : p.new === false && OWN_KINDS.includes(p.kind)
          ? `<span class="tag old">${t('report_existing')}</span>` : ''}
        ${esc(zh ? p.message_zh : p.message_en)}</li>`;
    document.getElementById('report-errors-box').hidden = !report.errors.length;
    document.getElementById('report-errors').innerHTML = report.errors.map((e) => row(e, 'error')).join('');
    document.getElementById('report-warnings-box').hidden = !report.warnings.length;
    document.getElementById('report-warnings').innerHTML = report.warnings.map((w) => row(w, 'warning')).join('');
    document.getElementById('report-moved').textContent = t('moved', {
      hh: number(s.households_moved ?? 0), pop: number(s.population_moved ?? 0), blocks: number(s.blocks_moved ?? 0)});
    document.getElementById('report-moves').innerHTML = report.moves.length ? `
      <tr><th>${t('from')}</th><th>${t('to')}</th><th class="num">${t('households')}</th><th class="num">${t('population')}</th></tr>
      ${report.moves.map((m) => `<tr data-from="${m.from_code}" data-to="${m.to_code}" data-households="${m.households}">
        <td>${m.from_code ? esc(m.from_name || m.from_code) : t('unassigned')}</td>
        <td>${m.to_code ? esc(m.to_name || m.to_code) : t('unassigned')}</td>
        <td class="num">${number(m.households)}</td><td class="num">${number(m.population ?? 0)}</td></tr>`).join('')}` : '';
    const doing = t(mode === 'review' ? 'doing_approve' : 'doing_publish');
    document.getElementById('report-ack-box').hidden = !report.warnings.length;
    document.getElementById('report-ack').checked = false;
    document.getElementById('report-ack-text').textContent = t('report_ack', {
      n: report.warnings.length, doing, version: report.version});
    document.getElementById('report-comment-box').hidden = mode !== 'review';
    if (!refused) document.getElementById('report-comment').value = '';
    const blocked = report.errors.length ? t('report_has_errors', {n: report.errors.length, doing}) : '';
    const verdict = document.getElementById('report-refused');
    verdict.textContent = [refused, blocked].filter(Boolean).join(' ');
    verdict.hidden = !verdict.textContent;
    document.getElementById('report-approve').hidden = mode !== 'review' || !this.can('approve');
    document.getElementById('report-return').hidden = mode !== 'review' || !this.can('return');
    document.getElementById('report-publish').hidden = mode !== 'publish';
    this.enable();
  }

  // Approve and publish wait for the acknowledgement of the warnings; errors refuse them.
  enable() {
    const r = this.report;
    const ready = r && !r.errors.length && (!r.warnings.length || document.getElementById('report-ack').checked);
    for (const id of ['report-approve', 'report-publish']) document.getElementById(id).disabled = !ready;
  }

  acknowledged() {
    return this.report.warnings.length && document.getElementById('report-ack').checked ? this.report.version : null;
  }

  async decide(action) {
    const id = this.ctx.state.plan.id;
    const message = action === 'approve' ? document.getElementById('report-comment').value.trim() : '';
    try {
      const done = await this.api(`/plans/${id}/${action}`, {method: 'POST', body: {acknowledge: this.acknowledged(), message}});
      this.dialog.close();
      await this.reload(id);
      this.listPlans();
      this.toast(action === 'approve' ? t('approved_ok') : t('published_ok', {r: done.revision}));
    } catch (error) {
      if (!error.problem) throw error;
      if (error.problem.report) this.fill(this.mode, error.problem.report, error.status === 409 ? t('report_changed') : '');
      else {
        this.dialog.close();
        this.message(t('failed', {detail: refusalText(error.problem)}));
      }
    }
  }

  async sendBack() {
    const comment = document.getElementById('report-comment').value.trim();
    if (!comment) {
      const verdict = document.getElementById('report-refused');
      verdict.textContent = t('comment_needed');
      verdict.hidden = false;
      document.getElementById('report-comment').focus();
      return;
    }
    const done = await this.guard(() => this.step('return', {comment}));
    this.dialog.close();
    if (done) this.toast(t('returned_ok'));
  }
}

export function refusalText(problem) {
  if (problem.message_zh && language() === 'zh') return problem.message_zh;
  return problem.message_en || problem.detail || problem.title;
}
