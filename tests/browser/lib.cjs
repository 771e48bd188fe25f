// Shared by the Opsroom browser tests: start `cybersyn` processes, wait for conditions, start the
// demo and read its banner, launch headless Chromium, and run a test body with cleanup.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BIN = process.env.CYBERSYN_BIN;
const OUT = process.env.CYBERSYN_ARTEFACTS;
const CHROMIUM = process.env.CYBERSYN_CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'demo-cl';  // the demo config's operator "planning" (scope cl)
const t0 = Date.now();
const children = [];

function log(msg) { console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`); }
function fail(msg) { throw new Error(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts the binary; collects stdout+stderr as text.
function start(args, name) {
  const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  p.text = '';
  p.stdout.on('data', (d) => { p.text += d; });
  p.stderr.on('data', (d) => { p.text += d; });
  p.exited = new Promise((r) => p.on('exit', (code) => r(code)));
  p.label = name;
  children.push(p);
  return p;
}

// Runs the binary to its end; resolves to {code, text}.
async function run(args, name) {
  const p = start(args, name);
  const code = await p.exited;
  return { code, text: p.text };
}

async function waitFor(what, timeoutMs, pred) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) fail(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(200);
  }
}

// `cybersyn demo` on free ports (a demo on the default ones could collide with another test's);
// resolves to {demo, web, grpc} once its banner names the addresses.
async function startDemo(extraArgs) {
  const demo = start(['demo', '--duration', '150s', '--listen-grpc', '127.0.0.1:0',
    '--listen-http', '127.0.0.1:0', ...extraArgs], 'demo');
  const banner = await waitFor('the demo banner', 30000, () => {
    const web = /Opsroom \(web\)\s+(http:\/\/\S+)/.exec(demo.text);
    const grpc = /gRPC\s+(\S+)/.exec(demo.text);
    return web && grpc ? { web: web[1], grpc: grpc[1] } : null;
  }).catch((e) => fail(`${e.message}\n${demo.text}`));
  log(`demo up: Opsroom ${banner.web}, gRPC ${banner.grpc}`);
  return Object.assign({ demo }, banner);
}

// Opens a page in headless Chromium; collects its JavaScript errors in page.errors.
async function openBrowser() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  return { browser, page };
}

// Runs `body({log, fail, ...})`, saves a screenshot of `page` named `shot`, stops every child,
// and exits 0 on success.
function main(body) {
  fs.mkdirSync(OUT, { recursive: true });
  body().then(() => { log('PASS'); return 0; },
    (e) => { console.error(`FAIL: ${e.message}`); return 1; }).then(async (code) => {
    for (const p of children) p.kill('SIGTERM');
    await Promise.race([Promise.all(children.map((p) => p.exited)), sleep(10000)]);
    for (const p of children) p.kill('SIGKILL');
    process.exit(code);
  });
}

async function screenshot(page, name) {
  const shot = path.join(OUT, name);
  await page.screenshot({ path: shot }).catch(() => {});
  if (fs.existsSync(shot)) console.log(`screenshot: ${shot}`);
}

module.exports = { BIN, OUT, TOKEN, log, fail, sleep, start, run, waitFor, startDemo, openBrowser,
  main, screenshot };
