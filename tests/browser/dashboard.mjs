// The dashboard in Debian's headless Chromium, driven by playwright-core.
//
// tests/integration/test_dashboard.py starts a controller and workers and
// runs this script with:
//   SHOAL_URL        the controller's base URL
//   DASH_MODE        "main" (jobs, tasks, workers, the form) or "token"
//   DASH_RELEASE     the file whose creation lets the gated tasks end
//   DASH_TOKEN       the API token (mode "token")
//   DASH_ARTIFACTS   the directory for screenshots
// It exits 0 when every check holds and prints what failed otherwise.
// No assertion depends on timing: every wait is for a state the page must
// reach, bounded so a broken page fails instead of hanging.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE = process.env.SHOAL_URL;
const MODE = process.env.DASH_MODE || 'main';
const RELEASE = process.env.DASH_RELEASE;
const TOKEN = process.env.DASH_TOKEN || '';
const ARTIFACTS = process.env.DASH_ARTIFACTS || os.tmpdir();
const WAIT = 60000;              // bound of any single wait, in ms

function log(...args) {
  console.log('[dashboard]', ...args);
}

async function api(method, route, body, headers) {
  const h = Object.assign({}, headers || {});
  if (TOKEN) h['X-Shoal-Token'] = TOKEN;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(BASE + route, {
    method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// Every console error, page error, failed request and HTTP error answer,
// so the test can fail on any it did not expect.
function watchProblems(page) {
  const problems = [];
  const allowed = [];            // {status, url} answers a check expects
  const inflight = new Set();    // requests sent and not yet answered
  page.on('request', (req) => inflight.add(req));
  page.on('requestfinished', (req) => inflight.delete(req));
  page.on('requestfailed', (req) => inflight.delete(req));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const url = (msg.location() && msg.location().url) || '';
    problems.push({ kind: 'console', text: msg.text(), url });
  });
  page.on('pageerror', (err) => problems.push({ kind: 'pageerror', text: String(err) }));
  page.on('requestfailed', (req) => {
    const failure = req.failure() ? req.failure().errorText : '';
    // The event stream is aborted on purpose when the page is closed.
    if (failure === 'net::ERR_ABORTED' && req.url().includes('/api/v1/events')) return;
    problems.push({ kind: 'requestfailed', text: failure, url: req.url() });
  });
  page.on('response', (res) => {
    if (res.status() >= 400)
      problems.push({ kind: 'http', status: res.status(), url: res.url(), text: res.statusText() });
  });
  return {
    allow(status, urlPart) { allowed.push({ status, urlPart }); },
    // Resolves once no request is open (bounded by WAIT).
    async settled() {
      const deadline = Date.now() + WAIT;
      while (inflight.size) {
        assert.ok(Date.now() < deadline, 'requests still open: '
                  + [...inflight].map((r) => r.url()).join(', '));
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    unexpected() {
      return problems.filter((p) => {
        const ok = allowed.find((a) => p.url && p.url.includes(a.urlPart)
          && (p.kind === 'console' ? p.text.includes('status of ' + a.status) : p.status === a.status));
        return !ok;
      });
    },
    all: problems,
  };
}

// A fresh profile for every run (playwright passes it as --user-data-dir).
async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
           '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  return { context, profile };
}

async function waitLive(page) {
  await page.locator('#conn[data-state="live"]').waitFor({ timeout: WAIT });
}

// The job's row, once it shows `state` with every stage bar full.
async function waitJobDone(page, id, state) {
  const row = page.locator(`#jobs-body tr[data-job="${id}"]`);
  await row.locator(`.badge.s-${state}`).waitFor({ timeout: WAIT });
  const bars = await row.locator('.bar[role="progressbar"]').evaluateAll((nodes) =>
    nodes.map((n) => ({ done: Number(n.dataset.done), total: Number(n.dataset.total),
                        state: n.dataset.state, now: n.getAttribute('aria-valuenow'),
                        max: n.getAttribute('aria-valuemax') })));
  return bars;
}

async function mainMode(page, problems) {
  await page.goto(BASE + '/');
  await waitLive(page);
  await page.evaluate(() => { window.__noReload = true; });

  // Workers with their slots.
  for (const name of ['w1', 'w2']) {
    const item = page.locator(`#workers li[data-worker="${name}"]`);
    await item.waitFor({ timeout: WAIT });
    assert.match(await item.locator('.worker-slots').innerText(), /^0\/2 slots$/);
    assert.equal(await item.locator('.badge').innerText(), 'connected');
  }
  log('workers shown');

  // A job submitted over REST appears, runs and ends without a reload.
  const modes = 'ok-on-release,ok-on-release,ok-on-release';
  const submitted = await api('POST', '/api/v1/jobs', { job: 'fan', params: { modes } });
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
  const id = submitted.body.id;
  const row = page.locator(`#jobs-body tr[data-job="${id}"]`);
  await row.waitFor({ timeout: WAIT });
  // Its three spawned tasks hold their slots until released: the first
  // bar shows them running, and the workers show the load.
  await page.waitForFunction((jobId) => {
    const bar = document.querySelector(`#jobs-body tr[data-job="${jobId}"] .bar[role="progressbar"]`);
    return bar && bar.querySelectorAll('.seg.run').length === 1 && bar.dataset.total === '4'
      && bar.dataset.done === '1';
  }, id, { timeout: WAIT });
  await page.waitForFunction(() => {
    const slots = [...document.querySelectorAll('#workers .worker-slots')].map((n) => n.textContent);
    // 3 tasks on 2 workers of 2 slots: 2 or 3 run (one may wait queued)
    return slots.reduce((sum, t) => sum + Number(t.split('/')[0]), 0) >= 2;
  }, null, { timeout: WAIT });
  assert.equal(await row.locator('.badge.s-running').count(), 1);
  log('job', id, 'shown running live');
  fs.writeFileSync(RELEASE, '');
  const bars = await waitJobDone(page, id, 'succeeded');
  assert.equal(bars.length, 2);
  assert.deepEqual(bars.map((b) => [b.done, b.total, b.state]),
                   [[4, 4, 'succeeded'], [1, 1, 'succeeded']]);
  for (const b of bars) assert.equal(b.now, b.max);
  assert.deepEqual(await row.locator('.stage-count').allInnerTexts(), ['4/4', '1/1']);
  log('job', id, 'succeeded, bars full');

  // Its tasks: state, exit code, worker, and a log.
  await row.locator('button.job-open').click();
  await page.locator('#detail:not([hidden])').waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelectorAll('#tasks-body tr').length === 5,
                             null, { timeout: WAIT });
  const tasks = await page.locator('#tasks-body tr').evaluateAll((rows) => rows.map((r) => ({
    state: r.querySelector('.badge').textContent,
    exit: r.children[4].textContent,
    worker: r.children[5].textContent,
  })));
  const rest = await api('GET', `/api/v1/jobs/${id}/tasks`);
  assert.equal(tasks.length, rest.body.tasks.length);
  rest.body.tasks.sort((a, b) => a.id - b.id).forEach((t, i) => {
    assert.equal(tasks[i].state, 'succeeded');
    assert.equal(tasks[i].exit, '0');
    assert.equal(tasks[i].worker, t.worker);
    assert.ok(['w1', 'w2'].includes(tasks[i].worker), tasks[i].worker);
  });
  const worked = rest.body.tasks.find((t) => t.kind !== 'spawn' && t.stage_index === 0);
  await page.locator(`#tasks-body tr[data-task="${worked.id}"] button`, { hasText: 'View' }).click();
  await page.waitForFunction(() => /done w-\d/.test(document.getElementById('log-text').textContent),
                             null, { timeout: WAIT });
  log('tasks and a log shown');
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-job.png'), fullPage: true });

  // The form: a missing parameter is refused next to its input...
  problems.allow(400, '/api/v1/jobs');
  await page.selectOption('#f-job', 'greet');
  await page.locator('#p-greeting').waitFor({ timeout: WAIT });
  assert.equal(await page.locator('label[for="h-Authorization"]').count(), 1);
  await page.fill('#h-Authorization', 'Basic ZGVtbzpkZW1v');
  await page.click('#f-submit');
  const fieldError = page.locator('#p-greeting-error');
  await fieldError.waitFor({ state: 'visible', timeout: WAIT });
  assert.match(await fieldError.innerText(), /greeting/);
  assert.equal(await page.getAttribute('#p-greeting', 'aria-invalid'), 'true');
  assert.match(await page.locator('#form-error').innerText(), /params\.greeting/);
  log('form error shown next to the field');

  // ...and a complete one creates a job that succeeds.
  await page.fill('#p-greeting', 'hello');
  await page.fill('#h-Authorization', 'Basic ZGVtbzpkZW1v');
  await page.click('#f-submit');
  await page.locator('#form-ok').filter({ hasText: 'Submitted job' }).waitFor({ timeout: WAIT });
  const formId = (await page.locator('#form-ok').innerText()).match(/job (\S+)\./)[1];
  await waitJobDone(page, formId, 'succeeded');
  const formJob = await api('GET', `/api/v1/jobs/${formId}`);
  assert.equal(formJob.body.job, 'greet');
  assert.equal(formJob.body.state, 'succeeded');
  assert.equal(formJob.body.params.greeting, 'hello');
  assert.equal(formJob.body.params.auth, '***');
  assert.equal(await page.locator('#form-error').isHidden(), true);
  log('form job', formId, 'succeeded');

  // A REST answer can reach the page after the stream's events newer than
  // it (a short job ends while its 201 is on the way). Such a late, older
  // answer must not put the job back. Here the submission's answer is held
  // until the page shows the job succeeded, then given as a view from
  // before it ran (state running, event id 0), and so is the job's view
  // that selecting it fetches.
  let lateId = null;
  let viewServed;
  const viewGiven = new Promise((resolve) => { viewServed = resolve; });
  const stale = async (route, response, body) => route.fulfill({
    response,
    headers: Object.assign({}, response.headers(), { 'x-shoal-event-id': '0' }),
    json: Object.assign({}, body, { state: 'running' }),
  });
  await page.route('**/api/v1/jobs', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const response = await route.fetch();
    const body = await response.json();
    lateId = body.id;
    await page.locator(`#jobs-body tr[data-job="${body.id}"] .badge.s-succeeded`)
      .waitFor({ timeout: WAIT });
    await stale(route, response, body);
  });
  await page.route('**/api/v1/jobs/*', async (route) => {
    if (!lateId || !route.request().url().endsWith('/api/v1/jobs/' + lateId))
      return route.continue();
    const response = await route.fetch();
    await stale(route, response, await response.json());
    viewServed();
  });
  await page.fill('#p-greeting', 'late');
  await page.fill('#h-Authorization', 'Basic ZGVtbzpkZW1v');
  await page.click('#f-submit');
  await page.locator('#form-ok')
    .filter({ hasText: new RegExp('Submitted job (?!' + formId + ')') })
    .waitFor({ timeout: WAIT });
  assert.notEqual(lateId, formId);
  // The page selects the job it submitted and fetches its view; then
  // two frames, as it renders on the next one after applying it.
  await Promise.race([viewGiven, new Promise((_, reject) => setTimeout(
    () => reject(new Error('the submitted job was not fetched')), WAIT))]);
  await page.evaluate(() => new Promise((r) =>
    requestAnimationFrame(() => requestAnimationFrame(() => r()))));
  await page.unroute('**/api/v1/jobs');
  await page.unroute('**/api/v1/jobs/*');
  const lateRow = page.locator(`#jobs-body tr[data-job="${lateId}"]`);
  assert.equal(await lateRow.locator('.badge.s-succeeded').count(), 1,
               'a late answer older than the stream put the job back');
  log('a late, older answer leaves job', lateId, 'as the stream showed it');

  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page reloaded');
  // The screenshot of record: the fan job's details over the job list.
  await row.locator('button.job-open').click();
  await page.waitForFunction(() => document.querySelectorAll('#tasks-body tr').length === 5,
                             null, { timeout: WAIT });
  await page.locator(`#tasks-body tr[data-task="${worked.id}"] button`, { hasText: 'View' }).click();
  await page.waitForFunction(() => /done w-\d/.test(document.getElementById('log-text').textContent),
                             null, { timeout: WAIT });
  // Every task has ended: the workers' load falls back to nothing.
  await page.waitForFunction(() => {
    const slots = [...document.querySelectorAll('#workers .worker-slots')].map((n) => n.textContent);
    return slots.length === 2 && slots.every((t) => t === '0/2 slots');
  }, null, { timeout: WAIT });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // A job with more tasks than one page (500): the first page is shown,
  // the rest come with "Load more tasks", never all at once.
  const wideCount = 520;
  const wide = await api('POST', '/api/v1/jobs',
                         { job: 'wide', params: { modes: Array(wideCount).fill('ok').join(',') } });
  assert.equal(wide.status, 201, JSON.stringify(wide.body));
  const wideRow = page.locator(`#jobs-body tr[data-job="${wide.body.id}"]`);
  await waitJobDone(page, wide.body.id, 'succeeded');
  await wideRow.locator('button.job-open').click();
  await page.waitForFunction(() => document.querySelectorAll('#tasks-body tr').length === 500,
                             null, { timeout: WAIT });
  const more = page.locator('#tasks-load-more');
  await more.waitFor({ state: 'visible', timeout: WAIT });
  assert.match(await page.locator('#tasks-more').innerText(),
               new RegExp('first 500 of ' + (wideCount + 1) + ' tasks'));
  await more.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-more-tasks.png') });
  await more.click();
  await page.waitForFunction((n) => document.querySelectorAll('#tasks-body tr').length === n,
                             wideCount + 1, { timeout: WAIT });
  await more.waitFor({ state: 'hidden', timeout: WAIT });
  assert.equal(await page.locator('#tasks-more').isHidden(), true);
  const ids = await page.locator('#tasks-body tr').evaluateAll(
    (rows) => rows.map((r) => Number(r.dataset.task)));
  assert.deepEqual(ids, [...Array(wideCount + 1).keys()]);
  log('a wide job shown a page at a time');
}

async function tokenMode(page, problems) {
  problems.allow(401, '/api/v1/');
  await page.goto(BASE + '/');
  const dialog = page.locator('#token-dialog[open]');
  await dialog.waitFor({ timeout: WAIT });
  assert.equal(await page.locator('label[for="token-input"]').innerText(), 'API token');
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-token.png') });
  // A wrong token is refused and asked for again.
  await page.fill('#token-input', 'not-the-token');
  await page.click('#token-submit');
  await page.locator('#token-error:not([hidden])').waitFor({ timeout: WAIT });
  assert.match(await page.locator('#token-error').innerText(), /refused/);
  // Every request made with the wrong token has had its 401 (the page
  // sends none while it asks); from here on nothing may fail.
  await problems.settled();
  const before = problems.all.length;
  await page.fill('#token-input', TOKEN);
  await page.click('#token-submit');
  await waitLive(page);
  assert.equal(await page.locator('#token-dialog').evaluate((d) => d.open), false);
  await page.locator('#workers li[data-worker="w1"]').waitFor({ timeout: WAIT });
  const submitted = await api('POST', '/api/v1/jobs', { job: 'fan', params: { modes: 'ok,ok' } });
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
  const bars = await waitJobDone(page, submitted.body.id, 'succeeded');
  assert.deepEqual(bars.map((b) => [b.done, b.total]), [[3, 3], [1, 1]]);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('shoal.token')), TOKEN);
  // The token is kept for the tab: a reload does not ask again.
  await page.reload();
  await waitLive(page);
  assert.equal(await page.locator('#token-dialog').evaluate((d) => d.open), false);
  await page.locator(`#jobs-body tr[data-job="${submitted.body.id}"]`).waitFor({ timeout: WAIT });
  const after = problems.all.slice(before);
  assert.deepEqual(after, [], 'errors after the token was given: ' + JSON.stringify(after));
  log('token asked for, kept, and used');
}

async function main() {
  assert.ok(BASE, 'SHOAL_URL is not set');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const { context, profile } = await launch();
  let page;
  try {
    page = context.pages()[0] || await context.newPage();
    const problems = watchProblems(page);
    if (MODE === 'token') await tokenMode(page, problems);
    else await mainMode(page, problems);
    const unexpected = problems.unexpected();
    assert.deepEqual(unexpected, [], 'unexpected errors: ' + JSON.stringify(unexpected, null, 1));
  } catch (err) {
    if (page) {
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-failure-' + MODE + '.png'),
                              fullPage: true }).catch(() => {});
    }
    throw err;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(() => {
  log(MODE, 'ok');
}, (err) => {
  console.error('[dashboard] FAILED:', err && err.stack ? err.stack : err);
  process.exitCode = 1;
});
