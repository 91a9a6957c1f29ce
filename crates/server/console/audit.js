// Strongroom console: the audit log, and inclusion proofs checked in the page.

import { api, hasRole, path, query, session } from '/console/api.js';
import { el, field, pagedList, panel, run, show, status } from '/console/dom.js';

// The entry as its leaf bytes say (the bytes the proof covers), not the server's parsed copy beside
// them; null when the bytes are not an entry at the index they were served for.
function leafEntry(logged) {
  if (!('_leafEntry' in logged)) {
    try {
      const entry = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromBase64(logged.leaf)));
      logged._leafEntry = entry && entry.index === logged.index ? entry : null;
    } catch (_) {
      logged._leafEntry = null;
    }
  }
  return logged._leafEntry || { action: '(unreadable entry)' };
}

function actor(entry) {
  const who = entry.actor || {};
  return [who.user_id, (who.roles || []).join('+')].filter(Boolean).join(' · ');
}

export function accessLogView() {
  const t = session.tenantId;
  const list = pagedList([['#', 'index'], ['When', (r) => leafEntry(r).time], ['Who', (r) => actor(leafEntry(r))],
    ['Action', (r) => leafEntry(r).action], ['Purpose', (r) => leafEntry(r).purpose], ['Grant', (r) => leafEntry(r).grant_id],
    ['Fields disclosed', (r) => (leafEntry(r).fields_disclosed || []).join(', ')],
    ['Decision', (r) => el('span', { class: 'tag ' + leafEntry(r).decision, text: leafEntry(r).decision })], ['Proof', proofButton]],
  (cursor) => api('GET', path`/v1/tenants/${t}/access-log` + query({ limit: 100, cursor })));
  show(el('h1', { text: 'Who touched our data' }),
    panel(null, el('p', { class: 'hint', text: 'Every access to this tenant, from the tamper-evident audit log. "Check" verifies that the entry is in the tree of the server\'s latest checkpoint. It does not check the checkpoint\'s signature or that the log was never rewritten: `strongroom audit verify --url` does.' }), list));
}

export function auditView() {
  const checkpoint = el('pre');
  const key = el('pre');
  run(async () => {
    checkpoint.textContent = await api('GET', path`/v1/audit/checkpoint`, { text: true });
    key.textContent = await api('GET', path`/v1/audit/verifier-key`, { text: true });
  });
  const parts = [el('h1', { text: 'Audit log' }),
    panel('Latest signed checkpoint', checkpoint), panel('Verifier key', key)];
  if (hasRole('auditor', 'security_officer')) {
    const start = el('input', { type: 'number', min: 0, value: 0 });
    const entries = el('div');
    const load = () => entries.replaceChildren(pagedList([['#', 'index'], ['When', (r) => leafEntry(r).time], ['Who', (r) => actor(leafEntry(r))],
      ['Action', (r) => leafEntry(r).action], ['Tenant', (r) => leafEntry(r).tenant_id], ['Decision', (r) => leafEntry(r).decision],
      ['Reason', (r) => leafEntry(r).reason], ['Proof', proofButton]],
    (cursor) => api('GET', path`/v1/audit/entries` + query({ start: cursor || start.value || 0, limit: 100 }))));
    parts.push(panel('Entries', el('form', { class: 'inline', onsubmit: load }, field('From index', start), el('button', { type: 'submit', text: 'Show' })), entries));
    load();
  }
  show(parts);
}

const RESOLUTIONS = ['contained', 'false_positive', 'authorised_activity'];

// Incidents the breach watch raised: all of them for security officers and auditors (officers
// close them), this tenant's for its admins.
export function incidentsView() {
  const own = hasRole('tenant_admin') && !hasRole('security_officer', 'auditor');
  const state = el('select', {}, [['open', 'Open'], ['closed', 'Closed'], ['', 'All']]
    .map(([value, text]) => el('option', { value, text })));
  const list = el('div');
  const columns = [['Opened', 'opened_at'], ['Kind', 'kind'], ['Tenant', 'tenant_id'], ['Account', 'subject_id'],
    ['Events', 'events'], ['Log entries', (r) => `${r.first_index}–${r.last_index}`], ['State', (r) => el('span', { class: 'tag', text: r.state })],
    ['Resolution', (r) => r.resolution || closeControl(r, load)]];
  const load = () => list.replaceChildren(pagedList(columns, (cursor) => api('GET',
    (own ? path`/v1/tenants/${session.tenantId}/incidents` : path`/v1/incidents`) + query({ state: state.value || undefined, limit: 100, cursor }))));
  state.addEventListener('change', load);
  show(el('h1', { text: own ? 'Incidents about us' : 'Incidents' }),
    panel(null, el('p', { class: 'hint', text: 'Patterns in the audit log that a breach leaves behind: mass reads, staff refused for want of a grant, failed logins, entries that no longer match the log. The log entries named are the evidence; each has its inclusion proof in the audit log.' }),
      el('form', { class: 'inline', onsubmit: load }, field('Show', state)), list));
  load();
}

function closeControl(incident, reload) {
  if (incident.state !== 'open' || !hasRole('security_officer')) return '';
  const resolution = el('select', {}, RESOLUTIONS.map((r) => el('option', { value: r, text: r })));
  const close = () => run(async () => {
    await api('POST', path`/v1/incidents/${incident.id}/close`, { body: { resolution: resolution.value } });
    status('Incident closed; the tenant it concerns is notified.');
    reload();
  });
  return el('span', {}, resolution, el('button', { class: 'quiet', text: 'Close', onclick: close }));
}

function proofButton(logged) {
  const holder = el('span');
  const check = () => run(async () => {
    const verdict = await checkInclusion(logged);
    holder.replaceChildren(el('span', { class: 'tag ' + (verdict.ok ? 'verified' : 'failed'), text: verdict.text }));
  });
  holder.append(el('button', { class: 'quiet', text: 'Check', onclick: check }));
  return holder;
}

// RFC 9162 §2.1.3.2: checks that the entry's exact bytes are at its index in the tree whose root
// the server's latest checkpoint names (a C2SP note: origin, size, base64 root, then signatures).
async function checkInclusion(logged) {
  leafEntry(logged);
  if (!logged._leafEntry) return { ok: false, text: 'leaf is not this entry' };
  const lines = (await api('GET', path`/v1/audit/checkpoint`, { text: true })).split('\n');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(lines[1] || '') || !/^[A-Za-z0-9+/]{43}=$/.test(lines[2] || '')) {
    return { ok: false, text: 'checkpoint unreadable' };
  }
  const size = Number(lines[1]);
  const root = fromBase64(lines[2]);
  if (logged.index >= size) return { ok: false, text: 'not in a checkpoint yet: check again in a second' };
  const proof = await api('GET', path`/v1/audit/proofs/inclusion` + query({ index: logged.index, tree_size: size }));
  let hash = await sha256(concat([0], fromBase64(logged.leaf)));
  let fn = logged.index;
  let sn = size - 1;
  for (const encoded of proof.hashes) {
    const sibling = fromBase64(encoded);
    if (sn === 0 || sibling.length !== 32) return { ok: false, text: 'proof failed' };
    if (fn % 2 === 1 || fn === sn) {
      hash = await sha256(concat([1], sibling, hash));
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      hash = await sha256(concat([1], hash, sibling));
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  const ok = sn === 0 && equal(hash, root);
  return { ok, text: ok ? `in the checkpoint of ${size}` : 'proof failed' };
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

function concat(...parts) {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : new Uint8Array(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) { out.set(a, at); at += a.length; }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function fromBase64(text) {
  const binary = atob(text || '');
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
