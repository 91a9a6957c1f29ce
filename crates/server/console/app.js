// Strongroom console: a client of the v1 API and nothing more. Every decision (who may see which
// field, for which purpose, under which grant) is the server's; the page shows what it is given
// and offers only what the caller's roles can use.
//
// This module signs in and out, navigates, and shows the caller's account; the views live in
// cases.js, audit.js and admin.js, on api.js (the API client) and dom.js (building the page).
//
// Rules every module keeps, checked by the server crate's tests:
// - the DOM is built from elements and text nodes only (no markup from strings), so a value in a
//   record can never become markup or script;
// - the session token lives in this page's memory only: not in storage, not in cookies, gone on
//   reload;
// - every API path is written as a `path` template, which encodes what it interpolates.

import { accessLogView, auditView, incidentsView } from '/console/audit.js';
import { adminView } from '/console/admin.js';
import { exportsView } from '/console/exports.js';
import { accessView, casesView } from '/console/cases.js';
import { ALL_ROLES, CONTENT_ROLES, CUSTOMER_ROLES, OPERATOR_ROLES, api, hasRole, path, purposesOfCaller, query, session } from '/console/api.js';
import { checkboxGroup, checkboxes, describeFailure, el, field, listTable, onRefusal, pagedList, panel, recordTable, run, show, status, ticked } from '/console/dom.js';

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
  try {
    await api('POST', path`/v1/auth/logout`);
    signedOut('Signed out.');
  } catch (_) {
    // The token is dropped either way; the server ends the session at its idle timeout.
    signedOut('Signed out here, but the server did not confirm: the session ends at its idle timeout.');
  }
}

// Leaving or reloading the page drops the token from memory; end its session on the server too.
// The browser may keep the page (the back/forward cache) and show it again: nothing of the session
// stays on it, and no answer still on its way puts anything back.
window.addEventListener('pagehide', () => {
  if (!session.token) return;
  fetch(path`/v1/auth/logout`, {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + session.token },
    keepalive: true,
    credentials: 'omit',
  }).catch(() => {});
  session.token = null;
  session.generation += 1;
  for (const id of ['main', 'nav', 'who', 'status']) document.getElementById(id).replaceChildren();
});

// A page shown again from the back/forward cache starts signed out (its session ended as it was
// left), with a fresh sign-in form rather than whatever was typed into the old one.
window.addEventListener('pageshow', (event) => {
  if (!event.persisted) return;
  signedOut(session.user ? 'Your session has ended. Sign in again.' : '');
});

function enrolmentView() {
  session.enrolling = true;
  renderBar();
  const code = el('input', { inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', required: true });
  const details = el('div');
  // A session whose sign-in is too old to enrol (the server's enrolment window) signs in again.
  const freshSignIn = async (failure) => {
    if (failure.code !== 'forbidden') throw failure;
    // The stale session ends on the server too (best effort: its idle timeout ends it anyway).
    await api('POST', path`/v1/auth/logout`).catch(() => {});
    signedOut('Sign in again to enrol: a second factor is enrolled right after signing in.');
  };
  const confirm = () => run(async () => {
    let answer;
    try {
      answer = await api('POST', path`/v1/me/mfa/totp/confirm`, { body: { code: code.value.trim() } });
    } catch (failure) {
      return freshSignIn(failure);
    }
    session.enrolling = false;
    renderBar();
    show(panel('Recovery codes',
      el('p', { text: 'Each code signs you in once if you lose your authenticator. They are shown only now: keep them somewhere safe.' }),
      el('pre', { text: answer.recovery_codes.join('\n') }),
      el('button', { text: 'Continue', onclick: landingView })));
  });
  const start = () => run(async () => {
    let enrolment;
    try {
      enrolment = await api('POST', path`/v1/me/mfa/totp`);
    } catch (failure) {
      return freshSignIn(failure);
    }
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
  ['Exports', () => exportsView(), () => hasRole(...CONTENT_ROLES)],
  ['Access log', () => accessLogView(), () => hasRole('tenant_admin')],
  ['Audit log', () => auditView(), () => true],
  ['Incidents', () => incidentsView(), () => hasRole('security_officer', 'auditor', 'tenant_admin')],
  ['Administration', () => adminView(), () => hasRole('platform_admin', 'tenant_admin', 'security_officer')],
  ['Account', () => accountView(), () => true],
];

function openView(label, view) {
  session.view += 1;
  status('');
  renderBar(label);
  view();
}

function landingView() {
  const [label, view] = VIEWS.find(([, , visible]) => visible());
  openView(label, view);
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
    el('button', { class: label === current ? 'current' : null, text: label, onclick: () => openView(label, open) })));
  who.replaceChildren(`${session.user.username} · ${session.user.roles.join(', ')} `,
    el('button', { class: 'quiet', text: 'Sign out', onclick: signOut }));
}

// ---- the account ---------------------------------------------------------------------------------

function accountView() {
  const me = el('div');
  const sessions = el('div');
  const load = () => run(async () => {
    me.replaceChildren(recordTable(await api('GET', path`/v1/me`)));
    const page = await api('GET', path`/v1/me/sessions` + query({ limit: 500 }));
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
    hasRole('platform_admin', 'tenant_admin') ? apiKeysPanel() : null,
    panel('Change password', el('form', { onsubmit: change }, field('Current password', current), field('New password', next),
      el('p', { class: 'hint', text: 'At least 15 characters, or 8 with a second factor; common and guessable passwords are refused.' }),
      el('button', { type: 'submit', text: 'Change password' }))));
}

onRefusal((failure) => {
  if (failure.code === 'unauthenticated' || failure.code === 'account_suspended') {
    signedOut(failure.code === 'account_suspended'
      ? 'This account is suspended.' : 'Your session has ended. Sign in again.');
    return true;
  }
  if (failure.code === 'confidentiality_acknowledgement_required') { agreementView(); return true; }
  if (failure.code === 'mfa_enrolment_required') { enrolmentView(); return true; }
  return false;
});

// API keys for scripts (a key is a service account: platform admins create staff or customer
// keys, tenant admins their tenant's customer keys). The key is shown once, at creation, and is
// revoked here or by logging out with it.
function apiKeysPanel() {
  const list = el('div');
  const created = el('div');
  const load = () => list.replaceChildren(pagedList([['Name', 'name'], ['Roles', (k) => k.roles.join(', ')], ['Created', 'created_at'],
    ['Expires', 'expires_at'], ['Last used', 'last_used_at'], ['Status', 'status'],
    ['', (k) => (k.status === 'active' ? el('button', { class: 'danger', text: 'Revoke', onclick: () => revoke(k) }) : '')]],
  (cursor) => api('GET', path`/v1/api-keys` + query({ limit: 50, cursor }))));
  const revoke = (key) => run(async () => {
    await api('DELETE', path`/v1/api-keys/${key.id}`);
    load();
    return `Key ${key.name} revoked.`;
  });
  const name = el('input', { required: true, maxlength: 100 });
  const days = el('input', { type: 'number', min: 1, max: 365, value: 30 });
  // No role is ticked at first: the creator chooses staff or customer roles (customer roles need a
  // tenant, staff roles must have none).
  const roles = checkboxes(hasRole('platform_admin') ? ALL_ROLES : CUSTOMER_ROLES, []);
  // A tenant admin's keys are its tenant's; a caller of no tenant names one for a customer key.
  const tenant = session.user.tenant_id ? null : el('input', { size: 30, placeholder: 'customer keys only' });
  const create = () => run(async () => {
    const expires = new Date(Date.now() + Number(days.value) * 86400000).toISOString();
    const body = { name: name.value.trim(), roles: ticked(roles), expires_at: expires };
    if (session.user.tenant_id) body.tenant_id = session.user.tenant_id;
    else if (tenant.value.trim()) body.tenant_id = tenant.value.trim();
    const key = await api('POST', path`/v1/api-keys`, { body });
    created.replaceChildren(el('p', { text: 'The key, shown only now: keep it like a password.' }), el('pre', { text: key.key }));
    name.value = '';
    load();
    return `Key ${key.name} created.`;
  });
  load();
  return panel('API keys', list, el('form', { class: 'inline', onsubmit: create }, field('Name', name), field('Valid for (days)', days),
    checkboxGroup('Roles', roles), tenant ? field('Tenant', tenant) : null, el('button', { type: 'submit', text: 'Create key' })), created);
}

// A module runs once the document is parsed.
signedOut();
