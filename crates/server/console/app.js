// Strongroom console: a client of the v1 API and nothing more. Every decision (who may see which
// field, for which purpose, under which grant) is the server's; the page shows what it is given
// and offers only what the caller's roles can use.
//
// Rules this file keeps, checked by the server crate's tests:
// - the DOM is built from elements and text nodes only (no markup from strings), so a value in a
//   record can never become markup or script;
// - the session token lives in this page's memory only: not in storage, not in cookies, gone on
//   reload;
// - every API path is written as a `path` template, which encodes what it interpolates.
'use strict';

// The purposes each role may state for tenant content (the server's guardrail
// `purpose_not_for_role` decides; this only keeps the choice to what can succeed).
const PURPOSES_BY_ROLE = {
  tenant_admin: ['customer-self-service', 'data-subject-request', 'account-management', 'legal-compliance'],
  tenant_user: ['customer-self-service'],
  support_engineer: ['case-resolution'],
  support_supervisor: ['case-resolution'],
  security_officer: ['security-investigation', 'legal-compliance'],
};
const CONTENT_ROLES = Object.keys(PURPOSES_BY_ROLE);
const OPERATOR_ROLES = ['support_engineer', 'support_supervisor', 'security_officer'];
const CUSTOMER_ROLES = ['tenant_admin', 'tenant_user'];
const FIELD_CLASSES = ['case_content', 'contact_identity', 'contact_detail', 'sensitive'];
const REFERENCE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{2,63}$/;

const session = {
  token: null,
  user: null,
  enrolling: false,
  // Bumped at every sign-in and sign-out: an answer to an earlier session's request is dropped.
  generation: 0,
  tenantId: '',
  purpose: '',
  justification: '',
};

// ---- building the page ------------------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'onclick') node.addEventListener('click', value);
    else if (key === 'onsubmit') {
      node.addEventListener('submit', (event) => { event.preventDefault(); value(event); });
    } else if (key === 'onchange') node.addEventListener('change', value);
    else if (key.startsWith('on')) throw new Error('unsupported handler ' + key);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function field(label, input) {
  return el('label', {}, label, input);
}

function panel(title, ...children) {
  return el('section', { class: 'panel' }, title ? el('h2', { text: title }) : null, ...children);
}

function show(...children) {
  document.getElementById('main').replaceChildren(...children.flat());
}

function status(message, isError) {
  const footer = document.getElementById('status');
  footer.textContent = message || '';
  footer.className = isError ? 'error' : '';
}

function describeFailure(failure) {
  if (!(failure instanceof ApiFailure)) return String((failure && failure.message) || failure);
  const id = failure.requestId ? ` (request ${failure.requestId})` : '';
  return `${failure.status} ${failure.code}: ${failure.message}${id}`;
}

// Runs one step of a view. The step may return a message for the status line; a failure ends up
// there instead, and the answers that need the user to act first (sign in again, acknowledge the
// agreement, enrol a second factor) lead there.
const WORKING = 'Working…';

async function run(action) {
  status(WORKING);
  try {
    const message = await action();
    // A message another step left meanwhile (e.g. "Request approved." while the list reloads)
    // stays; only this step's own "Working…" is cleared.
    if (message) status(message);
    else if (document.getElementById('status').textContent === WORKING) status('');
  } catch (failure) {
    if (failure instanceof StaleAnswer) return;
    if (failure instanceof ApiFailure) {
      if (failure.code === 'unauthenticated' || failure.code === 'account_suspended') {
        signedOut(failure.code === 'account_suspended'
          ? 'This account is suspended.' : 'Your session has ended. Sign in again.');
        return;
      }
      if (failure.code === 'confidentiality_acknowledgement_required') { agreementView(); return; }
      if (failure.code === 'mfa_enrolment_required') { enrolmentView(); return; }
    }
    status(describeFailure(failure), true);
  }
}

// ---- the API ---------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, body, requestId) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'http_' + status;
    this.requestId = error.request_id || requestId || '';
    this.retryAfter = null;
  }
}

class StaleAnswer extends Error {}

// Tagged template for API paths: interpolated ids are percent-encoded, never trusted as paths.
function path(strings, ...values) {
  return strings.reduce((out, piece, i) =>
    out + piece + (i < values.length ? encodeURIComponent(String(values[i])) : ''), '');
}

function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return pairs.length ? '?' + new URLSearchParams(pairs).toString() : '';
}

// Sends one request. `content` marks a read or write of tenant content, which states the chosen
// purpose (and justification); other calls state none, so the audit log records none.
async function api(method, url, options) {
  const { body, content, text } = options || {};
  const generation = session.generation;
  const headers = { Accept: text ? 'text/plain' : 'application/json' };
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (content) {
    if (session.purpose) headers['Access-Purpose'] = session.purpose;
    if (session.justification) headers['Access-Justification'] = session.justification;
  }
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    redirect: 'error',
  });
  if (generation !== session.generation) throw new StaleAnswer();
  if (response.status === 204) return null;
  if (text && response.ok) return response.text();
  let parsed = null;
  try { parsed = await response.json(); } catch (_) { parsed = null; }
  if (generation !== session.generation) throw new StaleAnswer();
  if (!response.ok) {
    const failure = new ApiFailure(response.status, parsed, response.headers.get('Request-Id'));
    failure.retryAfter = response.headers.get('Retry-After');
    throw failure;
  }
  return parsed;
}

function hasRole(...roles) {
  return Boolean(session.user) && session.user.roles.some((r) => roles.includes(r));
}

function purposesOfCaller() {
  const mine = new Set(session.user.roles.flatMap((r) => PURPOSES_BY_ROLE[r] || []));
  return Object.values(PURPOSES_BY_ROLE).flat().filter((p, i, all) => mine.has(p) && all.indexOf(p) === i);
}

// ---- records and lists -------------------------------------------------------------------------

// A record as the API returns it, with what the caller may not see in clear said as such.
function recordTable(record) {
  const access = record._access || { masked: [], withheld: [] };
  const rows = [];
  for (const [name, value] of Object.entries(record)) {
    if (name === '_access') continue;
    const masked = (access.masked || []).includes(name);
    rows.push(el('tr', {},
      el('th', { text: name }),
      el('td', {}, el('span', { class: masked ? 'masked' : 'mono', text: display(value) }),
        masked ? el('span', { class: 'tag', text: 'masked' }) : null)));
  }
  for (const name of access.withheld || []) {
    rows.push(el('tr', {}, el('th', { text: name }),
      el('td', {}, el('span', { class: 'withheld', text: '—' }), el('span', { class: 'tag', text: 'withheld' }))));
  }
  return el('table', {}, el('tbody', {}, rows));
}

function display(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function listTable(columns, items, onOpen) {
  const head = el('tr', {}, columns.map(([label]) => el('th', { text: label })));
  const rows = items.map((item) => {
    const withheld = (item._access && item._access.withheld) || [];
    const masked = (item._access && item._access.masked) || [];
    const cells = columns.map(([, key]) => {
      const value = typeof key === 'function' ? key(item) : item[key];
      if (value instanceof Node) return el('td', {}, value);
      if (withheld.includes(key)) return el('td', { class: 'withheld', text: '—' });
      return el('td', { class: masked.includes(key) ? 'masked' : null, text: display(value) });
    });
    return el('tr', { class: onOpen ? 'link' : null, onclick: onOpen ? () => onOpen(item) : null }, cells);
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: columns.length, class: 'hint', text: 'Nothing here.' })));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, rows));
}

// A list the API pages with `next_cursor`: "More" fetches the next page into the same table.
function pagedList(columns, fetchPage, onOpen) {
  const holder = el('div');
  const items = [];
  const more = el('button', { class: 'quiet', text: 'More', hidden: true });
  let cursor = null;
  const load = () => {
    more.disabled = true;
    return run(async () => {
      try {
        const page = await fetchPage(cursor);
        items.push(...page.items);
        cursor = page.next_cursor;
        holder.replaceChildren(listTable(columns, items, onOpen));
        more.hidden = !cursor;
      } finally {
        more.disabled = false;
      }
    });
  };
  more.addEventListener('click', load);
  load();
  return el('div', {}, holder, more);
}

// ---- signing in ----------------------------------------------------------------------------------

function signedOut(message) {
  Object.assign(session, {
    token: null, user: null, enrolling: false, generation: session.generation + 1,
    tenantId: '', purpose: '', justification: '',
  });
  renderBar();
  const username = el('input', { name: 'username', autocomplete: 'username', required: true });
  const password = el('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const totp = el('input', { name: 'totp', autocomplete: 'one-time-code', placeholder: 'if your account has one' });
  const submit = async () => {
    const credentials = { username: username.value, password: password.value };
    if (totp.value.trim()) credentials.totp = totp.value.trim();
    try {
      const answer = await api('POST', path`/v1/auth/login`, { body: credentials });
      password.value = '';
      totp.value = '';
      signedIn(answer);
    } catch (failure) {
      if (failure.code === 'mfa_required') { totp.focus(); status('Enter the code from your authenticator app.', true); return; }
      if (failure.code === 'too_many_attempts' && failure.retryAfter) {
        status(`Too many attempts: try again in ${failure.retryAfter} s.`, true);
        return;
      }
      status(describeFailure(failure), true);
    }
  };
  show(panel('Sign in',
    el('form', { onsubmit: submit },
      field('Username', username), field('Password', password),
      field('Second factor (authenticator code or recovery code)', totp),
      el('button', { type: 'submit', text: 'Sign in' }))));
  status(message || '', Boolean(message) && message !== 'Signed out.');
  username.focus();
}

function signedIn(answer) {
  Object.assign(session, {
    token: answer.token,
    user: answer.user,
    enrolling: Boolean(answer.mfa_enrolment_required),
    generation: session.generation + 1,
    tenantId: answer.user.tenant_id || '',
    purpose: '',
    justification: '',
  });
  session.purpose = purposesOfCaller()[0] || '';
  status('');
  if (session.enrolling) enrolmentView(); else landingView();
}

async function signOut() {
  try { await api('POST', path`/v1/auth/logout`); } catch (_) { /* the token is dropped either way */ }
  signedOut('Signed out.');
}

function enrolmentView() {
  session.enrolling = true;
  renderBar();
  const code = el('input', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', required: true });
  const details = el('div');
  const confirm = () => run(async () => {
    const answer = await api('POST', path`/v1/me/mfa/totp/confirm`, { body: { code: code.value.trim() } });
    session.enrolling = false;
    renderBar();
    show(panel('Recovery codes',
      el('p', { text: 'Each code signs you in once if you lose your authenticator. They are shown only now: keep them somewhere safe.' }),
      el('pre', { text: answer.recovery_codes.join('\n') }),
      el('button', { text: 'Continue', onclick: landingView })));
  });
  const start = () => run(async () => {
    const enrolment = await api('POST', path`/v1/me/mfa/totp`);
    details.replaceChildren(
      enrolment.qr_svg ? el('img', { class: 'qr', alt: 'QR code for your authenticator app', src: 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(enrolment.qr_svg) }) : null,
      el('p', { class: 'hint', text: 'Or enter this secret by hand:' }),
      el('pre', { text: enrolment.secret }),
      el('form', { onsubmit: confirm }, field('Code shown by the app', code), el('button', { type: 'submit', text: 'Confirm' })));
    code.focus();
  });
  show(panel('Second factor required',
    el('p', { text: 'Your account must have a second factor before it can do anything else. Enrol an authenticator app (TOTP).' }),
    el('button', { text: 'Start enrolment', onclick: start }), details));
}

function agreementView() {
  run(async () => {
    const agreement = await api('GET', path`/v1/confidentiality`);
    const accept = () => run(async () => {
      await api('POST', path`/v1/me/confidentiality`, { body: { version: agreement.version } });
      landingView();
      return 'Agreement acknowledged.';
    });
    show(panel(`Confidentiality agreement (version ${agreement.version})`,
      el('pre', { text: agreement.text }),
      el('p', { class: 'hint', text: 'Staff must acknowledge the current agreement before any access to customer data.' }),
      el('button', { text: 'I acknowledge this agreement', onclick: accept })));
  });
}

// ---- navigation ---------------------------------------------------------------------------------

// The views, in the order of the bar, each offered only to roles it can serve.
const VIEWS = [
  ['Cases', () => casesView(), () => hasRole(...CONTENT_ROLES)],
  ['Operator access', () => accessView('pending'), () => hasRole('tenant_admin', ...OPERATOR_ROLES)],
  ['Access log', () => accessLogView(), () => hasRole('tenant_admin')],
  ['Audit log', () => auditView(), () => true],
  ['Account', () => accountView(), () => true],
];

function landingView() {
  const [, open] = VIEWS.find(([, , visible]) => visible());
  open();
}

function renderBar(current) {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!session.user || session.enrolling) {
    nav.replaceChildren();
    who.replaceChildren(session.user ? el('button', { class: 'quiet', text: 'Sign out', onclick: signOut }) : '');
    return;
  }
  nav.replaceChildren(...VIEWS.filter(([, , visible]) => visible()).map(([label, open]) =>
    el('button', { class: label === current ? 'current' : null, text: label, onclick: open })));
  who.replaceChildren(`${session.user.username} · ${session.user.roles.join(', ')} `,
    el('button', { class: 'quiet', text: 'Sign out', onclick: signOut }));
}

// The tenant and the purpose that content requests state. Customers work in their own tenant;
// staff name the tenant of the case they work on.
function scopeBar(reload) {
  const customer = hasRole(...CUSTOMER_ROLES);
  const tenant = el('input', { value: session.tenantId, placeholder: 'tenant id', size: 30, readonly: customer });
  const purpose = el('select', {}, purposesOfCaller().map((p) => el('option', { value: p, text: p, selected: p === session.purpose })));
  const reference = el('input', { value: session.justification, placeholder: 'case or ticket reference', size: 22 });
  const apply = () => {
    const ref = reference.value.trim();
    if (ref && !REFERENCE.test(ref)) {
      status('A justification is a reference: 3–64 letters, digits or -._:/ (a case or ticket number), never free text.', true);
      return;
    }
    session.tenantId = tenant.value.trim();
    session.purpose = purpose.value;
    session.justification = ref;
    reload();
  };
  return panel(null, el('form', { class: 'inline', onsubmit: apply },
    field('Tenant', tenant), field('Purpose of this access', purpose),
    field('Justification (optional)', reference), el('button', { type: 'submit', text: 'Apply' })));
}

function needTenant(title, reload) {
  if (session.tenantId) return false;
  show(el('h1', { text: title }), scopeBar(reload),
    panel(null, el('p', { class: 'hint', text: 'Name the tenant whose cases you work on.' })));
  return true;
}

// ---- cases and contacts -------------------------------------------------------------------------

function casesView() {
  renderBar('Cases');
  if (needTenant('Cases', casesView)) return;
  const t = session.tenantId;
  const columns = [['Title', 'title'], ['Status', 'status'], ['Severity', 'severity'], ['Product', 'product'], ['Updated', 'updated_at'], ['Id', 'id']];
  const list = pagedList(columns,
    (cursor) => api('GET', path`/v1/tenants/${t}/cases` + query({ limit: 50, cursor }), { content: true }),
    (item) => caseView(item.id));
  show(el('h1', { text: 'Cases' }), scopeBar(casesView), panel(null, list));
}

function caseView(caseId) {
  renderBar('Cases');
  const t = session.tenantId;
  run(async () => {
    const record = await api('GET', path`/v1/tenants/${t}/cases/${caseId}`, { content: true });
    const parts = [el('h1', { text: 'Case' }), scopeBar(() => caseView(caseId)), panel('Record', recordTable(record))];
    if (record.contact_id) {
      parts.push(panel(null, el('button', { class: 'quiet', text: 'Open the case contact', onclick: () => contactView(record.contact_id, caseId) })));
    }
    parts.push(commentsPanel(t, caseId));
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

function assignPanel(t, caseId) {
  const userId = el('input', { required: true, placeholder: 'user id', size: 30 });
  const submit = () => run(async () => {
    await api('POST', path`/v1/tenants/${t}/cases/${caseId}/assign`, { body: { user_id: userId.value.trim() }, content: true });
    caseView(caseId);
    return 'Case assigned.';
  });
  return panel('Assign', el('form', { class: 'inline', onsubmit: submit }, field('Assignee', userId), el('button', { type: 'submit', text: 'Assign' })));
}

function contactView(contactId, fromCase) {
  renderBar('Cases');
  const t = session.tenantId;
  run(async () => {
    const record = await api('GET', path`/v1/tenants/${t}/contacts/${contactId}`, { content: true });
    show(el('h1', { text: 'Contact' }), scopeBar(() => contactView(contactId, fromCase)),
      panel('Record', recordTable(record)),
      panel(null, el('button', { class: 'quiet', text: 'Back to the case', onclick: () => caseView(fromCase) })));
  });
}

// ---- operator access (the customer lockbox) ------------------------------------------------------

function accessView(state) {
  renderBar('Operator access');
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

// ---- the audit log and its proofs ----------------------------------------------------------------

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

function accessLogView() {
  renderBar('Access log');
  const t = session.tenantId;
  const list = pagedList([['#', 'index'], ['When', (r) => leafEntry(r).time], ['Who', (r) => actor(leafEntry(r))],
    ['Action', (r) => leafEntry(r).action], ['Purpose', (r) => leafEntry(r).purpose], ['Grant', (r) => leafEntry(r).grant_id],
    ['Fields disclosed', (r) => (leafEntry(r).fields_disclosed || []).join(', ')],
    ['Decision', (r) => el('span', { class: 'tag ' + leafEntry(r).decision, text: leafEntry(r).decision })], ['Proof', proofButton]],
  (cursor) => api('GET', path`/v1/tenants/${t}/access-log` + query({ limit: 100, cursor })));
  show(el('h1', { text: 'Who touched our data' }),
    panel(null, el('p', { class: 'hint', text: 'Every access to this tenant, from the tamper-evident audit log. "Check" verifies that the entry is in the tree of the server\'s latest checkpoint. It does not check the checkpoint\'s signature or that the log was never rewritten: `strongroom audit verify --url` does.' }), list));
}

function auditView() {
  renderBar('Audit log');
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

// ---- the account ---------------------------------------------------------------------------------

function accountView() {
  renderBar('Account');
  const me = el('div');
  const sessions = el('div');
  const load = () => run(async () => {
    me.replaceChildren(recordTable(await api('GET', path`/v1/me`)));
    const page = await api('GET', path`/v1/me/sessions`);
    sessions.replaceChildren(listTable([['Started', 'created_at'], ['Last seen', 'last_seen_at'], ['Expires', 'expires_at'],
      ['', (s) => (s.current ? el('span', { class: 'tag', text: 'this one' }) : el('button', { class: 'danger', text: 'End', onclick: () => endSession(s.id) }))]], page.items));
  });
  const endSession = (id) => run(async () => {
    await api('DELETE', path`/v1/me/sessions/${id}`);
    await load();
    return 'Session ended.';
  });
  const current = el('input', { type: 'password', autocomplete: 'current-password', required: true });
  const next = el('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const change = () => run(async () => {
    await api('POST', path`/v1/me/password`, { body: { current_password: current.value, new_password: next.value } });
    current.value = '';
    next.value = '';
    await load();
    return 'Password changed; your other sessions have ended.';
  });
  load();
  show(el('h1', { text: 'Account' }), panel('You', me), panel('Your sessions', sessions),
    panel('Change password', el('form', { onsubmit: change }, field('Current password', current), field('New password', next),
      el('p', { class: 'hint', text: 'At least 15 characters, or 8 with a second factor; common and guessable passwords are refused.' }),
      el('button', { type: 'submit', text: 'Change password' }))));
}

document.addEventListener('DOMContentLoaded', () => signedOut());
