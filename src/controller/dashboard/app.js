/*  shoal dashboard: jobs, stages, tasks and workers of one controller,
    kept live from its event stream.

    The state is a snapshot over REST (each answer says, in the
    X-Shoal-Event-Id header, the last event it already shows), then the
    stream /api/v1/events from the smallest of those ids. Every event
    carries the whole object, so applying one is replacing a copy. The
    stream is read with fetch() rather than EventSource, which cannot send
    the X-Shoal-Token header. A controller without the stream is polled.
    No framework, no build step: the controller serves this file as is. */
'use strict';

(function () {
  const TOKEN_KEY = 'shoal.token';
  const JOBS_LIMIT = 100;          // jobs asked for in the snapshot
  const JOBS_KEPT = 200;           // ended jobs beyond this are dropped
  const TASK_PAGE = 500;           // tasks asked for at once, for one job
  const LOG_BYTES = 256 * 1024;    // tail of a log shown in the page
  const POLL_MS = 2000;            // refresh period without a stream
  const RETRY_MAX_MS = 15000;      // longest wait between reconnects
  const WORKERS_MS = 1000;         // worker load refresh after task changes
  const WORKERS_IDLE_MS = 10000;   // and at least this often (heartbeats)
  const ENDED = new Set(['succeeded', 'failed', 'canceled']);

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    defs: null,                    // GET /api/v1/definitions
    jobs: new Map(),               // id -> job
    jobSeen: new Map(),            // id -> event id its copy shows
    workers: new Map(),            // id -> worker
    selected: null,                // id of the job in the detail panel
    tasks: null,                   // Map task id -> task of the selected job
    tasksPending: null,            // task events held while its tasks load
    tasksEnd: Infinity,            // task ids from here on are not loaded
    tasksWanted: TASK_PAGE,        // most tasks kept for the selected job
    tasksLoading: false,           // a "Load more" request is under way
    lastEventId: null,             // last event applied (null: no stream)
    generation: 0,                 // bumped to abandon a stream or a poll
    retryMs: 1000,
    filter: 'all',
    logTask: null,                 // task id whose log is shown
    workersDue: 0,                 // when to reload the workers (0: idle)
    workersAt: Date.now(),         // when they were last loaded
    lastWorkerEventId: 0,          // id of the last worker event applied
    renderQueued: false,
    loaded: false,                 // a snapshot has been applied
  };

  const $ = (id) => document.getElementById(id);

  // ---- small DOM helpers ------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function badge(value) {
    return el('span', { class: 'badge s-' + value, text: value });
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return '–';
    if (ms < 1000) return Math.max(0, Math.round(ms)) + ' ms';
    const s = ms / 1000;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' m ' + Math.floor(s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' m';
  }

  function since(iso) {
    if (!iso) return '–';
    const s = Math.floor((Date.now() - Date.parse(iso)) / 1000);
    if (isNaN(s)) return '–';
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  function jobDuration(job) {
    if (!job.started_at) return null;
    const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    return end - Date.parse(job.started_at);
  }

  function timeEl(iso) {
    return el('time', { datetime: iso || null, title: iso || null, 'data-since': iso || null },
              since(iso));
  }

  // ---- the API ----------------------------------------------------------

  class Problem extends Error {
    constructor(status, body) {
      super((body && (body.detail || body.title)) || ('HTTP ' + status));
      this.status = status;
      this.body = body || {};
    }
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (state.token) h['X-Shoal-Token'] = state.token;
    return h;
  }

  // A JSON answer with the event id it carries. A 401 asks for the token
  // and throws; other errors throw a Problem with the problem's fields.
  async function api(path, options) {
    const opts = Object.assign({ cache: 'no-store' }, options || {});
    opts.headers = headers(opts.headers);
    const res = await fetch(path, opts);
    const type = res.headers.get('Content-Type') || '';
    let body = null;
    if (type.includes('json')) body = await res.json().catch(() => null);
    else if (type.startsWith('text/')) body = await res.text();
    if (res.status === 401) {
      askToken(state.token ? 'The token was refused. Enter the right one.' : null);
      throw new Problem(401, body);
    }
    if (!res.ok) throw new Problem(res.status, body);
    const id = res.headers.get('X-Shoal-Event-Id');
    return { body: body, eventId: id === null ? null : Number(id), res: res };
  }

  // ---- the token --------------------------------------------------------

  function askToken(message) {
    state.generation++;            // stop the stream and polls meanwhile
    setConn('auth', 'Token needed');
    const dialog = $('token-dialog');
    const error = $('token-error');
    error.hidden = !message;
    error.textContent = message || '';
    $('token-input').setAttribute('aria-invalid', message ? 'true' : 'false');
    if (!dialog.open) dialog.showModal();
    $('token-input').focus();
  }

  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) {
      $('token-error').hidden = false;
      $('token-error').textContent = 'Enter the token.';
      return;
    }
    state.token = value;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token-input').value = '';
    $('token-dialog').close();
    start();
  });

  // The dialog cannot be dismissed: without the token there is nothing
  // to show.
  $('token-dialog').addEventListener('cancel', (event) => event.preventDefault());

  // ---- connection status ------------------------------------------------

  function setConn(kind, text) {
    $('conn').dataset.state = kind;
    setText($('conn-text'), text);
  }

  // ---- snapshot, stream, polling ----------------------------------------

  async function loadSnapshot() {
    const [defs, jobs, workers] = await Promise.all([
      state.defs ? Promise.resolve(null) : api('/api/v1/definitions'),
      api('/api/v1/jobs?limit=' + JOBS_LIMIT),
      api('/api/v1/workers'),
    ]);
    if (defs) {
      state.defs = defs.body;
      buildForm();
    }
    state.jobs = new Map(jobs.body.jobs.map((j) => [j.id, j]));
    state.jobSeen = new Map(jobs.eventId === null ? []
      : jobs.body.jobs.map((j) => [j.id, jobs.eventId]));
    state.workers = new Map(workers.body.workers.map((w) => [w.id, w]));
    state.loaded = true;
    let ids = [jobs.eventId, workers.eventId];
    if (state.selected) {
      const sel = await loadSelected();
      if (sel !== undefined) ids.push(sel);
    }
    scheduleRender();
    if (ids.some((id) => id === null || isNaN(id))) return null;
    return Math.min(...ids);
  }

  // The URL of the page of a job's tasks that starts at task `from`. A
  // job may have a million tasks: the page never asks for more than a
  // screenful, and "Load more" asks for the next one.
  function tasksUrl(id, limit, from) {
    return '/api/v1/jobs/' + encodeURIComponent(id) + '/tasks?limit=' + limit +
      (from ? '&cursor=' + from : '');
  }

  // Where the loaded tasks end, from a page's `next`.
  function pageEnd(next) {
    return next === null || next === undefined ? Infinity : Number(next);
  }

  // Applies the task events held while a page loaded: those after the
  // page's own event id.
  function releaseHeld(eventId) {
    const held = state.tasksPending || [];
    state.tasksPending = null;
    for (const ev of held)
      if (eventId === null || ev.id > eventId) applyTask(ev.data);
  }

  // Loads the selected job and its first tasks (as many as were shown
  // already); returns the lowest event id.
  async function loadSelected() {
    const id = state.selected;
    state.tasksPending = [];
    try {
      const [job, tasks] = await Promise.all([
        api('/api/v1/jobs/' + encodeURIComponent(id)),
        api(tasksUrl(id, Math.min(state.tasksWanted, 10000), 0)),
      ]);
      if (state.selected !== id) return undefined;
      applyJob(job.body, job.eventId);
      state.tasks = new Map(tasks.body.tasks.map((t) => [t.id, t]));
      state.tasksEnd = pageEnd(tasks.body.next);
      releaseHeld(tasks.eventId);
      scheduleRender();
      if (job.eventId === null || tasks.eventId === null) return null;
      return Math.min(job.eventId, tasks.eventId);
    } catch (err) {
      state.tasksPending = null;
      state.tasksLoading = false;
      if (err instanceof Problem && err.status === 404) {
        state.jobs.delete(id);
        select(null);
        return undefined;
      }
      throw err;
    }
  }

  // (Re)starts everything: snapshot, then the stream or polling.
  async function start() {
    const gen = ++state.generation;
    setConn('connecting', 'Connecting');
    let from;
    try {
      from = await loadSnapshot();
    } catch (err) {
      if (gen !== state.generation) return;
      if (err instanceof Problem && err.status === 401) return;
      setConn('down', 'Controller unreachable');
      retryLater(gen);
      return;
    }
    if (gen !== state.generation) return;
    state.retryMs = 1000;
    if (from === null) poll(gen);
    else stream(gen, from);
  }

  function retryLater(gen, ms) {
    const wait = ms || state.retryMs;
    state.retryMs = Math.min(state.retryMs * 2, RETRY_MAX_MS);
    setTimeout(() => { if (gen === state.generation) start(); }, wait);
  }

  // Without an event stream: reload the snapshot every POLL_MS.
  async function poll(gen) {
    setConn('poll', 'Polling');
    while (gen === state.generation) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (gen !== state.generation) return;
      try {
        await loadSnapshot();
        setConn('poll', 'Polling');
      } catch (err) {
        if (err instanceof Problem && err.status === 401) return;
        setConn('down', 'Controller unreachable');
      }
    }
  }

  async function stream(gen, from) {
    state.lastEventId = from;
    let reconnectMs = null;
    while (gen === state.generation) {
      const controller = new AbortController();
      const watch = setInterval(() => {
        if (gen !== state.generation) controller.abort();
      }, 500);
      try {
        const res = await fetch('/api/v1/events?last_event_id=' + state.lastEventId, {
          headers: headers({ Accept: 'text/event-stream' }),
          cache: 'no-store',
          signal: controller.signal,
        });
        if (res.status === 401) {
          askToken(state.token ? 'The token was refused. Enter the right one.' : null);
          return;
        }
        if (res.status === 404) {       // a controller without the stream
          poll(gen);
          return;
        }
        if (!res.ok || !res.body) {
          const after = Number(res.headers.get('Retry-After'));
          reconnectMs = after > 0 ? after * 1000 : state.retryMs;
          throw new Error('stream answered ' + res.status);
        }
        setConn('live', 'Live');
        state.retryMs = 1000;
        await readStream(res.body, gen);
      } catch (err) {
        if (gen !== state.generation) return;
      } finally {
        clearInterval(watch);
      }
      if (gen !== state.generation) return;
      setConn('down', 'Reconnecting');
      const wait = reconnectMs || state.retryMs;
      reconnectMs = null;
      state.retryMs = Math.min(state.retryMs * 2, RETRY_MAX_MS);
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  // Server-Sent Events framing: "field: value" lines, an event per blank
  // line, ":" starts a comment (the keep-alive).
  async function readStream(body, gen) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let event = { id: null, type: 'message', data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done || gen !== state.generation) {
        reader.cancel().catch(() => {});
        return;
      }
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        let line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (event.data.length) dispatch(event);
          if (gen !== state.generation) return;
          event = { id: null, type: 'message', data: [] };
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'id') event.id = val;
        else if (field === 'event') event.type = val;
        else if (field === 'data') event.data.push(val);
      }
    }
  }

  function dispatch(event) {
    let data;
    try {
      data = JSON.parse(event.data.join('\n'));
    } catch (err) {
      return;
    }
    const id = event.id === null ? null : Number(event.id);
    if (event.type === 'reset') {
      // The events after our id are gone: take a new snapshot.
      start();
      return;
    }
    if (id !== null && !isNaN(id)) state.lastEventId = id;
    if (event.type === 'job') applyJob(data, id);
    else if (event.type === 'stage') applyStage(data, id);
    else if (event.type === 'task') {
      if (data.job === state.selected && state.tasksPending)
        state.tasksPending.push({ id: id, data: data });
      else applyTask(data);
      // Worker events tell joins, drains and departures; a worker's load
      // moves with its tasks, so reload the workers soon after.
      if (!state.workersDue) state.workersDue = Date.now() + WORKERS_MS;
    }
    else if (event.type === 'worker') {
      applyWorker(data);
      if (id !== null && !isNaN(id)) state.lastWorkerEventId = id;
    }
    scheduleRender();
  }

  // A job's copy, from the stream or from a REST answer, with the event
  // id it shows. A REST answer can reach the page after stream events
  // newer than it (a short job may end while its 201 is on its way):
  // such an answer is older than the copy and is dropped, or the job
  // would show a state it has left, with no event to come and mend it.
  function applyJob(job, eventId) {
    const known = eventId !== null && eventId !== undefined && !isNaN(eventId);
    const seen = state.jobSeen.get(job.id);
    if (known && seen !== undefined && seen > eventId) return;
    state.jobs.set(job.id, job);
    if (known) state.jobSeen.set(job.id, eventId);
    trimJobs();
  }

  function applyStage(ev, eventId) {
    const job = state.jobs.get(ev.job);
    if (!job || !Array.isArray(job.stages)) return;
    if (eventId !== null && !isNaN(eventId)) state.jobSeen.set(ev.job, eventId);
    const stage = Object.assign({}, ev);
    delete stage.job;
    delete stage.index;
    job.stages[ev.index] = stage;
  }

  // Appends the next page of the selected job's tasks.
  async function loadMoreTasks() {
    const id = state.selected;
    if (!id || !state.tasks || state.tasksEnd === Infinity || state.tasksLoading) return;
    state.tasksLoading = true;
    state.tasksPending = [];
    scheduleRender();
    try {
      const page = await api(tasksUrl(id, TASK_PAGE, state.tasksEnd));
      if (state.selected !== id || !state.tasks) return;
      for (const t of page.body.tasks) state.tasks.set(t.id, t);
      state.tasksWanted += TASK_PAGE;
      state.tasksEnd = pageEnd(page.body.next);
      releaseHeld(page.eventId);
    } catch (err) {
      state.tasksPending = null;
    } finally {
      state.tasksLoading = false;
      scheduleRender();
    }
  }

  // Tasks past the loaded ones are left out, so a job fanning out to a
  // million tasks does not grow the page by a million rows: they wait
  // for "Load more".
  function applyTask(ev) {
    if (ev.job !== state.selected || !state.tasks) return;
    if (ev.id >= state.tasksEnd) return;
    if (!state.tasks.has(ev.id) && state.tasks.size >= state.tasksWanted) {
      state.tasksEnd = ev.id;
      return;
    }
    const old = state.tasks.get(ev.id) || {};
    const task = Object.assign({}, old, ev);
    delete task.job;
    state.tasks.set(ev.id, task);
  }

  // The workers over REST, applied unless the stream has already shown
  // a worker change later than that answer.
  async function refreshWorkers(gen) {
    state.workersDue = 0;
    try {
      const res = await api('/api/v1/workers');
      if (gen !== state.generation) return;
      if (res.eventId !== null && res.eventId < state.lastWorkerEventId) return;
      state.workers = new Map(res.body.workers.map((w) => [w.id, w]));
      scheduleRender();
    } catch (err) {
      // the stream's own reconnects report a controller that is down
    }
  }

  setInterval(() => {
    if (state.lastEventId === null || $('conn').dataset.state !== 'live') return;
    const now = Date.now();
    if ((state.workersDue && now >= state.workersDue) || now - state.workersAt >= WORKERS_IDLE_MS) {
      state.workersAt = now;
      refreshWorkers(state.generation);
    }
  }, 250);

  function applyWorker(worker) {
    if (worker.state === 'gone') state.workers.delete(worker.id);
    else state.workers.set(worker.id, worker);
  }

  // Keeps every active job and the newest ended ones.
  function trimJobs() {
    if (state.jobs.size <= JOBS_KEPT) return;
    const ended = [...state.jobs.values()]
      .filter((j) => ENDED.has(j.state) && j.id !== state.selected)
      .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
    for (const job of ended.slice(0, state.jobs.size - JOBS_KEPT)) {
      state.jobs.delete(job.id);
      state.jobSeen.delete(job.id);
    }
  }

  // ---- rendering ----------------------------------------------------------

  function scheduleRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    requestAnimationFrame(() => {
      state.renderQueued = false;
      render();
    });
  }

  function render() {
    renderSummary();
    renderJobs();
    renderDetail();
    renderWorkers();
  }

  function renderSummary() {
    let active = 0;
    let running = 0;
    for (const job of state.jobs.values()) {
      if (!ENDED.has(job.state)) active++;
      for (const stage of job.stages || []) running += stage.tasks ? stage.tasks.running : 0;
    }
    let slots = 0;
    let busy = 0;
    for (const w of state.workers.values()) {
      slots += w.slots;
      busy += Math.min(w.busy, w.slots);
    }
    setText($('sum-jobs'), String(active));
    setText($('sum-tasks'), String(running));
    setText($('sum-workers'), String(state.workers.size));
    setText($('sum-slots'), busy + ' / ' + slots);
  }

  function stageCounts(stage) {
    const t = stage.tasks || { total: 0, pending: 0, running: 0, succeeded: 0, failed: 0, canceled: 0 };
    return { t: t, done: t.succeeded + t.failed + t.canceled };
  }

  // One stage's bar: succeeded, failed, canceled and running segments
  // over the stage's task total, exposed as a progressbar.
  function stageBar(stage, large) {
    const { t, done } = stageCounts(stage);
    const name = stage.name;
    const total = t.total;
    const full = total === 0 && stage.state === 'succeeded';
    const bar = el('div', {
      class: 'bar' + (large ? ' large' : ''),
      role: 'progressbar',
      'aria-label': name + ': ' + done + ' of ' + total + ' tasks done, ' + stage.state,
      'aria-valuemin': 0,
      'aria-valuemax': Math.max(total, 1),
      'aria-valuenow': full ? 1 : done,
      'data-done': done,
      'data-total': total,
      'data-state': stage.state,
    });
    const part = (cls, n) => {
      if (!n && !(full && cls === 'ok')) return;
      const seg = el('span', { class: 'seg ' + cls });
      seg.style.width = (full ? 100 : (100 * n) / total) + '%';
      bar.append(seg);
    };
    part('ok', t.succeeded);
    part('fail', t.failed);
    part('cancel', t.canceled);
    part('run', t.running);
    return bar;
  }

  function stageRow(stage) {
    const { t, done } = stageCounts(stage);
    return el('div', { class: 'stage s-' + stage.state },
      el('div', { class: 'stage-label' },
        el('span', { class: 'stage-name', text: stage.name }),
        el('span', { class: 'stage-count', text: done + '/' + t.total + (t.failed ? ' · ' + t.failed + ' failed' : '') })),
      stageBar(stage, false));
  }

  function visibleJobs() {
    const all = [...state.jobs.values()].sort((a, b) =>
      (Date.parse(b.created_at) - Date.parse(a.created_at)) || (a.id < b.id ? 1 : -1));
    if (state.filter === 'active') return all.filter((j) => !ENDED.has(j.state));
    if (state.filter === 'ended') return all.filter((j) => ENDED.has(j.state));
    return all;
  }

  function jobName(job) {
    const def = state.defs && state.defs.jobs.find((d) => d.id === job.job);
    return def && def.name ? def.name : job.job;
  }

  // Rows are kept per job and rebuilt only when the job changed, so a
  // focused row keeps its focus while others update.
  const jobRows = new Map();       // id -> { row, job }

  function renderJobs() {
    const body = $('jobs-body');
    const jobs = visibleJobs();
    const seen = new Set();
    let prev = null;
    for (const job of jobs) {
      seen.add(job.id);
      let entry = jobRows.get(job.id);
      if (!entry) {
        entry = { row: el('tr', { 'data-job': job.id }), job: null, sig: '' };
        entry.row.addEventListener('click', (e) => {
          if (e.target.closest('button')) return;
          select(job.id);
        });
        jobRows.set(job.id, entry);
      }
      const sig = JSON.stringify(job) + (job.id === state.selected);
      if (entry.sig !== sig) {
        fillJobRow(entry.row, job);
        entry.sig = sig;
      }
      entry.row.classList.toggle('selected', job.id === state.selected);
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== entry.row) body.insertBefore(entry.row, want);
      prev = entry.row;
    }
    for (const [id, entry] of jobRows) {
      if (!seen.has(id)) {
        entry.row.remove();
        jobRows.delete(id);
      }
    }
    $('jobs-empty').hidden = jobs.length > 0;
    setText($('jobs-empty'), !state.loaded ? 'Loading…' : state.jobs.size
      ? 'No job matches this filter.' : 'No jobs yet. Submit one with the form.');
    // durations of running jobs move on
    for (const job of jobs) {
      if (!ENDED.has(job.state) && job.started_at) {
        const cell = jobRows.get(job.id).row.querySelector('.duration');
        if (cell) setText(cell, fmtDuration(jobDuration(job)));
      }
    }
  }

  function fillJobRow(row, job) {
    const open = el('button', {
      type: 'button', class: 'link job-open',
      'aria-label': 'Show job ' + job.id + ' (' + jobName(job) + ')',
      'aria-current': job.id === state.selected ? 'true' : null,
      onclick: () => select(job.id),
    }, el('span', { class: 'job-name', text: jobName(job) }),
       el('span', { class: 'mono job-id', text: job.id }));
    const stages = el('div', { class: 'stages' });
    for (const stage of job.stages || []) stages.append(stageRow(stage));
    row.replaceChildren(
      el('td', { class: 'col-job' }, open),
      el('td', { class: 'col-state' }, badge(job.state)),
      el('td', { class: 'col-stages' }, stages),
      el('td', { class: 'col-time' }, timeEl(job.created_at)),
      el('td', { class: 'num duration col-dur' }, fmtDuration(jobDuration(job))));
  }

  // ---- the detail panel -----------------------------------------------------

  function select(id) {
    if (state.selected === id) {
      if (id) $('detail-title').focus();
      return;
    }
    state.selected = id;
    state.tasks = null;
    state.tasksEnd = Infinity;
    state.tasksWanted = TASK_PAGE;
    state.tasksLoading = false;
    state.logTask = null;
    $('log').hidden = true;
    $('action-error').hidden = true;
    history.replaceState(null, '', id ? '#job=' + encodeURIComponent(id) : location.pathname);
    scheduleRender();
    if (!id) return;
    const gen = state.generation;
    loadSelected().then(() => {
      if (gen === state.generation) scheduleRender();
    }).catch(() => {});
    requestAnimationFrame(() => $('detail-title').focus());
  }

  const taskRows = new Map();      // task id -> { row, sig }
  let taskRowsJob = null;

  function renderDetail() {
    const panel = $('detail');
    const job = state.selected && state.jobs.get(state.selected);
    panel.hidden = !job;
    if (!job) return;
    setText($('detail-title'), jobName(job) + ' · ' + job.id);
    $('act-start').hidden = job.state !== 'created';
    $('act-cancel').hidden = ENDED.has(job.state);
    $('act-retry').hidden = job.state !== 'failed';

    const meta = $('detail-meta');
    const params = el('ul', { class: 'params' });
    for (const [k, v] of Object.entries(job.params || {}))
      params.append(el('li', { class: 'mono' }, el('span', { class: 'muted', text: k + '=' }), String(v)));
    if (!params.childElementCount) params.append(el('li', { text: 'none' }));
    const items = [
      ['State', badge(job.state)],
      ['Job class', el('span', { class: 'mono', text: job.job })],
      ['Created', timeEl(job.created_at)],
      ['Duration', fmtDuration(jobDuration(job))],
      ['Retries', String(job.retries || 0)],
      // The definitions it runs: kept from its submission when the file
      // has changed since (null without a state store).
      ['Definitions', job.definitions == null ? '\u2014' : 'version ' + job.definitions],
      ['Parameters', params],
    ];
    meta.replaceChildren(...items.map(([k, v]) =>
      el('div', { class: k === 'Parameters' ? 'wide' : null }, el('dt', { text: k }), el('dd', {}, v))));
    const error = $('detail-error');
    error.hidden = !job.error;
    error.textContent = job.error ? 'Error: ' + job.error : '';

    const cards = $('detail-stages');
    cards.replaceChildren(...(job.stages || []).map((stage, i) => {
      const { t, done } = stageCounts(stage);
      const counts = el('ul', { class: 'counts' });
      for (const k of ['succeeded', 'running', 'pending', 'failed', 'canceled'])
        if (t[k]) counts.append(el('li', { class: 's-' + k }, el('span', { class: 'dot', 'aria-hidden': 'true' }), t[k] + ' ' + k));
      return el('div', { class: 'stage-card' },
        el('div', { class: 'stage-card-head' },
          el('span', { class: 'stage-index', text: String(i + 1) }),
          el('span', { class: 'stage-name', text: stage.name }),
          badge(stage.state),
          el('span', { class: 'stage-count', text: done + '/' + t.total })),
        stageBar(stage, true),
        el('div', { class: 'stage-card-foot' },
          el('span', { class: 'mono muted', text: stage.task_class + (stage.spawn_task ? ' ← ' + stage.spawn_task : '') }),
          counts));
    }));
    renderTasks();
  }

  function renderTasks() {
    const body = $('tasks-body');
    if (taskRowsJob !== state.selected) {
      body.replaceChildren();
      taskRows.clear();
      taskRowsJob = state.selected;
    }
    const tasks = state.tasks ? [...state.tasks.values()].sort((a, b) => a.id - b.id) : [];
    const shown = tasks;
    const seen = new Set();
    let prev = null;
    for (const task of shown) {
      seen.add(task.id);
      let entry = taskRows.get(task.id);
      if (!entry) {
        entry = { row: el('tr', { 'data-task': task.id }), sig: '' };
        taskRows.set(task.id, entry);
      }
      const sig = JSON.stringify(task);
      if (entry.sig !== sig) {
        fillTaskRow(entry.row, task);
        entry.sig = sig;
      }
      const want = prev ? prev.nextSibling : body.firstChild;
      if (want !== entry.row) body.insertBefore(entry.row, want);
      prev = entry.row;
    }
    for (const [id, entry] of taskRows) {
      if (!seen.has(id)) {
        entry.row.remove();
        taskRows.delete(id);
      }
    }
    $('tasks-empty').hidden = tasks.length > 0;
    setText($('tasks-empty'), state.tasks ? 'No tasks yet.' : 'Loading tasks…');
    const job = state.jobs.get(state.selected);
    const total = job ? (job.stages || []).reduce((n, s) => n + ((s.tasks && s.tasks.total) || 0), 0) : 0;
    const more = !!state.tasks && state.tasksEnd !== Infinity;
    $('tasks-more').hidden = !more;
    setText($('tasks-more'), 'Showing the first ' + tasks.length + ' of ' + Math.max(total, tasks.length) + ' tasks.');
    $('tasks-load-more').hidden = !more;
    $('tasks-load-more').disabled = state.tasksLoading;
  }

  function fillTaskRow(row, task) {
    const label = task.kind === 'spawn' ? 'spawn' : (task.index === null ? 'task' : 'task ' + task.index);
    const exit = task.signal ? 'signal ' + task.signal : (task.exit_code === null || task.exit_code === undefined ? '–' : String(task.exit_code));
    const started = task.state !== 'pending' || task.attempts > 0;
    const logButton = el('button', {
      type: 'button', class: 'btn small ghost', disabled: !started,
      'aria-label': 'Show the log of task ' + task.id,
      onclick: () => showLog(task.id),
    }, 'View');
    row.replaceChildren(
      el('td', { class: 'num mono', text: String(task.id) }),
      el('td', { text: task.stage }),
      el('td', {}, el('span', { class: 'mono', text: task.task_class }), el('span', { class: 'muted', text: ' ' + label })),
      el('td', { class: 'col-state' }, badge(task.state),
        task.error ? el('span', { class: 'task-error', title: task.error, text: task.error }) : null),
      el('td', { class: 'num mono exit' + (task.exit_code ? ' bad' : ''), text: exit }),
      el('td', { class: 'mono', text: task.worker || '–' }),
      el('td', { class: 'num', text: String(task.attempts) }),
      el('td', { class: 'num', text: fmtDuration(task.duration_ms) }),
      el('td', {}, logButton));
  }

  async function showLog(taskId) {
    const job = state.selected;
    state.logTask = taskId;
    const box = $('log');
    box.hidden = false;
    setText($('log-title'), 'Log of task ' + taskId);
    const url = '/api/v1/jobs/' + encodeURIComponent(job) + '/tasks/' + taskId + '/log';
    const raw = $('log-raw');
    raw.hidden = !!state.token;       // a link cannot carry the token
    raw.href = url;
    const pre = $('log-text');
    pre.textContent = 'Loading…';
    try {
      const res = await api(url);
      if (state.selected !== job || state.logTask !== taskId) return;
      let text = typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
      if (text.length > LOG_BYTES)
        text = '… (the first ' + (text.length - LOG_BYTES) + ' characters are not shown)\n' + text.slice(-LOG_BYTES);
      pre.textContent = text || '(empty)';
      pre.classList.toggle('muted', !text);
    } catch (err) {
      pre.textContent = err instanceof Problem ? err.message : 'Cannot load the log.';
      pre.classList.add('muted');
    }
  }

  $('log-refresh').addEventListener('click', () => { if (state.logTask !== null) showLog(state.logTask); });
  $('tasks-load-more').addEventListener('click', () => loadMoreTasks());
  $('log-close').addEventListener('click', () => { state.logTask = null; $('log').hidden = true; });
  $('detail-close').addEventListener('click', () => {
    const id = state.selected;
    select(null);
    const row = id && jobRows.get(id);
    const button = row && row.row.querySelector('button');
    if (button) button.focus();
  });

  async function jobAction(action) {
    const id = state.selected;
    const error = $('action-error');
    error.hidden = true;
    try {
      const res = await api('/api/v1/jobs/' + encodeURIComponent(id) + '/' + action, { method: 'POST' });
      applyJob(res.body, res.eventId);
      scheduleRender();
    } catch (err) {
      if (err instanceof Problem && err.status === 401) return;
      error.hidden = false;
      error.textContent = problemText(err);
    }
  }
  $('act-start').addEventListener('click', () => jobAction('start'));
  $('act-cancel').addEventListener('click', () => jobAction('cancel'));
  $('act-retry').addEventListener('click', () => jobAction('retry'));

  // ---- workers ------------------------------------------------------------

  function renderWorkers() {
    const list = $('workers');
    const workers = [...state.workers.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    list.replaceChildren(...workers.map((w) => {
      const running = Math.min(w.busy, w.slots);
      const queued = Math.max(0, w.busy - w.slots);
      const bar = el('div', {
        class: 'bar load', role: 'meter',
        'aria-label': w.id + ' load: ' + running + ' of ' + w.slots + ' slots busy',
        'aria-valuemin': 0, 'aria-valuemax': w.slots, 'aria-valuenow': running,
      });
      const seg = el('span', { class: 'seg run' });
      seg.style.width = (w.slots ? (100 * running) / w.slots : 0) + '%';
      bar.append(seg);
      const status = w.draining ? 'draining' : 'connected';
      return el('li', { class: 'worker', 'data-worker': w.id },
        el('div', { class: 'worker-head' },
          el('span', { class: 'worker-name mono', text: w.id }),
          el('span', { class: 'badge s-' + status, text: status })),
        el('div', { class: 'worker-load' }, bar,
          el('span', { class: 'worker-slots', text: running + '/' + w.slots + ' slots' })),
        el('div', { class: 'worker-foot muted' },
          el('span', { text: w.host || '' }),
          el('span', { text: (queued ? queued + ' queued · ' : '') + 'heartbeat ' }, timeEl(w.last_heartbeat))));
    }));
    $('workers-empty').hidden = workers.length > 0;
    setText($('workers-empty'), state.loaded ? 'No worker connected.' : 'Loading…');
  }

  // ---- the submit form ----------------------------------------------------

  function buildForm() {
    const select = $('f-job');
    const jobs = (state.defs && state.defs.jobs) || [];
    select.replaceChildren(...jobs.map((j) =>
      el('option', { value: j.id }, j.name && j.name !== j.id ? j.name + ' (' + j.id + ')' : j.id)));
    buildInputs();
  }

  function inputField(prefix, name, label, input, required) {
    const id = prefix + '-' + name.replace(/[^A-Za-z0-9_-]/g, '_');
    const hintId = id + '-hint';
    const errId = id + '-error';
    const attrs = {
      id: id, name: name, type: input.secret ? 'password' : 'text',
      autocomplete: 'off', spellcheck: 'false',
      'aria-describedby': hintId + ' ' + errId,
      'aria-required': required ? 'true' : null,
    };
    if (input.default !== undefined && !input.secret) attrs.placeholder = input.default;
    const field = el('div', { class: 'field', 'data-field': (prefix === 'p' ? 'params.' : 'header ') + (input.key || name) },
      el('label', { for: id }, label, required ? el('span', { class: 'req', text: ' required' }) : el('span', { class: 'opt', text: ' optional' })),
      el('input', attrs),
      el('p', { class: 'hint', id: hintId, text: input.description || (input.default !== undefined ? 'Default: ' + input.default : '') }),
      el('p', { class: 'field-error', id: errId, hidden: true }));
    return field;
  }

  function buildInputs() {
    const def = currentDef();
    setText($('f-job-desc'), def ? def.description || '' : '');
    const params = $('f-params-list');
    const hdrs = $('f-headers-list');
    params.replaceChildren();
    hdrs.replaceChildren();
    for (const input of (def && def.inputs) || []) {
      if (input.source === 'parameter')
        params.append(inputField('p', input.name, input.name, input, input.default === undefined));
      else if (input.source === 'http-header')
        hdrs.append(inputField('h', input.key, input.key, input, true));
    }
    $('f-params').hidden = !params.childElementCount;
    $('f-headers').hidden = !hdrs.childElementCount;
    clearFormErrors();
  }

  function currentDef() {
    const id = $('f-job').value;
    return state.defs && state.defs.jobs.find((j) => j.id === id);
  }

  function clearFormErrors() {
    $('form-error').hidden = true;
    $('form-error').replaceChildren();
    for (const field of document.querySelectorAll('#submit-form .field')) {
      const err = field.querySelector('.field-error');
      if (err) { err.hidden = true; err.textContent = ''; }
      const input = field.querySelector('input');
      if (input) input.removeAttribute('aria-invalid');
    }
  }

  function problemText(err) {
    if (!(err instanceof Problem)) return 'The controller cannot be reached.';
    const b = err.body || {};
    return (b.title ? b.title + ': ' : '') + (b.detail || err.message);
  }

  function showFormProblem(err) {
    const box = $('form-error');
    const b = (err instanceof Problem && err.body) || {};
    box.replaceChildren(
      el('strong', { class: 'problem-title', text: b.title || (err instanceof Problem ? 'Error ' + err.status : 'Network error') }),
      el('span', { class: 'problem-detail', text: b.detail || (err instanceof Problem ? err.message : 'The controller cannot be reached.') }),
      b.field ? el('span', { class: 'problem-field mono', text: b.field }) : null);
    box.hidden = false;
    if (!b.field) return;
    const field = [...document.querySelectorAll('#submit-form .field[data-field]')]
      .find((f) => f.dataset.field.toLowerCase() === String(b.field).toLowerCase());
    if (!field) return;
    const msg = field.querySelector('.field-error');
    msg.textContent = b.detail || b.title || 'Invalid value';
    msg.hidden = false;
    const input = field.querySelector('input');
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }

  $('f-job').addEventListener('change', buildInputs);

  $('submit-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    clearFormErrors();
    setText($('form-ok'), '');
    const def = currentDef();
    if (!def) return;
    const params = {};
    const extra = { 'Content-Type': 'application/json' };
    for (const input of $('f-params-list').querySelectorAll('input'))
      if (input.value !== '') params[input.name] = input.value;
    for (const input of $('f-headers-list').querySelectorAll('input'))
      if (input.value !== '') extra[input.name] = input.value;
    const button = $('f-submit');
    button.disabled = true;
    try {
      const res = await api('/api/v1/jobs', {
        method: 'POST', headers: extra,
        body: JSON.stringify({ job: def.id, params: params, start: $('f-start').checked }),
      });
      applyJob(res.body, res.eventId);
      setText($('form-ok'), 'Submitted job ' + res.body.id + '.');
      for (const input of $('f-params-list').querySelectorAll('input[type=password]')) input.value = '';
      for (const input of $('f-headers-list').querySelectorAll('input')) input.value = '';
      select(res.body.id);
    } catch (err) {
      if (!(err instanceof Problem && err.status === 401)) showFormProblem(err);
    } finally {
      button.disabled = false;
    }
  });

  // ---- filters, clocks, start-up -------------------------------------------

  for (const chip of document.querySelectorAll('.chip[data-filter]')) {
    chip.addEventListener('click', () => {
      state.filter = chip.dataset.filter;
      for (const c of document.querySelectorAll('.chip[data-filter]'))
        c.setAttribute('aria-pressed', String(c === chip));
      scheduleRender();
    });
  }

  // Relative times and running durations move on once a second.
  setInterval(() => {
    for (const t of document.querySelectorAll('time[data-since]'))
      setText(t, since(t.dataset.since));
    for (const job of state.jobs.values()) {
      if (ENDED.has(job.state) || !job.started_at) continue;
      const entry = jobRows.get(job.id);
      const cell = entry && entry.row.querySelector('.duration');
      if (cell) setText(cell, fmtDuration(jobDuration(job)));
    }
    const selected = state.selected && state.jobs.get(state.selected);
    if (selected && !ENDED.has(selected.state)) scheduleRender();
  }, 1000);

  const hash = /^#job=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (hash) state.selected = hash[1];
  start();
})();
