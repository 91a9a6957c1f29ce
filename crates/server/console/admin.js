// Strongroom console: administration, for platform admins, tenant admins in their own tenant,
// and security officers (access reviews and the inactivity sweep).

import { ALL_ROLES, CUSTOMER_ROLES, SUSPEND_REASONS, TENANT_PURPOSES, api, hasRole, path, query, session } from '/console/api.js';
import { checkboxGroup, checkboxes, el, field, listTable, pagedList, panel, recordTable, run, show, ticked } from '/console/dom.js';

export function adminView() {
  const parts = [el('h1', { text: 'Administration' })];
  if (hasRole('platform_admin')) parts.push(newTenantPanel());
  if (hasRole('tenant_admin') && session.tenantId) parts.push(tenantPanel(session.tenantId));
  if (hasRole('platform_admin')) parts.push(tenantLookupPanel());
  if (hasRole('platform_admin', 'tenant_admin')) parts.push(newUserPanel(), userLookupPanel());
  if (hasRole('platform_admin', 'security_officer')) parts.push(reviewsPanel(), sweepPanel());
  show(parts);
}

function newTenantPanel() {
  const name = el('input', { required: true, maxlength: 200 });
  const approval = el('input', { type: 'checkbox', checked: true });
  const exports = el('input', { type: 'checkbox', checked: true });
  const region = el('input', { value: 'eu', size: 8 });
  const result = el('div');
  const submit = () => run(async () => {
    const tenant = await api('POST', path`/v1/tenants`, {
      body: {
        name: name.value.trim(),
        instructions: { operator_access_requires_approval: approval.checked, export_allowed: exports.checked, region: region.value.trim() },
      },
    });
    result.replaceChildren(recordTable(tenant));
    return `Tenant ${tenant.id} created.`;
  });
  return panel('New tenant', el('form', { onsubmit: submit }, field('Name', name),
    el('label', { class: 'row' }, approval, 'operator access needs the tenant\'s approval'),
    el('label', { class: 'row' }, exports, 'exports allowed'), field('Region', region),
    el('button', { type: 'submit', text: 'Create tenant' })), result);
}

function tenantLookupPanel() {
  const id = el('input', { required: true, placeholder: 'tenant id', size: 30 });
  const holder = el('div');
  const submit = () => holder.replaceChildren(tenantPanel(id.value.trim()));
  return panel('A tenant', el('form', { class: 'inline', onsubmit: submit }, field('Tenant', id), el('button', { type: 'submit', text: 'Open' })), holder);
}

// A tenant's record and its processing instructions, editable: the platform may only tighten
// them, the tenant's own admin may loosen them too (the server decides and records either).
function tenantPanel(tenantId) {
  const holder = el('div');
  const load = () => run(async () => {
    const tenant = await api('GET', path`/v1/tenants/${tenantId}`);
    const i = tenant.instructions;
    const purposes = checkboxes(TENANT_PURPOSES, i.allowed_purposes);
    const approval = el('input', { type: 'checkbox', checked: i.operator_access_requires_approval });
    const exports = el('input', { type: 'checkbox', checked: i.export_allowed });
    const retention = el('input', { type: 'number', min: 1, value: i.retention_days });
    const grantHours = el('input', { type: 'number', min: 1, value: i.max_grant_hours });
    const idleDays = el('input', { type: 'number', min: 1, value: i.customer_inactivity_days ?? '', placeholder: 'the platform\'s limit' });
    const region = el('input', { value: i.region, size: 8 });
    const webhook = el('input', { value: i.webhook_url ?? '', size: 40, placeholder: 'https://…' });
    const save = () => run(async () => {
      const patch = {
        allowed_purposes: ticked(purposes),
        operator_access_requires_approval: approval.checked,
        export_allowed: exports.checked,
        retention_days: Number(retention.value),
        max_grant_hours: Number(grantHours.value),
        region: region.value.trim(),
      };
      // An emptied field removes the tenant's own limit (0), leaving the platform's.
      if (idleDays.value) patch.customer_inactivity_days = Number(idleDays.value);
      else if (i.customer_inactivity_days !== null && i.customer_inactivity_days !== undefined) {
        patch.customer_inactivity_days = 0;
      }
      if (webhook.value.trim() !== (i.webhook_url ?? '')) patch.webhook_url = webhook.value.trim();
      await api('PATCH', path`/v1/tenants/${tenantId}/instructions`, { body: patch });
      load();
      return 'Instructions saved.';
    });
    holder.replaceChildren(
      hasRole('platform_admin') ? keysPanel(tenantId) : '',
      el('table', {}, el('tbody', {}, [['id', tenant.id], ['name', tenant.name], ['status', tenant.status], ['updated', tenant.updated_at]]
        .map(([k, v]) => el('tr', {}, el('th', { text: k }), el('td', { class: 'mono', text: v }))))),
      el('form', { onsubmit: save }, el('h2', { text: 'Processing instructions' }),
        checkboxGroup('Purposes allowed for the tenant\'s content', purposes),
        el('label', { class: 'row' }, approval, 'operator access needs the tenant\'s approval'),
        el('label', { class: 'row' }, exports, 'exports allowed'),
        field('Retention (days)', retention), field('Longest operator grant (hours)', grantHours),
        field('Customer accounts suspended after (days inactive)', idleDays), field('Region', region),
        field('Lockbox webhook URL (empty: none)', webhook),
        el('button', { type: 'submit', text: 'Save instructions' })));
  });
  load();
  return panel(hasRole('tenant_admin') ? 'Our tenant' : null, holder);
}

function newUserPanel() {
  const platform = hasRole('platform_admin');
  const username = el('input', { required: true, autocomplete: 'off' });
  const displayName = el('input', { required: true });
  const password = el('input', { type: 'password', required: true, autocomplete: 'new-password' });
  const roles = checkboxes(platform ? ALL_ROLES : CUSTOMER_ROLES, platform ? [] : ['tenant_user']);
  const tenant = el('input', { value: platform ? '' : session.tenantId, readonly: !platform, size: 30, placeholder: 'customers only' });
  const result = el('div');
  const submit = () => run(async () => {
    const body = { username: username.value.trim(), display_name: displayName.value.trim(), password: password.value, roles: ticked(roles) };
    if (tenant.value.trim()) body.tenant_id = tenant.value.trim();
    const user = await api('POST', path`/v1/users`, { body });
    password.value = '';
    result.replaceChildren(recordTable(user));
    return `User ${user.username} created (${user.id}).`;
  });
  return panel(platform ? 'New user' : 'New customer user', el('form', { onsubmit: submit },
    field('Username', username), field('Display name', displayName), field('Initial password', password),
    checkboxGroup('Roles', roles), field('Tenant', tenant), el('button', { type: 'submit', text: 'Create user' })), result);
}

function userLookupPanel() {
  const id = el('input', { required: true, placeholder: 'user id', size: 30 });
  const holder = el('div');
  const open = (userId) => run(async () => {
    const user = await api('GET', path`/v1/users/${userId}`);
    const platform = hasRole('platform_admin');
    const roles = checkboxes(platform ? ALL_ROLES : CUSTOMER_ROLES, user.roles);
    const reason = el('select', {}, SUSPEND_REASONS.map((r) => el('option', { value: r, text: r })));
    const act = (message, request) => () => run(async () => {
      await request();
      open(userId);
      return message;
    });
    holder.replaceChildren(recordTable(user),
      el('form', { class: 'inline', onsubmit: act('Roles changed; the user\'s sessions and grants were revoked.', () => api('PATCH', path`/v1/users/${userId}`, { body: { roles: ticked(roles) } })) },
        checkboxGroup('Roles', roles), el('button', { type: 'submit', text: 'Change roles' })),
      el('div', { class: 'row' },
        user.status === 'active'
          ? el('form', { class: 'inline', onsubmit: act('Suspended.', () => api('POST', path`/v1/users/${userId}/suspend`, { body: { reason: reason.value } })) },
            field('Reason', reason), el('button', { type: 'submit', class: 'danger', text: 'Suspend' }))
          : el('button', { text: 'Reactivate', onclick: act('Reactivated.', () => api('POST', path`/v1/users/${userId}/reactivate`)) }),
        el('button', { class: 'quiet', text: 'End all sessions', onclick: act('Sessions ended.', () => api('DELETE', path`/v1/users/${userId}/sessions`)) }),
        el('button', { class: 'quiet', text: 'Reset second factor', onclick: act('Second factor removed; the user enrols again at the next login.', () => api('POST', path`/v1/users/${userId}/mfa/reset`)) })));
  });
  return panel('A user', el('form', { class: 'inline', onsubmit: () => open(id.value.trim()) }, field('User', id), el('button', { type: 'submit', text: 'Open' })), holder);
}

// The tenant's key versions, how many ciphertexts each still seals, and a rotation (new writes
// use the new version at once; the server re-encrypts the rest in the background).
function keysPanel(tenantId) {
  const holder = el('div');
  const load = () => run(async () => {
    const keys = await api('GET', path`/v1/tenants/${tenantId}/keys`);
    const rotate = () => {
      if (!window.confirm(`Rotate the keys of tenant ${tenantId}?`)) return;
      run(async () => {
        const rotated = await api('POST', path`/v1/tenants/${tenantId}/keys/rotate`);
        load();
        return `Key version ${rotated.current_version} is current; older data is re-encrypted in the background.`;
      });
    };
    holder.replaceChildren(
      el('p', { class: 'hint', text: `Current key version ${keys.current_version}; ${keys.reencryption_pending} ciphertexts still under older versions.` }),
      listTable([['Version', 'version'], ['State', 'state'], ['Ciphertexts', 'ciphertexts'], ['Created', 'created_at'], ['Retired', 'retired_at']], keys.versions),
      el('button', { class: 'quiet', text: 'Rotate keys', onclick: rotate }));
  });
  load();
  return el('div', {}, el('h2', { text: 'Keys' }), holder);
}

// Periodic access reviews: every account with its roles and reach, each line certified or
// revoked (which suspends the account).
function reviewsPanel() {
  const detail = el('div');
  const open = (reviewId) => run(async () => {
    const review = await api('GET', path`/v1/access-reviews/${reviewId}`);
    const decide = (line, decision) => () => run(async () => {
      await api('POST', path`/v1/access-reviews/${reviewId}/decisions`, { body: { user_id: line.user_id, decision } });
      open(reviewId);
      return `${line.username}: ${decision === 'certify' ? 'certified' : 'revoked (suspended)'}.`;
    });
    detail.replaceChildren(el('h2', { text: `Review ${review.id}: ${review.pending} of ${review.total} lines pending` }),
      listTable([['User', 'username'], ['Roles', (l) => l.roles.join(', ')], ['Tenant', 'tenant_id'], ['Status', 'status'],
        ['Last active', 'last_activity_at'], ['2FA', (l) => (l.mfa_enrolled ? 'yes' : 'no')], ['Cases', 'assignments'],
        ['Grants', 'active_grants'], ['API keys', 'api_keys'],
        ['Decision', (l) => {
          if (l.decision) return `${l.decision} by ${l.decided_by}`;
          if (l.user_id === session.user.id) return 'someone else decides';
          const revoke = decide(l, 'revoke');
          return el('div', { class: 'row' }, el('button', { class: 'quiet', text: 'Certify', onclick: decide(l, 'certify') }),
            el('button', { class: 'danger', text: 'Revoke', onclick: () => window.confirm(`Revoke ${l.username}'s access? The account is suspended at once.`) && revoke() }));
        }]], review.lines));
  });
  const list = el('div');
  const load = () => list.replaceChildren(pagedList([['Started', 'created_at'], ['By', 'created_by'], ['Review', 'id']],
    (cursor) => api('GET', path`/v1/access-reviews` + query({ limit: 20, cursor })), (r) => open(r.id)));
  const start = () => run(async () => {
    const review = await api('POST', path`/v1/access-reviews`);
    load();
    open(review.id);
    return `Review ${review.id} started: ${review.total} accounts.`;
  });
  load();
  return panel('Access reviews', el('button', { text: 'Start a review', onclick: start }), list, detail);
}

// The real sweep is offered only after a dry run has shown who it would suspend, and asks again.
function sweepPanel() {
  const report = el('div');
  const now = el('button', { class: 'danger', text: 'Suspend them now', disabled: true });
  const columns = [['User', 'username'], ['Roles', (l) => l.roles.join(', ')], ['Tenant', 'tenant_id'], ['Last active', 'last_activity_at'], ['Inactive days', 'inactive_days'], ['Limit', 'limit_days']];
  const sweep = (dryRun) => run(async () => {
    const result = await api('POST', path`/v1/admin/inactivity-sweep`, { body: { dry_run: dryRun } });
    report.replaceChildren(el('h2', { text: dryRun ? 'Would be suspended' : 'Suspended' }), listTable(columns, result.suspended),
      el('h2', { text: 'Warned' }), listTable(columns, result.warned),
      el('h2', { text: 'Kept: the last active platform admin' }), listTable(columns, result.kept_last_admin));
    now.disabled = !dryRun || result.suspended.length === 0;
    return dryRun ? 'Dry run: nothing changed.' : `${result.suspended.length} accounts suspended.`;
  });
  now.addEventListener('click', () => {
    if (window.confirm('Suspend the accounts the dry run listed (and any that became inactive since)?')) sweep(false);
  });
  return panel('Inactive accounts', el('p', { class: 'hint', text: 'Accounts past their inactivity limit are suspended (the server also sweeps on its own schedule).' }),
    el('div', { class: 'row' }, el('button', { class: 'quiet', text: 'Dry run', onclick: () => sweep(true) }), now), report);
}
