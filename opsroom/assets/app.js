// Cybersyn Opsroom: the hierarchy coloured by worst open signal, open signals, a live feed of
// transitions (server-sent events), a series chart with the forecast band, and ack / resolve /
// silence for an operator whose token covers the signal's node. No external assets.
//
// Every string from the server (node titles, reasons, ids) reaches the page as text: the DOM is
// built with createElement and text nodes only, never parsed from HTML, so a config title or an
// acknowledgement reason holding markup shows as that markup, and runs nothing. The server also
// sends a Content-Security-Policy that allows only this script.
'use strict';

const state = {
  token: sessionStorage.getItem('cybersyn.token') || '',
  operator: null,            // {name, subtree}
  signals: new Map(),        // id -> Signal (snake_case protobuf JSON)
  selected: null,
  root: null,                // the last NodeStatus tree
};

const $ = (sel) => document.querySelector(sel);
const short = (s) => (s || '').replace(/^(SIGNAL_KIND_|SIGNAL_STATE_|SEVERITY_|TRANSITION_KIND_)/, '').toLowerCase();
const fmtTime = (ms) => ms ? new Date(Number(ms)).toLocaleTimeString() : '';
const inSubtree = (path, root) => !!root && (path === root || path.startsWith(root + '/'));
const isReward = (s) => short(s.kind) === 'reward' || short(s.severity) === 'reward';

// One item per fault (docs/attribution.md): the series a signal explains besides its own, once
// per node and indicator (window sizes folded), in attribution order.
function alsoVisible(sig) {
  const seen = new Set(), out = [];
  for (const a of sig.also_visible_at || []) {
    const node = a.series ? a.series.node : '', indicator = a.series ? a.series.indicator : '';
    if (seen.has(node + '\n' + indicator)) continue;
    seen.add(node + '\n' + indicator);
    out.push({ node, indicator });
  }
  return out;
}

// node -> the open signals also visible there (each once), from the signals table.
function visibleAt() {
  const out = new Map();
  for (const s of state.signals.values()) {
    for (const node of new Set(alsoVisible(s).map((a) => a.node))) {
      if (!out.has(node)) out.set(node, []);
      out.get(node).push(s);
    }
  }
  return out;
}

// el('span', {class: 'dot ok', dataset: {node: 'cl'}}, 'text', child, ...): an element with
// attributes and children (strings become text nodes). SVG elements with svg(...).
function build(ns, tag, attrs, children) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}
const el = (tag, attrs, ...children) => build(null, tag, attrs, children);
const svg = (tag, attrs, ...children) => build('http://www.w3.org/2000/svg', tag, attrs, children);

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers['Authorization'] = 'Bearer ' + state.token;
  const res = await fetch(path, Object.assign({}, opts, { headers }));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || (res.status + ' ' + res.statusText));
  return body;
}

// ---- hierarchy
// A node: its worst open signal, its open problems (rewards apart: they are not problems), and
// a mark where faults of other nodes or indicators are also visible (not counted again).
function renderNode(n, visible) {
  const li = document.createElement('li');
  const sev = short(n.worst) || 'ok';
  const open = n.open_signals || [];
  const rewards = open.filter(isReward).length, count = open.length - rewards;
  const name = el('span', { class: 'node', dataset: { node: n.node } }, n.title || n.node);
  name.addEventListener('click', () => showNode(n));
  li.append(el('span', { class: `dot ${sev === 'unspecified' ? 'ok' : sev}` }), name,
    el('span', { class: 'level' }, `${n.level}${count ? ' · ' + count + ' open' : ''}` +
      `${rewards ? ' · ' + rewards + ' reward' : ''}`));
  const here = visible.get(n.node);
  if (here) {
    const what = here.map((s) => `${s.origin_node} ${s.series ? s.series.indicator : ''}`);
    li.append(el('span', { class: 'also', dataset: { signals: here.map((s) => s.id).join(' ') },
      title: 'also visible here, raised at ' + what.join(', ') }, `also visible (${here.length})`));
  }
  if (n.children && n.children.length) {
    const ul = document.createElement('ul');
    n.children.forEach((c) => ul.appendChild(renderNode(c, visible)));
    li.appendChild(ul);
  }
  return li;
}

function renderTree() {
  if (state.root) $('#tree').replaceChildren(renderNode(state.root, visibleAt()));
}

async function loadTree() {
  try {
    state.root = await api('/api/status?depth=16');
    renderTree();
  } catch (e) { console.warn('tree', e); }
}

function showNode(n) {
  const indicators = Object.keys(n.last_values || {});
  if (indicators.length) loadSeries(n.node, indicators[0], null);
}

// ---- signals table
function canAct(sig) {
  return state.operator && (inSubtree(sig.origin_node, state.operator.subtree) ||
                            inSubtree(sig.current_node, state.operator.subtree));
}

function renderSignals() {
  const tbody = $('#signals tbody');
  tbody.replaceChildren();
  const rows = [...state.signals.values()].sort((a, b) => Number(b.raised_at_ms) - Number(a.raised_at_ms));
  for (const s of rows) {
    const tr = document.createElement('tr');
    tr.dataset.id = s.id;
    if (state.selected === s.id) tr.classList.add('sel');
    const allowed = canAct(s);
    const button = (act, label) => el('button', { class: 'act', dataset: { act },
      disabled: !allowed, title: allowed ? null : 'sign in with a token for this subtree' }, label);
    tr.append(el('td', { class: `sev-${short(s.severity)}` }, s.id.slice(0, 10)),
      el('td', {}, s.origin_node), el('td', {}, s.series ? s.series.indicator : ''),
      el('td', {}, short(s.kind)), el('td', {}, s.current_level_name || ''),
      el('td', { class: 'state' }, short(s.state)), el('td', {}, fmtTime(s.raised_at_ms)),
      el('td', { class: 'also' }, ...alsoVisible(s).flatMap((a, i) => [i ? ', ' : null,
        el('span', { class: 'also-node', dataset: { node: a.node } }, `${a.node} ${a.indicator}`)])),
      el('td', {}, button('ack', 'ack'), button('resolve', 'resolve'),
        button('silence', 'silence 2h')));
    tr.addEventListener('click', (ev) => {
      const act = ev.target.dataset && ev.target.dataset.act;
      if (act) { ev.stopPropagation(); act === 'silence' ? doAct(s, act, 7200000) : doAct(s, act); return; }
      state.selected = s.id;
      renderSignals();
      if (s.series) loadSeries(s.series.node, s.series.indicator, s.series.window_ms);
    });
    tbody.appendChild(tr);
  }
}

async function loadSignals() {
  try {
    const res = await api('/api/signals');
    state.signals.clear();
    (res.signals || []).forEach((s) => state.signals.set(s.id, s));
    renderSignals();
    renderTree();
  } catch (e) { console.warn('signals', e); }
}

async function doAct(sig, act, durationMs) {
  try {
    const body = JSON.stringify({ reason: 'from the Opsroom', duration_ms: durationMs || 0 });
    await api(`/api/signals/${encodeURIComponent(sig.id)}/${act}`, { method: 'POST', body,
      headers: { 'Content-Type': 'application/json' } });
    addFeedLine({ kind: 'note', text: `${act} sent for ${sig.id.slice(0, 10)}` });
  } catch (e) {
    addFeedLine({ kind: 'error', text: `${act} refused: ${e.message}` });
  }
}

// ---- live feed (server-sent events; the browser resumes with Last-Event-ID)
function addFeedLine({ kind, text, at }) {
  const li = document.createElement('li');
  li.append(el('span', { class: 't' }, fmtTime(at || Date.now())), el('span', { class: kind }, text));
  const feed = $('#feed');
  feed.insertBefore(li, feed.firstChild);
  while (feed.children.length > 200) feed.removeChild(feed.lastChild);
}

let treeTimer = null;
function onEvent(ev) {
  const e = JSON.parse(ev.data);
  const s = e.signal, t = e.transition || {};
  const kind = short(t.kind);
  let text = `${kind} ${short(s.kind)} at ${s.origin_node}`;
  if (kind === 'also_visible') {
    text = `${short(s.kind)} at ${s.origin_node} also visible at ` +
      alsoVisible(s).map((a) => `${a.node} ${a.indicator}`).join(', ');
  }
  if (kind === 'escalated') text = `escalated ${short(s.kind)} of ${s.origin_node}: ${t.from_node} → ${t.to_node}`;
  if (t.actor && t.actor !== 'system') text += ` by ${t.actor}`;
  if (t.reason && t.actor && t.actor !== 'system') text += `: ${t.reason}`;
  addFeedLine({ kind, text, at: t.at_ms });
  if (short(s.state) === 'resolved') state.signals.delete(s.id); else state.signals.set(s.id, s);
  renderSignals();
  renderTree();
  clearTimeout(treeTimer);
  treeTimer = setTimeout(loadTree, 300);
}

function connect() {
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => { $('#conn').textContent = 'live'; $('#conn').className = 'conn on'; });
  es.addEventListener('error', () => { $('#conn').textContent = 'reconnecting…'; $('#conn').className = 'conn off'; });
  es.addEventListener('signal', onEvent);
}

// ---- series chart
async function loadSeries(node, indicator, windowMs) {
  $('#series-name').textContent = `${node} · ${indicator}`;
  try {
    const q = new URLSearchParams({ node, indicator, window_ms: windowMs || 0, limit: 240 });
    const res = await api('/api/series?' + q);
    drawChart(res.points || []);
  } catch (e) { $('#series-name').textContent += ` (${e.message})`; }
}

function drawChart(points) {
  const chart = $('#chart');
  const W = 800, H = 240, P = 24;
  if (!points.length) {
    chart.replaceChildren(svg('text', { x: 20, y: 120 }, 'no closed windows yet'));
    return;
  }
  const xs = points.map((p) => Number(p.aggregate.window_start_ms));
  const vals = points.map((p) => p.aggregate.value);
  const lo = points.map((p) => p.has_forecast ? p.forecast_lower : p.aggregate.value);
  const hi = points.map((p) => p.has_forecast ? p.forecast_upper : p.aggregate.value);
  const ymin = Math.min(...vals, ...lo), ymax = Math.max(...vals, ...hi);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  const X = (x) => P + (W - 2 * P) * (x - x0) / ((x1 - x0) || 1);
  const Y = (y) => H - P - (H - 2 * P) * (y - ymin) / ((ymax - ymin) || 1);
  const xOf = (p) => X(Number(p.aggregate.window_start_ms));
  const parts = [];
  const fc = points.filter((p) => p.has_forecast);
  if (fc.length) {
    const up = fc.map((p) => `${xOf(p)},${Y(p.forecast_upper)}`);
    const dn = fc.map((p) => `${xOf(p)},${Y(p.forecast_lower)}`).reverse();
    parts.push(svg('polygon', { class: 'band', points: up.concat(dn).join(' ') }),
      svg('polyline', { class: 'fc', points: fc.map((p) => `${xOf(p)},${Y(p.forecast)}`).join(' ') }));
  }
  parts.push(svg('polyline', { class: 'line',
    points: points.map((p, i) => `${X(xs[i])},${Y(vals[i])}`).join(' ') }));
  for (const p of points.filter((q) => (q.signal_ids || []).length)) {
    parts.push(svg('circle', { class: 'mark', r: 4, cx: xOf(p), cy: Y(p.aggregate.value) }));
  }
  parts.push(svg('text', { x: 4, y: 12 }, ymax.toPrecision(4)),
    svg('text', { x: 4, y: H - 4 }, ymin.toPrecision(4)));
  chart.replaceChildren(...parts);
}

// ---- sign in
async function signIn(token) {
  state.token = token;
  try {
    state.operator = await api('/api/whoami');
    sessionStorage.setItem('cybersyn.token', token);
    $('#who').textContent = `${state.operator.name} · ${state.operator.subtree}`;
  } catch (e) {
    state.operator = null;
    state.token = '';
    sessionStorage.removeItem('cybersyn.token');
    $('#who').textContent = e.message;
  }
  renderSignals();
}

$('#login').addEventListener('submit', (ev) => { ev.preventDefault(); signIn($('#token').value.trim()); });

loadTree();
loadSignals();
connect();
if (state.token) signIn(state.token);
setInterval(loadTree, 10000);
