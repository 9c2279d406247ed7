// The portalgate console. Reads the admin API with the bearer token kept in
// this tab (sessionStorage); writes every value with textContent, never as
// markup (records carry request paths, which a client chose).
'use strict';

const ACTIONS = ['explain', 'redirect', 'deny', 'reject', 'allow', 'forward'];
const MAX_ROWS = 500;
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem('portalgate-token') || '';
let feed = null;      // the open live feed's AbortController
let seen = new Set(); // decision ids in the table
let summaryTimer = null;
let configTimer = null;

class Unauthorized extends Error {}

async function api(path) {
  const r = await fetch(path, {
    headers: token ? { Authorization: 'Bearer ' + token } : {},
    cache: 'no-store',
  });
  if (r.status === 401) throw new Unauthorized();
  if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
  return r;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.append(c instanceof Node ? c : el('td', c));
  return tr;
}

function actionCell(action) {
  const td = el('td');
  const s = el('span', action, 'action');
  s.dataset.action = action;
  td.append(s);
  return td;
}

// ---- sign-in ----

function signIn(message) {
  $('main').hidden = true;
  $('token-form').hidden = false;
  $('token-error').textContent = message || '';
  $('token').focus();
}

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('portalgate-token', token);
  start();
});

// ---- configuration: generation, last reload, rules ----

async function loadConfig() {
  const doc = await (await api('/config')).json();
  $('generation').textContent = doc.generation;
  $('hash').textContent = String(doc.hash || '').slice(0, 12) || '–';
  $('hash').title = doc.hash || '';
  const lr = doc.last_reload;
  const last = $('last-reload');
  if (!lr) {
    last.textContent = 'none since start';
    last.className = '';
  } else if (lr.result === 'success') {
    last.textContent = `success at ${lr.at} (generation ${lr.generation})`;
    last.className = 'ok';
  } else {
    last.textContent = `error at ${lr.at}: the running configuration keeps serving`;
    last.title = lr.errors || '';
    last.className = 'error';
  }
  const body = $('rules').tBodies[0];
  body.replaceChildren(...doc.rules.map((r) =>
    row([r.id, el('td', r.mode, r.mode), r.match, r.action, r.defined])));
  $('rule-ids').replaceChildren(...doc.rules.map((r) => {
    const o = document.createElement('option');
    o.value = r.id;
    return o;
  }));
}

// ---- counts and chart ----

const PALETTE = ['#2563eb', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490',
  '#a16207', '#be185d'];
const SERIES = 8; // named series in the chart; the rest are "other"

// The chart's series for the chosen dimension, biggest first.
function series(summary, by) {
  const field = 'by_' + by;
  const totals = new Map();
  for (const m of summary.minutes) {
    for (const [k, n] of Object.entries(m[field] || {})) totals.set(k, (totals.get(k) || 0) + n);
  }
  let keys = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || a.localeCompare(b));
  if (by === 'action') keys = ACTIONS.filter((a) => totals.has(a));
  const named = keys.slice(0, SERIES);
  const color = (k, i) => (by === 'action' ? null : PALETTE[i % PALETTE.length]);
  const list = named.map((k, i) => ({ key: k, total: totals.get(k), color: color(k, i) }));
  const rest = keys.slice(SERIES);
  if (rest.length) {
    list.push({ key: 'other', total: rest.reduce((s, k) => s + totals.get(k), 0), color: '#94a3b8',
      members: new Set(rest) });
  }
  return { field, list };
}

function drawChart(summary, minutes) {
  const by = $('chart-by').value;
  const { field, list } = series(summary, by);
  const svg = $('chart');
  const ns = 'http://www.w3.org/2000/svg';
  const W = 720, H = 160, top = 12, bottom = 16;
  const nowMinute = Math.floor(Date.now() / 60000);
  const byMinute = new Map(summary.minutes.map((m) => [m.at / 60, m]));
  let max = 1;
  for (const m of summary.minutes) max = Math.max(max, m.total);
  const slot = W / minutes;
  const hhmm = (minute) => new Date(minute * 60000).toTimeString().slice(0, 5);
  const parts = [];
  for (let i = 0; i < minutes; i++) {
    const minute = nowMinute - (minutes - 1 - i);
    const m = byMinute.get(minute);
    const x = i * slot;
    if (i % 10 === 0) {
      const t = document.createElementNS(ns, 'text');
      t.setAttribute('x', x + 1);
      t.setAttribute('y', H - 4);
      t.textContent = hhmm(minute);
      parts.push(t);
    }
    if (!m) continue;
    const counts = m[field] || {};
    let y = H - bottom;
    for (const s of list) {
      const n = s.members
        ? [...s.members].reduce((sum, k) => sum + (counts[k] || 0), 0)
        : counts[s.key] || 0;
      if (!n) continue;
      const h = ((H - bottom - top) * n) / max;
      y -= h;
      const r = document.createElementNS(ns, 'rect');
      r.setAttribute('x', x + 0.5);
      r.setAttribute('y', y);
      r.setAttribute('width', Math.max(slot - 1, 1));
      r.setAttribute('height', h);
      if (by === 'action') r.dataset.action = s.key; else r.setAttribute('fill', s.color);
      r.dataset.series = s.key;
      r.dataset.count = n;
      r.dataset.minute = minute * 60;
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${hhmm(minute)}: ${n} ${s.key}`;
      r.append(title);
      parts.push(r);
    }
  }
  const peak = document.createElementNS(ns, 'text');
  peak.setAttribute('x', 2);
  peak.setAttribute('y', 10);
  peak.textContent = `${max} / minute`;
  parts.push(peak);
  svg.replaceChildren(...parts);
  $('legend').replaceChildren(...list.map((s) => {
    const li = el('li', `${s.key} ${s.total}`);
    if (by === 'action') li.dataset.action = s.key; else li.style.setProperty('--c', s.color);
    return li;
  }));
}

let lastSummary = null;

async function loadSummary() {
  clearTimeout(summaryTimer);
  summaryTimer = setTimeout(() => loadSummary().catch(failed), 5000);
  const minutes = Number($('minutes').value);
  const s = await (await api('/ui/api/summary?minutes=' + minutes)).json();
  $('total').textContent = s.total;
  lastSummary = s;
  drawChart(s, minutes);
  $('by-rule').tBodies[0].replaceChildren(...s.by_key.map(([k, n]) =>
    row([k.rule || '(no rule)', actionCell(k.action), el('td', k.mode, k.mode), k.portal || '–',
      el('td', n, 'n')])));
  const tenants = s.top_tenants.map(([t, n]) => row([el('td', t, 'tenant'), el('td', n, 'n')]));
  if (s.other_tenants) tenants.push(row(['other tenants', el('td', s.other_tenants, 'n')]));
  $('top-tenants').tBodies[0].replaceChildren(...tenants);
}

// A burst of live decisions refreshes the counts once, a second later.
let soon = null;
function summarySoon() {
  if (soon) return;
  soon = setTimeout(() => { soon = null; loadSummary().catch(failed); }, 1000);
}

// ---- the decisions table and the live feed ----

function decisionRow(d, fresh) {
  const tr = row([
    el('td', (d.ts || '').replace('T', ' ').replace('Z', ''), 'ts'),
    actionCell(d.action),
    el('td', d.mode, d.mode),
    d.status,
    d.rule || '–',
    d.reason || '–',
    el('td', d.tenant || '–', 'tenant'),
    d.region || '–',
    d.method,
    el('td', d.target, 'target'),
  ]);
  tr.dataset.decision = d.decision_id;
  if (fresh) tr.className = 'new';
  return tr;
}

function addDecision(d, fresh) {
  if (seen.has(d.decision_id)) return;
  seen.add(d.decision_id);
  const body = $('decisions').tBodies[0];
  body.prepend(decisionRow(d, fresh));
  while (body.rows.length > MAX_ROWS) {
    seen.delete(body.lastElementChild.dataset.decision);
    body.lastElementChild.remove();
  }
  shown();
}

let skipped = 0;
function shown() {
  const n = $('decisions').tBodies[0].rows.length;
  const q = filterQuery();
  $('shown').textContent = `${n} decision${n === 1 ? '' : 's'} shown` +
    (q ? ` (filtered: ${decodeURIComponent(q.replace(/\+/g, ' '))})` : '') +
    (n >= MAX_ROWS ? `, the newest ${MAX_ROWS}` : '') +
    (skipped ? `; ${skipped} skipped while this page fell behind` : '');
}

function filterQuery() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData($('filters'))) if (String(v).trim()) p.set(k, String(v).trim());
  return p.toString();
}

function setLive(state) {
  const live = $('live');
  live.textContent = state;
  live.className = state === 'live' ? 'on' : 'off';
}

// Opens the feed first, then reads the recent records, so that nothing
// taken in between is missed; a record in both shows once.
async function openFeed(query) {
  if (feed) feed.abort();
  const ctl = new AbortController();
  feed = ctl;
  setLive('connecting');
  let pending = [];
  let loaded = false;
  try {
    const r = await fetch('/ui/api/events?' + query, {
      headers: token ? { Authorization: 'Bearer ' + token } : {},
      signal: ctl.signal,
    });
    if (r.status === 401) throw new Unauthorized();
    if (!r.ok) throw new Error((await r.text()).trim());
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line === ': live') {
            setLive('live');
            loadRecent(query).then(() => {
              loaded = true;
              for (const d of pending) addDecision(d, true);
              pending = [];
            }).catch(failed);
          } else if (line.startsWith('event: ')) {
            event = line.slice(7);
          } else if (line.startsWith('data: ')) {
            data.push(line.slice(6));
          }
        }
        if (event === 'decision') {
          const d = JSON.parse(data.join('\n'));
          if (loaded) addDecision(d, true); else pending.push(d);
          summarySoon();
        } else if (event === 'skipped') {
          skipped += Number(data.join('')) || 0;
          shown();
        }
      }
    }
  } catch (e) {
    if (ctl.signal.aborted) return;
    if (e instanceof Unauthorized) return signIn('The token was refused.');
  }
  if (feed === ctl) {
    setLive('reconnecting');
    setTimeout(() => { if (feed === ctl) openFeed(query); }, 2000);
  }
}

async function loadRecent(query) {
  const records = await (await api('/decisions/recent?limit=200&' + query)).json();
  $('decisions').tBodies[0].replaceChildren();
  seen = new Set();
  for (const d of records) addDecision(d, false);
  shown();
}

// A filter is checked by the server first (the same rules as `portalgate
// logs`); a refused one leaves the table and the feed as they were.
async function applyFilters() {
  const query = filterQuery();
  try {
    await api('/decisions/recent?limit=1&' + query);
  } catch (e) {
    if (e instanceof Unauthorized) return signIn('The token was refused.');
    $('filter-error').textContent = e.message;
    return;
  }
  $('filter-error').textContent = '';
  skipped = 0;
  openFeed(query);
}

$('filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  applyFilters();
});
$('clear').addEventListener('click', () => {
  $('filters').reset();
  applyFilters();
});
$('minutes').addEventListener('change', () => loadSummary().catch(failed));
$('chart-by').addEventListener('change', () => {
  if (lastSummary) drawChart(lastSummary, Number($('minutes').value));
});

function failed(e) {
  if (e instanceof Unauthorized) signIn('The token was refused.');
}

async function start() {
  try {
    await loadConfig();
  } catch (e) {
    if (e instanceof Unauthorized) return signIn(token ? 'The token was refused.' : '');
    $('token-error').textContent = e.message;
    return;
  }
  $('token-form').hidden = true;
  $('main').hidden = false;
  clearInterval(configTimer);
  configTimer = setInterval(() => loadConfig().catch(failed), 5000);
  loadSummary().catch(failed);
  applyFilters();
}

start();
