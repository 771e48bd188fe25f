// Markup in server data shows as text and runs nothing (headless Chromium): the demo runs with a
// config whose nation and one unit carry titles holding `<img src=x onerror=...>`, and a signal
// is acknowledged through the CLI with such a reason. The page must show both strings literally,
// hold no <img> element, and never run the handlers (each would set window.__xss). The server's
// Content-Security-Policy and nosniff headers are checked on the page and its script.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { OUT, TOKEN, log, fail, sleep, run, waitFor, startDemo, openBrowser, main, screenshot } =
  require('./lib.cjs');

const SOURCE = process.env.CYBERSYN_SOURCE_DIR;
const NATION_TITLE = 'Chile <img src=x onerror="window.__xss=1">';
const UNIT_TITLE = '<img src=x onerror="window.__xss=2">Spinning';
const REASON = 'crew on site <img src=x onerror="window.__xss=3">';

// deploy/examples/demo.yaml with the hostile titles.
function hostileConfig() {
  let yaml = fs.readFileSync(path.join(SOURCE, 'deploy/examples/demo.yaml'), 'utf8');
  const q = (s) => `'${s.replace(/'/g, "''")}'`;  // YAML single-quoted
  const before = yaml;
  yaml = yaml.replace('title: Chile', `title: ${q(NATION_TITLE)}`)
    .replace('spinning: {title: Spinning}', `spinning: {title: ${q(UNIT_TITLE)}}`);
  if (yaml === before) fail('demo.yaml changed: cannot place the hostile titles');
  const file = path.join(OUT, 'hostile-demo.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

// What the page must not have done: created an <img>, run a handler, thrown.
async function checkInert(page, where) {
  const found = await page.evaluate(() => ({
    imgs: document.querySelectorAll('img').length,
    xss: window.__xss,
  }));
  if (found.imgs) fail(`${where}: ${found.imgs} <img> elements were created from server text`);
  if (found.xss !== undefined) fail(`${where}: an injected handler ran (window.__xss=${found.xss})`);
  if (page.errors.length) fail(`${where}: JavaScript errors: ${page.errors.join('; ')}`);
}

main(async () => {
  const config = hostileConfig();
  const check = await run(['config', 'check', config], 'config check');
  if (check.code !== 0) fail(`config check ${config}: ${check.text}`);
  const banner = await startDemo(['--seed', '3', '--config', config]);
  const { browser, page } = await openBrowser();
  try {
    const res = await page.goto(banner.web, { waitUntil: 'load' });
    const headers = res.headers();
    if (!/script-src 'self'/.test(headers['content-security-policy'] || '')) {
      fail(`the page has no Content-Security-Policy limiting scripts: ${JSON.stringify(headers)}`);
    }
    if (headers['x-content-type-options'] !== 'nosniff') fail('the page is not sent with nosniff');
    const js = await page.request.get(new URL('/app.js', banner.web).href);
    if (js.headers()['x-content-type-options'] !== 'nosniff') fail('app.js is not sent with nosniff');

    // The titles show as text in the tree.
    await page.waitForFunction(() => document.querySelectorAll('#tree .node').length >= 15,
      null, { timeout: 20000 });
    const titles = await page.$$eval('#tree .node', (els) => els.map((e) => e.textContent));
    for (const t of [NATION_TITLE, UNIT_TITLE]) {
      if (!titles.includes(t)) fail(`the tree does not show the title ${t} as text: ${titles.join(' | ')}`);
    }
    log('tree shows the hostile titles as text');
    await checkInert(page, 'after the tree');

    // An alert to acknowledge with a hostile reason, through the CLI.
    await page.waitForFunction(() => document.querySelector('#conn').textContent === 'live',
      null, { timeout: 20000 });
    // The alerter applies an acknowledgement when it reads the command; a signal that resolves
    // before that (a machine under load, a step that became the new level) takes no ack and the
    // feed never shows the reason: then acknowledge another one.
    const feedHasReason = () => page.evaluate((reason) =>
      [...document.querySelectorAll('#feed li')].some((li) => li.textContent.includes(reason)),
    REASON);
    const isOpen = (id) => page.evaluate((sid) =>
      [...document.querySelectorAll('#signals tbody tr')].some((tr) => tr.dataset.id === sid), id);
    const deadline = Date.now() + 120000;
    let shown = false;
    const tried = new Set();
    while (!shown && Date.now() < deadline) {
      const ids = await page.evaluate(() => [...document.querySelectorAll('#signals tbody tr')]
        .filter((tr) => tr.querySelector('td').className !== 'sev-reward')
        .map((tr) => tr.dataset.id));
      let acked = null;
      for (const id of ids.filter((i) => !tried.has(i))) {
        tried.add(id);
        const r = await run(['ack', id, '--reason', REASON, '--server', banner.grpc, '--token',
          TOKEN], 'ack');
        if (r.code === 0) { acked = id; break; }
        log(`ack ${id} refused (resolved meanwhile?): ${r.text.trim()}`);
      }
      if (!acked) { await sleep(1000); continue; }
      log(`acknowledged ${acked} with a hostile reason`);
      // The reason shows, or the signal closes without it (then the next one), or 30 s pass.
      const until = Date.now() + 30000;
      for (;;) {
        if (await feedHasReason()) { shown = true; break; }
        if (!(await isOpen(acked))) {
          await sleep(1000);  // the ack may still be on its way behind the resolution
          shown = await feedHasReason();
          if (!shown) log(`${acked} closed before its acknowledgement was applied`);
          break;
        }
        if (Date.now() > until) fail(`${acked} stayed open, but its reason never reached the feed`);
        await sleep(200);
      }
    }
    if (!shown) fail('no alert could be acknowledged (and its reason shown) within 120 s');
    log('feed shows the reason as text');
    await sleep(1000);  // a handler, had one been created, would have run by now
    await checkInert(page, 'after the acknowledgement');
  } finally {
    await screenshot(page, 'opsroom-xss.png');
    await browser.close();
  }
});
