// A walk through the web console in a real browser, against a `--demo` server: a tenant admin
// lists and opens cases, attaches a file and downloads it (the EICAR test file is refused), deletes another, opens the case contact, checks an access-log entry's inclusion proof,
// exports records to an age recipient and downloads the file, creates and revokes an API key; a
// support engineer finds their case among "Your cases", opens it and files an access request; the
// tenant admin approves it; the engineer reads the contact as the grant allows; an auditor checks
// an entry of the whole log; a supervisor assigns a case from the staff list; a customer opens a case, sets its status and adds a contact; the
// tenant admin tightens its instructions and sees the incidents about it; a security officer
// closes one; the platform admin (with
// ADMIN_PASSWORD) creates a tenant and a user, suspends and reactivates them, rotates the new
// tenant's keys, starts an access review and certifies a line, and dry-runs the inactivity sweep. Prints what each step showed and any error the page logged.
//
// Not part of `cargo test` (the README's commands need only the Rust toolchain). Run by hand:
//   apt-get install chromium            # or any Chromium; pass its path as CHROMIUM
//   npm install playwright-core         # in a scratch directory, then run this file from there
//   STRONGROOM_WATCH_MASS_READ_RECORDS=3 STRONGROOM_WATCH_MASS_READ_CUSTOMER_FACTOR=1 STRONGROOM_ADMIN_PASSWORD=... \
//       strongroom serve --data-dir /tmp/demo --demo \
//       --listen 127.0.0.1:18443 2> /tmp/demo.err &
//   ADMIN_PASSWORD=... node console_walkthrough.js https://127.0.0.1:18443 /tmp/demo.err /tmp/shots
// (the demo's credentials and TOTP seeds are read from its standard error; screenshots go to the
// last directory).

const { chromium } = require('playwright-core');
const fs = require('fs');
const crypto = require('crypto');
const [base, stderrFile, outDir] = process.argv.slice(2);
const log = fs.readFileSync(stderrFile, 'utf8');
const creds = {};
for (const m of log.matchAll(/^\s+(\S+)\s+(\S+)\s+\((.+)\)$/gm)) creds[m[1]] = { password: m[2], role: m[3] };
const seeds = {};
for (const m of log.matchAll(/demo TOTP seed of (\S+) \(shown once\): (\S+)/g)) seeds[m[1]] = m[2];
function b32(s) { const a='ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'; let bits=''; for (const c of s.replace(/=+$/,'')) bits += a.indexOf(c).toString(2).padStart(5,'0'); const out=[]; for (let i=0;i+8<=bits.length;i+=8) out.push(parseInt(bits.slice(i,i+8),2)); return Buffer.from(out); }
function totp(seed, t) { const msg = Buffer.alloc(8); msg.writeBigUInt64BE(BigInt(t)); const h = crypto.createHmac('sha1', b32(seed)).update(msg).digest(); const o = h[h.length-1] & 15; return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6,'0'); }
const used = {};
for (const u of Object.keys(seeds)) used[u] = Math.floor(Date.now() / 30000); // the demo spent this step
async function login(page, username) {
  await page.goto(base + '/');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', creds[username].password);
  if (seeds[username]) {
    // A code is accepted once: wait for a step this run has not used for this account.
    while (Math.floor(Date.now() / 30000) <= (used[username] ?? -1)) await new Promise((r) => setTimeout(r, 1000));
    const step = Math.floor(Date.now() / 30000);
    used[username] = step;
    await page.fill('input[name=totp]', totp(seeds[username], step));
  }
  await page.click('button[type=submit]');
  await page.waitForSelector('#nav button', { timeout: 10000 });
}
// An age X25519 recipient (bech32, HRP "age") for a fresh key pair; the identity is not needed:
// the walk-through only checks that the download is an age file.
function ageRecipient() {
  const { publicKey } = crypto.generateKeyPairSync('x25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const charset = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  const words = [];
  let acc = 0; let bits = 0;
  for (const byte of raw) { acc = (acc << 8) | byte; bits += 8; while (bits >= 5) { bits -= 5; words.push((acc >> bits) & 31); } }
  if (bits > 0) words.push((acc << (5 - bits)) & 31);
  const polymod = (values) => {
    const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let chk = 1;
    for (const v of values) { const top = chk >> 25; chk = ((chk & 0x1ffffff) << 5) ^ v; for (let i = 0; i < 5; i++) if ((top >> i) & 1) chk ^= gen[i]; }
    return chk;
  };
  const hrp = 'age';
  const expanded = [...[...hrp].map((c) => c.charCodeAt(0) >> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];
  const mod = polymod([...expanded, ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >> (5 * (5 - i))) & 31);
  return hrp + '1' + [...words, ...checksum].map((w) => charset[w]).join('');
}

async function statusText(page) { return (await page.textContent('#status')) || ''; }
(async () => {
  console.log('accounts:', Object.entries(creds).map(([u, c]) => `${u} (${c.role})`).join(', '));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  const admin = Object.keys(creds).find((u) => creds[u].role.startsWith('tenant_admin'));
  await login(page, admin);
  await page.waitForSelector('table tbody tr.link', { timeout: 10000 });
  const tenantId = await page.inputValue('form.inline input');
  console.log('tenant admin cases rows:', await page.locator('table tbody tr.link').count());
  await page.screenshot({ path: outDir + '/1-cases.png' });
  await page.locator('table tbody tr.link').first().click();
  await page.waitForSelector('h1:text("Case")');
  await page.waitForTimeout(500);
  await page.screenshot({ path: outDir + '/2-case.png', fullPage: true });
  // Files: a clean one is attached and downloaded back; the EICAR test file is refused.
  await page.setInputFiles('section:has(h2:text("Files")) input[type=file]', { name: 'walk.log', mimeType: 'text/plain', buffer: Buffer.from('walk-through log line\n') });
  await page.click('section:has(h2:text("Files")) button:text("Upload")');
  await page.waitForSelector('section:has(h2:text("Files")) td:text-is("walk.log")', { timeout: 10000 });
  console.log('upload status:', JSON.stringify(await statusText(page)));
  const [saved] = await Promise.all([page.waitForEvent('download'), page.locator('section:has(h2:text("Files")) tr.link:has(td:text-is("walk.log"))').first().click()]);
  console.log('downloaded as:', saved.suggestedFilename(), JSON.stringify(fs.readFileSync(await saved.path(), 'utf8')));
  const eicar = Buffer.concat([Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$'), Buffer.from('EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*')]);
  await page.setInputFiles('section:has(h2:text("Files")) input[type=file]', { name: 'eicar.com', mimeType: 'application/octet-stream', buffer: eicar });
  await page.click('section:has(h2:text("Files")) button:text("Upload")');
  await page.waitForTimeout(1000);
  console.log('malware upload status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/2b-files.png', fullPage: true });
  // The tenant admin deletes a file it attached by mistake (after confirming); the other stays.
  await page.setInputFiles('section:has(h2:text("Files")) input[type=file]', { name: 'wrong.log', mimeType: 'text/plain', buffer: Buffer.from('not for this case\n') });
  await page.click('section:has(h2:text("Files")) button:text("Upload")');
  await page.waitForSelector('section:has(h2:text("Files")) td:text-is("wrong.log")', { timeout: 10000 });
  page.once('dialog', (dialog) => dialog.accept());
  await page.locator('section:has(h2:text("Files")) tr:has(td:text-is("wrong.log")) button:text("Delete")').click();
  await page.waitForSelector('section:has(h2:text("Files")) td:text-is("wrong.log")', { state: 'detached', timeout: 10000 });
  await page.waitForSelector('section:has(h2:text("Files")) td:text-is("walk.log")', { timeout: 10000 });
  console.log('delete status:', JSON.stringify(await statusText(page)), 'walk.log still listed:', await page.locator('section:has(h2:text("Files")) td:text-is("walk.log")').count());
  const contactButton = page.locator('button:text("Open the case contact")');
  if (await contactButton.count()) { await contactButton.click(); await page.waitForSelector('h1:text("Contact")'); await page.waitForTimeout(300); await page.screenshot({ path: outDir + '/3-contact.png', fullPage: true }); }
  await page.click('#nav button:text("Access log")');
  await page.waitForSelector('table tbody tr td button:text("Check")', { timeout: 10000 });
  await page.locator('button:text("Check")').first().click();
  await page.waitForSelector('.tag.verified, .tag.failed', { timeout: 10000 });
  console.log('proof verdict:', await page.locator('.tag.verified, .tag.failed').first().textContent());
  await page.screenshot({ path: outDir + '/4-access-log.png', fullPage: true });
  await page.click('#nav button:text("Exports")');
  await page.waitForSelector('input[placeholder="age1…"]', { timeout: 10000 });
  await page.fill('input[placeholder="age1…"]', ageRecipient());
  await page.click('button[type=submit]:text-is("Export")');
  await page.waitForSelector('button:text("Download")', { timeout: 10000 });
  console.log('export status:', JSON.stringify(await statusText(page)));
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('button:text("Download")').first().click()]);
  const file = await download.path();
  console.log('download:', download.suggestedFilename(), JSON.stringify(fs.readFileSync(file).subarray(0, 21).toString()));
  await page.screenshot({ path: outDir + '/5a-exports.png', fullPage: true });
  await page.click('#nav button:text("Operator access")');
  await page.waitForTimeout(800);
  console.log('operator access status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/5-access.png', fullPage: true });
  await page.click('#nav button:text("Account")');
  await page.waitForSelector('button:text("Create key")', { timeout: 10000 });
  await page.fill('section:has(h2:text("API keys")) input[maxlength="100"]', 'walkthrough');
  await page.click('button:text("Create key")');
  await page.waitForTimeout(800);
  console.log('api key status:', JSON.stringify(await statusText(page)));
  await page.locator('section:has(h2:text("API keys")) button:text("Revoke")').first().click();
  await page.waitForTimeout(800);
  console.log('api key revoke status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/6-account.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // A support engineer: finds their cases in every tenant, opens the one in the admin's tenant.
  const engineer = Object.keys(creds).find((u) => creds[u].role === 'support_engineer');
  const theirCase = `section:has(h2:text("Your cases")) tr.link:has(td:text-is("${tenantId}"))`;
  await login(page, engineer);
  await page.waitForSelector(theirCase, { timeout: 10000 });
  console.log('engineer reach rows:', await page.locator('section:has(h2:text("Your cases")) tr.link').count());
  await page.screenshot({ path: outDir + '/7-engineer-cases.png', fullPage: true });
  await page.locator(theirCase).first().click();
  await page.waitForTimeout(800);
  console.log('engineer case status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/8-engineer-case.png', fullPage: true });
  if (await page.locator('h2:text("Request operator access")').count()) {
    await page.check('input[value=contact_identity]');
    await page.fill('input[placeholder^="Why you need"]', 'Reproduce the nightly export failure with the customer');
    await page.click('button:text("Send request")');
    await page.waitForTimeout(800);
    console.log('request status:', JSON.stringify(await statusText(page)));
  }
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // The tenant admin approves it.
  await login(page, admin);
  await page.click('#nav button:text("Operator access")');
  await page.waitForSelector('button:text("Approve…")', { timeout: 10000 });
  await page.screenshot({ path: outDir + '/9-pending.png', fullPage: true });
  await page.locator('button:text("Approve…")').first().click();
  await page.fill('input[placeholder="comment (optional)"]', 'ok for today');
  await page.click('button[type=submit]:text("Approve")');
  await page.waitForTimeout(800);
  console.log('approve status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/10-approved.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // The engineer now reads the case content and the contact's identity, the rest withheld.
  await login(page, engineer);
  await page.waitForSelector(theirCase, { timeout: 10000 });
  console.log('engineer reach after approval:', JSON.stringify(await page.locator('section:has(h2:text("Your cases")) tbody').innerText()).replace(/\\t/g, ' '));
  await page.locator(theirCase).first().click();
  await page.waitForSelector('h1:text("Case")', { timeout: 10000 });
  await page.waitForTimeout(500);
  const contactButton2 = page.locator('button:text("Open the case contact")');
  if (await contactButton2.count()) { await contactButton2.click(); await page.waitForTimeout(800); }
  console.log('engineer contact status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/11-engineer-contact.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  const auditor = Object.keys(creds).find((u) => creds[u].role === 'auditor');
  await login(page, auditor);
  await page.waitForSelector('button:text("Check")', { timeout: 10000 });
  await page.locator('button:text("Check")').nth(3).click();
  await page.waitForSelector('.tag.verified, .tag.failed', { timeout: 10000 });
  console.log('auditor proof verdict:', await page.locator('.tag.verified, .tag.failed').first().textContent());
  await page.screenshot({ path: outDir + '/12-auditor.png' });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // A support supervisor opens a case of the admin's tenant and assigns it, choosing from the staff list.
  const supervisor = Object.keys(creds).find((u) => creds[u].role === 'support_supervisor');
  await login(page, supervisor);
  await page.click('#nav button:text("Cases")');
  await page.fill('form.inline input', tenantId);
  await page.click('form.inline button:text("Apply")');
  await page.waitForSelector('table tbody tr.link', { timeout: 10000 });
  await page.locator('table tbody tr.link').first().click();
  await page.waitForSelector('section:has(h2:text("Assign")) select option:nth-child(2)', { state: 'attached', timeout: 10000 });
  const choices = await page.locator('section:has(h2:text("Assign")) select option').allTextContents();
  console.log('assignees offered:', JSON.stringify(choices.slice(1)));
  await page.selectOption('section:has(h2:text("Assign")) select', { index: 1 });
  await page.click('section:has(h2:text("Assign")) button:text("Assign")');
  await page.waitForTimeout(800);
  // The case reloads (its content panels then refuse the supervisor's triage view): show the record's assignee.
  console.log('assigned to:', await page.locator('section:has(h2:text("Record")) tr:has(th:text-is("assignee_id")) td').innerText());
  await page.screenshot({ path: outDir + '/12b-supervisor-assign.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // A customer opens a case, moves it to pending, and adds a contact.
  const customer = Object.keys(creds).find((u) => creds[u].role.startsWith('tenant_user'));
  await login(page, customer);
  await page.waitForSelector('button:text("Open case")', { timeout: 10000 });
  await page.fill('section:has(h2:text("New case")) input[size="60"]', 'Printer eats labels');
  await page.click('button:text("Open case")');
  await page.waitForSelector('button:text("Set status")', { timeout: 10000 });
  console.log('new case status:', JSON.stringify(await statusText(page)));
  await page.selectOption('section:has(h2:text("Status")) select', 'pending');
  await page.click('button:text("Set status")');
  await page.waitForTimeout(800);
  console.log('set status:', JSON.stringify(await statusText(page)));
  await page.click('button:text("Back to cases")');
  await page.waitForSelector('button:text("Add contact")', { timeout: 10000 });
  await page.locator('section:has(h2:text("Contacts")) form input').first().fill('Grace Hopper');
  await page.click('button:text("Add contact")');
  await page.waitForSelector('h1:text("Contact")', { timeout: 10000 });
  console.log('new contact status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/12a-customer.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // The tenant admin tightens its instructions: operator access now needs its approval.
  await login(page, admin);
  await page.click('#nav button:text("Administration")');
  await page.waitForSelector('button:text("Save instructions")', { timeout: 10000 });
  await page.check('label:has-text("operator access needs") input');
  await page.click('button:text("Save instructions")');
  await page.waitForTimeout(800);
  console.log('instructions status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/13-tenant-admin.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // Incidents (start the demo with STRONGROOM_WATCH_MASS_READ_RECORDS=3 and STRONGROOM_WATCH_MASS_READ_CUSTOMER_FACTOR=1 so that the tenant admin's
  // lists above are a mass read): the tenant admin sees theirs, a security officer closes one.
  await login(page, admin);
  await page.click('#nav button:text("Incidents")');
  await page.waitForSelector('h1:text("Incidents about us")', { timeout: 10000 });
  await page.waitForTimeout(800);
  console.log('tenant incidents (rows):', await page.locator('table tbody tr').count());
  await page.screenshot({ path: outDir + '/13a-tenant-incidents.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  const officer = Object.keys(creds).find((u) => creds[u].role === 'security_officer');
  await login(page, officer);
  await page.click('#nav button:text("Incidents")');
  await page.waitForSelector('button:text("Close")', { timeout: 15000 });
  console.log('open incidents (rows):', await page.locator('table tbody tr').count());
  await page.locator('td select').first().selectOption('false_positive');
  await page.locator('button:text("Close")').first().click();
  await page.waitForTimeout(800);
  console.log('close status:', JSON.stringify(await statusText(page)));
  await page.screenshot({ path: outDir + '/13b-officer-incidents.png', fullPage: true });
  await page.click('#who button:text("Sign out")');
  await page.waitForSelector('input[name=username]');
  // The platform admin creates a tenant and a customer user in it, suspends and reactivates them.
  if (process.env.ADMIN_PASSWORD) {
    creds.admin = { password: process.env.ADMIN_PASSWORD, role: 'platform_admin' };
    await login(page, 'admin');
    await page.click('#nav button:text("Administration")');
    await page.waitForSelector('button:text("Create tenant")');
    await page.fill('section:has(h2:text("New tenant")) input[maxlength="200"]', 'Initech');
    await page.click('button:text("Create tenant")');
    await page.waitForTimeout(800);
    const created = await statusText(page);
    console.log('tenant status:', JSON.stringify(created));
    const newTenant = (created.match(/Tenant (\S+) created/) || [])[1];
    const user = 'initech.user' + Date.now() % 100000;
    const newUser = page.locator('section:has(h2:text("New user"))');
    await newUser.locator('input').nth(0).fill(user);
    await newUser.locator('input').nth(1).fill('Initech User');
    await newUser.locator('input[type=password]').fill('correct horse battery staple ' + Date.now());
    await newUser.locator('input[placeholder="customers only"]').fill(newTenant);
    await page.click('button:text("Create user")');
    await page.waitForTimeout(800);
    const made = await statusText(page);
    console.log('user status:', JSON.stringify(made));
    const userId = (made.match(/\((\S+)\)/) || [])[1];
    await page.fill('input[placeholder="user id"]', userId);
    await page.click('section:has(h2:text("A user")) button:text("Open")');
    await page.waitForSelector('button:text-is("Suspend")', { timeout: 10000 });
    await page.click('button:text-is("Suspend")');
    await page.waitForSelector('button:text("Reactivate")', { timeout: 10000 });
    console.log('suspend status:', JSON.stringify(await statusText(page)));
    await page.click('button:text("Reactivate")');
    await page.waitForSelector('button:text-is("Suspend")', { timeout: 10000 });
    console.log('reactivate status:', JSON.stringify(await statusText(page)));
    page.on('dialog', (dialog) => dialog.accept());
    await page.fill('input[placeholder="tenant id"]', newTenant);
    await page.click('section:has(h2:text("A tenant")) button:text("Open")');
    await page.waitForSelector('button:text("Rotate keys")', { timeout: 10000 });
    await page.click('button:text("Rotate keys")');
    await page.waitForTimeout(800);
    console.log('rotate status:', JSON.stringify(await statusText(page)));
    await page.click('button:text("Start a review")');
    await page.waitForSelector('button:text("Certify")', { timeout: 10000 });
    console.log('review status:', JSON.stringify(await statusText(page)));
    await page.locator('button:text("Certify")').first().click();
    await page.waitForTimeout(800);
    console.log('certify status:', JSON.stringify(await statusText(page)));
    await page.click('button:text("Dry run")');
    await page.waitForTimeout(800);
    console.log('sweep status:', JSON.stringify(await statusText(page)));
    await page.screenshot({ path: outDir + '/14-platform-admin.png', fullPage: true });
  }
  console.log('problems:', problems.length ? problems : 'none');
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
