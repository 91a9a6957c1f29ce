// Strongroom console: building the page from elements and text nodes, the status line, and the
// tables records and lists are shown in.

import { ApiFailure, StaleAnswer } from '/console/api.js';

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'onclick') node.addEventListener('click', (event) => whileRunning([node], value(event)));
    else if (key === 'onsubmit') {
      node.addEventListener('submit', (event) => {
        event.preventDefault();
        whileRunning([...node.querySelectorAll('button')], value(event));
      });
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

// A handler's buttons stay disabled until what it started has finished: no double submission
// (two exports against the quota, two API keys).
async function whileRunning(buttons, outcome) {
  if (!outcome || typeof outcome.then !== 'function') return;
  const enabled = buttons.filter((b) => b.tagName === 'BUTTON' && !b.disabled);
  enabled.forEach((b) => { b.disabled = true; });
  try {
    await outcome;
  } finally {
    enabled.forEach((b) => { b.disabled = false; });
  }
}

export function field(label, input) {
  return el('label', {}, label, input);
}

export function panel(title, ...children) {
  return el('section', { class: 'panel' }, title ? el('h2', { text: title }) : null, ...children);
}

export function show(...children) {
  document.getElementById('main').replaceChildren(...children.flat());
}

export function status(message, isError) {
  const footer = document.getElementById('status');
  footer.textContent = message || '';
  footer.className = isError ? 'error' : '';
}

export function describeFailure(failure) {
  if (!(failure instanceof ApiFailure)) return String((failure && failure.message) || failure);
  const id = failure.requestId ? ` (request ${failure.requestId})` : '';
  const details = describeDetails(failure.details);
  return `${failure.status} ${failure.code}: ${failure.message}${details ? ` — ${details}` : ''}${id}`;
}

// An error's `details` as one line of text: lists of plain values (the `reasons` a password was
// refused for, the `fields` a request got wrong) and plain values (an export quota's numbers);
// anything nested is left out. The status line shows it as text, never as markup.
function describeDetails(details) {
  if (!details) return '';
  const plain = (v) => ['string', 'number', 'boolean'].includes(typeof v);
  const parts = [];
  for (const [name, value] of Object.entries(details)) {
    if (Array.isArray(value)) {
      const items = value.filter(plain);
      if (items.length) parts.push(`${name}: ${items.join(', ')}`);
    } else if (plain(value)) {
      parts.push(`${name}: ${value}`);
    }
  }
  return parts.join('; ');
}

// What the app does when the server asks the user to act first (sign in again, acknowledge the
// agreement, enrol a second factor): returns true when it has taken the failure over.
let takeOver = () => false;

export function onRefusal(handler) {
  takeOver = handler;
}

let pending = 0;

// Runs one step of a view. The step may return a message for the status line, which stays until
// another replaces it (the lists a step reloads run steps of their own); a failure ends up there
// instead, unless the app takes it over (see `onRefusal`), and is cleared by the next step. While
// any step runs the page is marked busy.
export async function run(action) {
  pending += 1;
  document.body.classList.add('busy');
  if (document.getElementById('status').className === 'error') status('');
  try {
    const message = await action();
    if (message) status(message);
  } catch (failure) {
    if (failure instanceof StaleAnswer) return;
    if (failure instanceof ApiFailure && takeOver(failure)) return;
    status(describeFailure(failure), true);
  } finally {
    pending -= 1;
    document.body.classList.toggle('busy', pending > 0);
  }
}

// A record as the API returns it, with what the caller may not see in clear said as such.
export function recordTable(record) {
  const access = record._access || { masked: [], withheld: [] };
  const rows = [];
  for (const [name, value] of Object.entries(record)) {
    if (name === '_access') continue;
    const masked = (access.masked || []).includes(name);
    // Sealed under a key version the deployment no longer holds (a restore accepted as such).
    if ((access.unreadable || []).includes(name)) {
      rows.push(el('tr', {}, el('th', { text: name }),
        el('td', {}, el('span', { class: 'withheld', text: '—' }), el('span', { class: 'tag', text: 'unreadable' }))));
      continue;
    }
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

export function listTable(columns, items, onOpen) {
  const head = el('tr', {}, columns.map(([label]) => el('th', { text: label })));
  const rows = items.map((item) => {
    const withheld = (item._access && item._access.withheld) || [];
    const masked = (item._access && item._access.masked) || [];
    const unreadable = (item._access && item._access.unreadable) || [];
    const cells = columns.map(([, key]) => {
      const value = typeof key === 'function' ? key(item) : item[key];
      if (value instanceof Node) return el('td', {}, value);
      if (withheld.includes(key)) return el('td', { class: 'withheld', text: '—' });
      if (unreadable.includes(key)) return el('td', { class: 'withheld', text: 'unreadable' });
      return el('td', { class: masked.includes(key) ? 'masked' : null, text: display(value) });
    });
    return el('tr', { class: onOpen ? 'link' : null, onclick: onOpen ? () => onOpen(item) : null }, cells);
  });
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: columns.length, class: 'hint', text: 'Nothing here.' })));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, rows));
}

// A list the API pages with `next_cursor`: "More" fetches the next page into the same table.
export function pagedList(columns, fetchPage, onOpen) {
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

export function checkboxes(values, checked) {
  return values.map((v) => [v, el('input', { type: 'checkbox', value: v, checked: checked.includes(v) })]);
}

// A group of checkboxes under its caption: a fieldset, so that the caption labels the group and
// no single box (a label around them all would toggle the first).
export function checkboxGroup(caption, boxes) {
  return el('fieldset', {}, el('legend', { text: caption }),
    el('div', { class: 'row' }, boxes.map(([v, box]) => el('label', { class: 'row' }, box, v))));
}

export function ticked(boxes) {
  return boxes.filter(([, box]) => box.checked).map(([v]) => v);
}
