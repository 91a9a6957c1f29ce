// Strongroom console: cases, contacts and operator access (the customer lockbox), in one tenant
// and for one stated purpose.

import { CUSTOMER_ROLES, FIELD_CLASSES, OPERATOR_ROLES, api, isReference, hasRole, path, purposesOfCaller, query, session } from '/console/api.js';
import { el, field, pagedList, panel, recordTable, run, show, status } from '/console/dom.js';

// The tenant and the purpose that content requests state. Customers work in their own tenant;
// staff name the tenant of the case they work on.
export function scopeBar(reload) {
  const customer = hasRole(...CUSTOMER_ROLES);
  const tenant = el('input', { value: session.tenantId, placeholder: 'tenant id', size: 30, readonly: customer });
  const purpose = el('select', {}, purposesOfCaller().map((p) => el('option', { value: p, text: p, selected: p === session.purpose })));
  const reference = el('input', { value: session.justification, placeholder: 'case or ticket reference', size: 22 });
  const apply = () => {
    const ref = reference.value.trim();
    if (ref && !isReference(ref)) {
      status('A justification is a reference: 3–64 letters, digits or -._:/ with a digit among them (a case or ticket number), never free text or a phone, card or account number.', true);
      return;
    }
    session.purpose = purpose.value;
    session.justification = ref;
    enterTenant(tenant.value.trim(), reload);
    reload();
  };
  return panel(null, el('form', { class: 'inline', onsubmit: apply },
    field('Tenant', tenant), field('Purpose of this access', purpose),
    field('Justification (optional)', reference), el('button', { type: 'submit', text: 'Apply' })));
}

// Work moves to another tenant (or stays in the same one). Moving, the view is replaced: answers
// still on their way for the tenant left are dropped, and nothing it showed stays on the page, so
// no form of one tenant is left to act under another's name (the view to open then follows).
function enterTenant(tenantId, reload) {
  session.view += 1;
  if (tenantId === session.tenantId) return;
  session.tenantId = tenantId;
  show(scopeBar(reload));
}

export function needTenant(title, reload) {
  if (session.tenantId) return false;
  show(el('h1', { text: title }), scopeBar(reload),
    panel(null, el('p', { class: 'hint', text: 'Name the tenant whose cases you work on, or open one of your cases below.' })),
    hasRole(...OPERATOR_ROLES) ? reachPanel() : null);
  return true;
}

// The cases the caller reaches in every tenant (assigned, granted or asked for): opening one
// works in its tenant.
function reachPanel() {
  const list = pagedList([['Tenant', 'tenant_id'], ['Case', 'case_id'], ['Through', (r) => r.reach.replace('_', ' ')], ['Until', 'until']],
    (cursor) => api('GET', path`/v1/me/cases` + query({ limit: 100, cursor })),
    (r) => { enterTenant(r.tenant_id, () => caseView(r.case_id)); caseView(r.case_id); });
  return panel('Your cases, in every tenant', list);
}

export function casesView() {
  session.view += 1;
  if (needTenant('Cases', casesView)) return;
  const t = session.tenantId;
  const columns = [['Title', 'title'], ['Status', 'status'], ['Severity', 'severity'], ['Product', 'product'], ['Updated', 'updated_at'], ['Id', 'id']];
  const list = pagedList(columns,
    (cursor) => api('GET', path`/v1/tenants/${t}/cases` + query({ limit: 50, cursor }), { content: true }),
    (item) => caseView(item.id));
  const customer = hasRole(...CUSTOMER_ROLES);
  show(el('h1', { text: 'Cases' }), scopeBar(casesView), hasRole(...OPERATOR_ROLES) ? reachPanel() : null, panel(null, list),
    customer ? newCasePanel(t) : null, customer ? contactsPanel(t) : null);
}

const SEVERITIES = ['low', 'medium', 'high', 'critical'];
const CASE_STATUSES = ['open', 'pending', 'resolved', 'closed'];

// Customers open cases themselves (staff work on the cases assigned to them).
function newCasePanel(t) {
  const title = el('input', { required: true, size: 60 });
  const description = el('textarea', {});
  const severity = el('select', {}, SEVERITIES.map((s) => el('option', { value: s, text: s, selected: s === 'medium' })));
  const product = el('input', {});
  const contact = el('input', { placeholder: 'contact id (optional)', size: 30 });
  const submit = () => run(async () => {
    const body = { title: title.value.trim(), severity: severity.value };
    if (description.value.trim()) body.description = description.value;
    if (product.value.trim()) body.product = product.value.trim();
    if (contact.value.trim()) body.contact_id = contact.value.trim();
    const made = await api('POST', path`/v1/tenants/${t}/cases`, { body, content: true });
    caseView(made.id);
    return 'Case opened.';
  });
  return panel('New case', el('form', { onsubmit: submit }, field('Title', title), field('Description', description),
    field('Severity', severity), field('Product', product), field('Contact', contact), el('button', { type: 'submit', text: 'Open case' })));
}

function contactsPanel(t) {
  const list = pagedList([['Name', 'name'], ['Email', 'email'], ['Phone', 'phone'], ['Id', 'id']],
    (cursor) => api('GET', path`/v1/tenants/${t}/contacts` + query({ limit: 50, cursor }), { content: true }),
    (item) => contactView(item.id, null));
  const inputs = ['name', 'email', 'phone', 'address', 'notes'].map((f) => [f, f === 'notes' ? el('textarea', {}) : el('input', { size: 40, required: f === 'name' })]);
  const submit = () => run(async () => {
    const body = Object.fromEntries(inputs.filter(([, input]) => input.value.trim()).map(([f, input]) => [f, input.value.trim()]));
    const made = await api('POST', path`/v1/tenants/${t}/contacts`, { body, content: true });
    contactView(made.id, null);
    return 'Contact added.';
  });
  return panel('Contacts', list, el('h2', { text: 'New contact' }),
    el('form', { onsubmit: submit }, inputs.map(([f, input]) => field(f, input)), el('button', { type: 'submit', text: 'Add contact' })));
}

// The case's status, for those who may update it (the server decides).
function statusPanel(t, caseId, current) {
  const select = el('select', {}, CASE_STATUSES.map((s) => el('option', { value: s, text: s, selected: s === current })));
  const submit = () => run(async () => {
    await api('PATCH', path`/v1/tenants/${t}/cases/${caseId}`, { body: { status: select.value }, content: true });
    caseView(caseId);
    return `Status set to ${select.value}.`;
  });
  return panel('Status', el('form', { class: 'inline', onsubmit: submit }, field('Status', select), el('button', { type: 'submit', text: 'Set status' })));
}

// A view of one record replaces the page only once its answer is in, and not at all if the work
// has moved to another tenant meanwhile (its forms would act on the tenant left).
function caseView(caseId) {
  session.view += 1;
  const t = session.tenantId;
  run(async () => {
    const record = await api('GET', path`/v1/tenants/${t}/cases/${caseId}`, { content: true });
    if (t !== session.tenantId) return;
    const parts = [el('h1', { text: 'Case' }), scopeBar(() => caseView(caseId)), panel('Record', recordTable(record))];
    if (record.contact_id) {
      parts.push(panel(null, el('button', { class: 'quiet', text: 'Open the case contact', onclick: () => contactView(record.contact_id, caseId) })));
    }
    // Customers update their cases; staff only with the case content in clear (an assignment
    // where no approval is needed, or a grant), and never the supervisor's triage view.
    const contentInClear = !((record._access || {}).withheld || []).includes('title')
      && !((record._access || {}).masked || []).includes('title');
    if (hasRole(...CUSTOMER_ROLES) || (hasRole('support_engineer', 'security_officer') && contentInClear)) {
      parts.push(statusPanel(t, caseId, record.status));
    }
    // Comments and files are case content: staff who see the case's metadata only (a supervisor's
    // triage, an assignment under the lockbox) would only meet refusals there.
    if (hasRole(...CUSTOMER_ROLES) || contentInClear) {
      parts.push(commentsPanel(t, caseId));
      parts.push(filesPanel(t, caseId));
    }
    if (hasRole(...OPERATOR_ROLES)) parts.push(requestAccessPanel(t, caseId));
    if (hasRole('support_supervisor')) parts.push(assignPanel(t, caseId));
    parts.push(panel(null, el('button', { class: 'quiet', text: 'Back to cases', onclick: casesView })));
    show(parts);
  });
}

function commentsPanel(t, caseId) {
  const body = el('textarea', { required: true });
  const add = () => run(async () => {
    await api('POST', path`/v1/tenants/${t}/cases/${caseId}/comments`, { body: { body: body.value }, content: true });
    caseView(caseId);
    return 'Comment added.';
  });
  const list = pagedList([['When', 'created_at'], ['By', 'author_id'], ['Comment', 'body']],
    (cursor) => api('GET', path`/v1/tenants/${t}/cases/${caseId}/comments` + query({ limit: 100, cursor }), { content: true }));
  return panel('Comments', list, el('form', { onsubmit: add }, field('New comment', body), el('button', { type: 'submit', text: 'Add comment' })));
}

// Files go up as base64 in JSON, like every body; the server scans each one before storing it
// and again before handing it back. A download is saved under the name the record holds.
function filesPanel(t, caseId) {
  const files = path`/v1/tenants/${t}/cases/${caseId}/attachments`;
  const picker = el('input', { type: 'file', required: true });
  const upload = () => run(async () => {
    const file = picker.files[0];
    if (!file) return 'Choose a file first.';
    const content = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    const body = { name: file.name, content };
    if (/^[A-Za-z0-9][\w!#$&^.+-]*\/[A-Za-z0-9][\w!#$&^.+-]*$/.test(file.type)) body.media_type = file.type;
    await api('POST', files, { body, content: true });
    caseView(caseId);
    return `${file.name} scanned and attached.`;
  });
  const download = (item) => run(async () => {
    const blob = await api('GET', path`/v1/tenants/${t}/cases/${caseId}/attachments/${item.id}/content`, { content: true, binary: true });
    const url = URL.createObjectURL(blob);
    const link = el('a', { href: url, download: typeof item.name === 'string' ? item.name : `file-${item.id}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    return `Downloaded (${blob.size} bytes, scanned again before it left).`;
  });
  // Removing a file is the data owner's call: its tenant's admin, as a contact's deletion.
  const remove = (event, item) => {
    event.stopPropagation();
    const what = typeof item.name === 'string' ? item.name : `file ${item.id}`;
    if (!window.confirm(`Delete ${what} from this case? It cannot be downloaded again.`)) return undefined;
    return run(async () => {
      await api('DELETE', path`/v1/tenants/${t}/cases/${caseId}/attachments/${item.id}`, { content: true });
      caseView(caseId);
      return `${what} deleted.`;
    });
  };
  const columns = [['When', 'created_at'], ['By', 'uploaded_by'], ['Name', 'name'], ['Type', 'media_type'], ['Bytes', 'size']];
  if (hasRole('tenant_admin')) {
    columns.push(['', (item) => el('button', { class: 'danger', text: 'Delete', onclick: (event) => remove(event, item) })]);
  }
  const list = pagedList(columns,
    (cursor) => api('GET', files + query({ limit: 100, cursor }), { content: true }), download);
  return panel('Files', el('p', { class: 'hint', text: 'Select a file to download it.' }), list,
    el('form', { onsubmit: upload }, field('New file', picker), el('button', { type: 'submit', text: 'Upload' })));
}

function requestAccessPanel(t, caseId) {
  const purpose = el('select', {}, purposesOfCaller().map((p) => el('option', { value: p, text: p, selected: p === session.purpose })));
  const classes = FIELD_CLASSES.map((c) => [c, el('input', { type: 'checkbox', value: c, checked: c === 'case_content' })]);
  const minutes = el('input', { type: 'number', min: 1, placeholder: "the tenant's default" });
  // One line: the server refuses control characters (new lines too) in a justification.
  const justification = el('input', { required: true, maxlength: 500, size: 60, placeholder: 'Why you need this access; the tenant reads it before deciding.' });
  const submit = () => run(async () => {
    const request = {
      case_id: caseId,
      purpose: purpose.value,
      justification: justification.value.trim(),
      field_classes: classes.filter(([, box]) => box.checked).map(([c]) => c),
    };
    if (minutes.value) request.duration_minutes = Number(minutes.value);
    const filed = await api('POST', path`/v1/tenants/${t}/access-requests`, { body: request });
    return `Access request ${filed.id} is ${filed.state}.`;
  });
  return panel('Request operator access',
    el('p', { class: 'hint', text: 'When the tenant requires approval, an assignment shows only the case metadata; its content and contact need a grant the tenant approves.' }),
    el('form', { onsubmit: submit }, field('Purpose', purpose),
      el('div', { class: 'row' }, classes.map(([c, box]) => el('label', { class: 'row' }, box, c))),
      field('Duration in minutes (optional)', minutes), field('Justification', justification),
      el('button', { type: 'submit', text: 'Send request' })));
}

// The active staff who can take cases, with the open cases each holds (the first 500 by id).
function assignPanel(t, caseId) {
  const assignee = el('select', { required: true }, el('option', { value: '', text: 'Loading…' }));
  run(async () => {
    const page = await api('GET', path`/v1/assignees` + query({ limit: 500 }));
    assignee.replaceChildren(el('option', { value: '', text: 'Choose a person' }),
      ...page.items.map((a) => el('option', { value: a.id, text: `${a.display_name} (${a.username}, ${a.roles.join('+')}): ${a.open_cases} open cases` })));
  });
  const submit = () => run(async () => {
    await api('POST', path`/v1/tenants/${t}/cases/${caseId}/assign`, { body: { user_id: assignee.value }, content: true });
    caseView(caseId);
    return 'Case assigned.';
  });
  return panel('Assign', el('form', { class: 'inline', onsubmit: submit }, field('Assignee', assignee), el('button', { type: 'submit', text: 'Assign' })));
}

function contactView(contactId, fromCase) {
  session.view += 1;
  const t = session.tenantId;
  run(async () => {
    const record = await api('GET', path`/v1/tenants/${t}/contacts/${contactId}`, { content: true });
    if (t !== session.tenantId) return;
    show(el('h1', { text: 'Contact' }), scopeBar(() => contactView(contactId, fromCase)),
      panel('Record', recordTable(record)),
      panel(null, fromCase
        ? el('button', { class: 'quiet', text: 'Back to the case', onclick: () => caseView(fromCase) })
        : el('button', { class: 'quiet', text: 'Back to cases', onclick: casesView })));
  });
}

// ---- operator access (the customer lockbox) ------------------------------------------------------

export function accessView(state) {
  session.view += 1;
  if (needTenant('Operator access', () => accessView(state))) return;
  const t = session.tenantId;
  const filter = el('select', { onchange: () => accessView(filter.value) },
    ['pending', 'approved', 'denied', 'expired', 'revoked'].map((s) => el('option', { value: s, text: s, selected: s === state })));
  const requests = pagedList([
    ['Requested', 'created_at'], ['Requester', (r) => requester(r.requester)], ['Case', 'case_id'], ['Purpose', 'purpose'],
    ['Classes', (r) => r.field_classes.join(', ')], ['Minutes', 'duration_minutes'],
    ['Justification', 'justification'], ['', (r) => accessActions(t, r)],
  ], (cursor) => api('GET', path`/v1/tenants/${t}/access-requests` + query({ state, limit: 100, cursor })));
  const grants = pagedList([
    ['Grant', 'id'], ['Requester', (r) => requester(r.requester)], ['Case', 'case_id'], ['Classes', (r) => r.field_classes.join(', ')],
    ['Ends', 'ends_at'], ['', (r) => accessActions(t, r)],
  ], (cursor) => api('GET', path`/v1/tenants/${t}/grants` + query({ limit: 100, cursor })));
  show(el('h1', { text: 'Operator access' }), scopeBar(() => accessView(state)),
    panel('Requests', el('div', { class: 'row' }, field('State', filter)), requests),
    panel('Active grants', grants));
}

function requester(who) {
  return [who.username || who.id, (who.roles || []).join('+')].filter(Boolean).join(' · ');
}

function accessActions(t, request) {
  const box = el('div', { class: 'row' });
  const decide = (verb) => () => {
    const comment = el('input', { placeholder: 'comment (optional)', maxlength: 500 });
    const send = () => run(async () => {
      const body = comment.value.trim() ? { comment: comment.value.trim() } : {};
      if (verb === 'approve') await api('POST', path`/v1/tenants/${t}/access-requests/${request.id}/approve`, { body });
      else await api('POST', path`/v1/tenants/${t}/access-requests/${request.id}/deny`, { body });
      accessView(verb === 'approve' ? 'approved' : 'denied');
      return `Request ${verb === 'approve' ? 'approved' : 'denied'}.`;
    });
    box.replaceChildren(el('form', { class: 'inline', onsubmit: send }, comment,
      el('button', { type: 'submit', class: verb === 'deny' ? 'danger' : null, text: verb === 'approve' ? 'Approve' : 'Deny' })));
  };
  const revoke = () => run(async () => {
    await api('POST', path`/v1/tenants/${t}/access-requests/${request.id}/revoke`);
    accessView('revoked');
    return 'Grant revoked.';
  });
  const ownRequest = request.requester && request.requester.id === session.user.id;
  if (request.state === 'pending' && hasRole('tenant_admin') && !ownRequest) {
    box.append(el('button', { text: 'Approve…', onclick: decide('approve') }), el('button', { class: 'danger', text: 'Deny…', onclick: decide('deny') }));
  }
  if (request.state === 'approved' && (hasRole('tenant_admin') || ownRequest)) {
    box.append(el('button', { class: 'danger', text: 'Revoke', onclick: revoke }));
  }
  return box;
}
