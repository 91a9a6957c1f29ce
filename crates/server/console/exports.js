// Strongroom console: exports, limited and encrypted to a recipient the requester names, approved
// by a second person above the threshold, downloaded as the age file the server sealed.

import { api, hasRole, path, query, session } from '/console/api.js';
import { checkboxGroup, checkboxes, el, field, pagedList, panel, run, show } from '/console/dom.js';
import { needTenant, scopeBar } from '/console/cases.js';

// The record kinds the server exports (its EXPORT_RECORD_KINDS). Attachments are offered but not
// ticked at first, so the default export stays what it was.
const RECORD_KINDS = ['contacts', 'cases', 'comments', 'attachments'];

export function exportsView() {
  session.view += 1;
  if (needTenant('Exports', exportsView)) return;
  const t = session.tenantId;
  const list = pagedList([
    ['Created', 'created_at'], ['Kind', 'kind'], ['Records', 'record_count'], ['State', 'state'],
    ['Until', 'expires_at'], ['By', (x) => requester(x)], ['', (x) => exportActions(t, x)],
  ], (cursor) => api('GET', path`/v1/tenants/${t}/exports` + query({ limit: 50, cursor })));
  show(el('h1', { text: 'Exports' }), scopeBar(exportsView), newExportPanel(t), panel('Exports', list));
}

function newExportPanel(t) {
  const archive = el('input', { type: 'checkbox' });
  const kinds = checkboxes(RECORD_KINDS, RECORD_KINDS.filter((k) => k !== 'attachments'));
  const recipient = el('input', { required: true, size: 70, placeholder: 'age1…', pattern: 'age1[0-9a-z]+' });
  const submit = () => run(async () => {
    const scope = archive.checked
      ? { kind: 'tenant_archive' }
      : { kind: 'records', record_kinds: kinds.filter(([, box]) => box.checked).map(([k]) => k) };
    const made = await api('POST', path`/v1/tenants/${t}/exports`, { body: { scope, recipient: recipient.value.trim() }, content: true });
    exportsView();
    return made.state === 'pending_approval'
      ? `Export ${made.id} of ${made.record_count} records waits for a second person's approval.`
      : `Export ${made.id} of ${made.record_count} records is ready to download.`;
  });
  return panel('New export', el('p', { class: 'hint', text: 'Encrypted to the age recipient you name: only its identity opens the file. Every field is exported as you may see it (masked or withheld alike), within your daily quota.' }),
    el('form', { onsubmit: submit }, checkboxGroup('Records', kinds),
      hasRole('tenant_admin') ? el('label', { class: 'row' }, archive, 'everything of the tenant (return of data)') : null,
      field('Recipient (age public key)', recipient), el('button', { type: 'submit', text: 'Export' })));
}

function requester(x) {
  return ((x.manifest || {}).requested_by || {}).user_id;
}

function exportActions(t, x) {
  const box = el('div', { class: 'row' });
  const mine = requester(x) === session.user.id;
  if (x.state === 'pending_approval' && !mine && hasRole('support_supervisor', 'tenant_admin')) {
    box.append(el('button', { text: 'Approve', onclick: () => run(async () => {
      await api('POST', path`/v1/tenants/${t}/exports/${x.id}/approve`);
      exportsView();
      return 'Export approved.';
    }) }));
  }
  if (x.state === 'ready' && mine && Date.parse(x.expires_at) > Date.now()) {
    box.append(el('button', { class: 'quiet', text: 'Download', onclick: () => run(async () => {
      const file = await api('GET', path`/v1/tenants/${t}/exports/${x.id}/download`, {
        binary: true, content: true, purpose: x.manifest && x.manifest.purpose,
      });
      const url = URL.createObjectURL(file);
      const link = el('a', { href: url, download: `export-${x.id}.age` });
      document.body.append(link);
      link.click();
      link.remove();
      // Some browsers start the download after the click returns: let it go later.
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      return `Downloaded export-${x.id}.age (${file.size} bytes): open it with your age identity.`;
    }) }));
  }
  return box;
}
