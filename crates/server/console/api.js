// Strongroom console: the API client, the signed-in session and what the caller's roles allow.

// The purposes each role may state for tenant content (the server's guardrail
// `purpose_not_for_role` decides; this only keeps the choice to what can succeed).
export const PURPOSES_BY_ROLE = {
  tenant_admin: ['customer-self-service', 'data-subject-request', 'account-management', 'legal-compliance'],
  tenant_user: ['customer-self-service'],
  support_engineer: ['case-resolution'],
  support_supervisor: ['case-resolution'],
  security_officer: ['security-investigation', 'legal-compliance'],
};
export const CONTENT_ROLES = Object.keys(PURPOSES_BY_ROLE);
export const OPERATOR_ROLES = ['support_engineer', 'support_supervisor', 'security_officer'];
export const CUSTOMER_ROLES = ['tenant_admin', 'tenant_user'];
export const FIELD_CLASSES = ['case_content', 'contact_identity', 'contact_detail', 'sensitive'];
export const ALL_ROLES = ['platform_admin', 'auditor', 'security_officer', 'support_supervisor', 'support_engineer', 'marketing', ...CUSTOMER_ROLES];
// The purposes a tenant may allow for its content (marketing and advertising never).
export const TENANT_PURPOSES = ['case-resolution', 'customer-self-service', 'data-subject-request', 'security-investigation', 'legal-compliance', 'account-management'];
export const SUSPEND_REASONS = ['left', 'role_change', 'inactivity', 'other'];
const REFERENCE_SHAPE = /^(?=.*[0-9])[A-Za-z0-9][A-Za-z0-9._:/-]{2,63}$/;
// The server's rule (`is_reference`): a case or ticket number, never free text, and no number as
// long as a phone, card or account number (over 8 digits with no letter, or over 12 in one
// number, separators included).
export function isReference(text) {
  if (!REFERENCE_SHAPE.test(text)) return false;
  const digits = (text.match(/[0-9]/g) || []).length;
  const numbers = text.split(/[A-Za-z]+/).map((part) => (part.match(/[0-9]/g) || []).length);
  return !((!/[A-Za-z]/.test(text) && digits > 8) || Math.max(0, ...numbers) > 12);
}

export const session = {
  token: null,
  user: null,
  enrolling: false,
  // Bumped at every sign-in and sign-out: an answer to an earlier session's request is dropped.
  generation: 0,
  // Bumped when the user picks another view: an answer to a request of the view they left is
  // dropped (with whatever its step would have done next, such as reopening that view).
  view: 0,
  tenantId: '',
  purpose: '',
  justification: '',
};

export class ApiFailure extends Error {
  constructor(status, body, requestId) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'http_' + status;
    this.requestId = error.request_id || requestId || '';
    // What the server adds to the code (`reasons` of a weak password, `fields` of a validation
    // failure, an export quota's numbers): data, shown as text only (see `describeFailure`).
    this.details = error.details && typeof error.details === 'object' && !Array.isArray(error.details) ? error.details : null;
    this.retryAfter = null;
  }
}

export class StaleAnswer extends Error {}

// Tagged template for API paths: interpolated ids are percent-encoded, never trusted as paths.
export function path(strings, ...values) {
  return strings.reduce((out, piece, i) =>
    out + piece + (i < values.length ? encodeURIComponent(String(values[i])) : ''), '');
}

export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return pairs.length ? '?' + new URLSearchParams(pairs).toString() : '';
}

// Sends one request. `content` marks a read or write of tenant content, which states the chosen
// purpose (or `purpose`, when the content was gathered for one already) and justification; other
// calls state none, so the audit log records none.
export async function api(method, url, options) {
  const { body, content, text, binary, purpose } = options || {};
  const { generation, view } = session;
  const headers = { Accept: binary ? 'application/octet-stream' : text ? 'text/plain' : 'application/json' };
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (content) {
    const stated = purpose || session.purpose;
    if (stated) headers['Access-Purpose'] = stated;
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
  if (generation !== session.generation || view !== session.view) throw new StaleAnswer();
  if (response.status === 204) return null;
  if (text && response.ok) return response.text();
  if (binary && response.ok) return response.blob();
  let parsed = null;
  try { parsed = await response.json(); } catch (_) { parsed = null; }
  if (generation !== session.generation || view !== session.view) throw new StaleAnswer();
  if (!response.ok) {
    const failure = new ApiFailure(response.status, parsed, response.headers.get('Request-Id'));
    failure.retryAfter = response.headers.get('Retry-After');
    throw failure;
  }
  return parsed;
}

export function hasRole(...roles) {
  return Boolean(session.user) && session.user.roles.some((r) => roles.includes(r));
}

export function purposesOfCaller() {
  const mine = new Set(session.user.roles.flatMap((r) => PURPOSES_BY_ROLE[r] || []));
  return Object.values(PURPOSES_BY_ROLE).flat().filter((p, i, all) => mine.has(p) && all.indexOf(p) === i);
}
