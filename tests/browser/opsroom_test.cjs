// The Opsroom in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// start `cybersyn demo`, open the Opsroom, see the tree, wait for a signal to arrive live over
// server-sent events, sign in with the demo operator token, click "ack" on a signal, and verify
// the acknowledgement through the CLI (`cybersyn watch --json` sees ACKNOWLEDGED by planning).
// Then one fault with "also visible at" nodes (docs/attribution.md): the page shows one row
// listing them, and the tree marks those nodes without counting them as problems. The demo
// raises no attributed signal reliably, so that part answers /api/signals and /api/status with
// the demo's own tree holding one such signal (the page's code and server are the real ones).
// Saves a screenshot (its path is printed) as the test's artefact. Exits non-zero on failure.
'use strict';

const { TOKEN, log, fail, sleep, start, waitFor, startDemo, openBrowser, main, screenshot } =
  require('./lib.cjs');

// One energy step at the smelter, explained at its enterprise, sector and nation roll-ups and in
// the smelter's productivity: one signal (protobuf JSON as /api/signals sends it).
const SMELTER = 'cl/mining/chuquicamata/smelter';
const FAULT = {
  id: 'sig-attributed-1', kind: 'SIGNAL_KIND_STEP', severity: 'SEVERITY_ALERT',
  state: 'SIGNAL_STATE_FIRING', origin_node: SMELTER, current_node: SMELTER,
  current_level_name: 'unit', raised_at_ms: String(Date.now()),
  series: { node: SMELTER, indicator: 'energy', window_ms: '10000' },
  also_visible_at: [
    ['cl/mining/chuquicamata', 'energy'], ['cl/mining', 'energy'], ['cl', 'energy'],
    ['cl/mining', 'energy', '60000'], [SMELTER, 'productivity'],
  ].map(([node, indicator, w]) => ({ series: { node, indicator, window_ms: w || '10000' } })),
};

async function oneRowPerFault(page) {
  const path = (url) => new URL(url).pathname;
  await page.route((url) => path(url) === '/api/events', (r) => r.abort());
  await page.route((url) => path(url) === '/api/signals',
    (r) => r.fulfill({ json: { signals: [FAULT] } }));
  await page.route((url) => path(url) === '/api/status', async (r) => {
    const tree = await (await r.fetch()).json();
    const place = (n) => {
      n.open_signals = n.node === SMELTER ? [FAULT] : [];
      n.worst = n.node === SMELTER ? 'SEVERITY_ALERT' : 'SEVERITY_UNSPECIFIED';
      (n.children || []).forEach(place);
    };
    place(tree);
    await r.fulfill({ json: tree });
  });
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction((id) => {
    const rows = document.querySelectorAll('#signals tbody tr');
    return rows.length === 1 && rows[0].dataset.id === id &&
      document.querySelectorAll('#tree .node').length >= 15 &&
      document.querySelectorAll('#tree .also').length > 0;
  }, FAULT.id, { timeout: 20000 }).catch(async () => fail('the page did not show the one fault ' +
    'with its also-visible marks: ' + JSON.stringify(await page.evaluate(() => ({
      rows: [...document.querySelectorAll('#signals tbody tr')].map((tr) => tr.textContent),
      nodes: document.querySelectorAll('#tree .node').length,
      marks: document.querySelectorAll('#tree .also').length })))));
  const row = await page.evaluate(() => {
    const tr = document.querySelector('#signals tbody tr');
    return { node: tr.children[1].textContent,
      also: [...tr.querySelectorAll('td.also .also-node')].map((e) => e.textContent),
      text: tr.querySelector('td.also').textContent };
  });
  const want = ['cl/mining/chuquicamata energy', 'cl/mining energy', 'cl energy',
    `${SMELTER} productivity`];
  if (row.node !== SMELTER || JSON.stringify(row.also) !== JSON.stringify(want)) {
    fail(`the fault's row: ${JSON.stringify(row)}, expected also visible at ${want.join(', ')}`);
  }
  log(`one row for one fault: ${row.node}, also visible at ${row.text}`);
  const tree = await page.evaluate(() => [...document.querySelectorAll('#tree li')].map((li) => ({
    node: li.querySelector(':scope > .node').dataset.node,
    level: li.querySelector(':scope > .level').textContent,
    also: (li.querySelector(':scope > .also') || {}).textContent || '',
    alsoSignals: (li.querySelector(':scope > .also') || { dataset: {} }).dataset.signals || '',
    alsoTitle: (li.querySelector(':scope > .also') || { title: '' }).title,
  })));
  const open = tree.reduce((n, t) => n + Number((/(\d+) open/.exec(t.level) || [0, 0])[1]), 0);
  if (open !== 1) fail(`the tree counts ${open} open problems for one fault: ${JSON.stringify(tree)}`);
  const marked = tree.filter((t) => t.also).map((t) => t.node).sort();
  const wantMarked = ['cl', 'cl/mining', 'cl/mining/chuquicamata', SMELTER].sort();
  if (JSON.stringify(marked) !== JSON.stringify(wantMarked)) {
    fail(`the tree marks ${marked.join(', ')} as also visible, expected ${wantMarked.join(', ')}`);
  }
  for (const t of tree.filter((x) => x.also)) {
    if (t.also !== 'also visible (1)' || t.alsoSignals !== FAULT.id ||
        !t.alsoTitle.includes(`${SMELTER} energy`)) {
      fail(`${t.node}'s mark does not name the one fault: ${JSON.stringify(t)}`);
    }
  }
  log(`tree: 1 open problem, also visible at ${marked.join(', ')}`);
  if (page.errors.length) fail(`JavaScript errors on the page: ${page.errors.join('; ')}`);
  await screenshot(page, 'opsroom-one-fault.png');
}

main(async () => {
  const banner = await startDemo(['--seed', '1']);
  const { browser, page } = await openBrowser();
  try {
    await page.goto(banner.web, { waitUntil: 'load' });
    log(`browser: ${browser.version()}, title "${await page.title()}"`);
    if ((await page.title()) !== 'Cybersyn Opsroom') fail(`unexpected title ${await page.title()}`);

    // The tree: every node of the demo hierarchy (1 nation, 2 sectors, 4 enterprises, 8 units).
    await page.waitForFunction(() => document.querySelectorAll('#tree .node').length >= 15,
      null, { timeout: 20000 });
    const nodes = await page.$$eval('#tree .node', (els) => els.map((e) => e.dataset.node));
    for (const n of ['cl', 'cl/textiles', 'cl/mining/el_teniente', 'cl/textiles/yarur/spinning']) {
      if (!nodes.includes(n)) fail(`tree lacks ${n}: ${nodes.join(', ')}`);
    }
    log(`tree rendered: ${nodes.length} nodes`);

    // The live feed (server-sent events) shows a raised signal without a reload.
    await page.waitForFunction(() => document.querySelector('#conn').textContent === 'live',
      null, { timeout: 20000 });
    await page.waitForFunction(
      () => [...document.querySelectorAll('#feed li')].some((li) => /raised/.test(li.textContent)),
      null, { timeout: 75000 });
    log(`live feed: ${await page.locator('#feed li').count()} lines`);

    // Before signing in, act buttons are disabled.
    const enabledBefore = await page.locator('#signals tbody button[data-act="ack"]:enabled').count();
    if (enabledBefore > 0) fail(`${enabledBefore} ack buttons enabled before sign-in`);

    // Sign in with the demo operator token.
    await page.fill('#token', TOKEN);
    await page.click('#login-btn');
    await page.waitForFunction(() => /planning/.test(document.querySelector('#who').textContent),
      null, { timeout: 10000 });
    log(`signed in as: ${await page.textContent('#who')}`);

    // The CLI watches the transitions from now on (verification outside the browser).
    const watch = start(['watch', '--json', '--server', banner.grpc, '--token', TOKEN], 'watch');
    await sleep(2000);  // let the watch subscribe (it starts from now)

    // Acknowledge an alert (not a reward) that nobody acknowledged yet. During the demo's fast
    // replay a signal may resolve itself within a second or two (hysteresis), before the ack
    // lands: then the alerter rejects the ack and we try another signal.
    const tried = new Set();
    const watched = (id, kind) => {
      for (const line of watch.text.split('\n')) {
        let e;
        try { e = JSON.parse(line); } catch { continue; }
        if (e.signal && e.signal.id === id && e.transition && e.transition.kind === kind) return e;
      }
      return null;
    };
    let id = null;
    let ev = null;
    const ackDeadline = Date.now() + 75000;
    while (!ev && Date.now() < ackDeadline) {
      id = await waitFor('an unacknowledged alert in the table', 30000, () => page.evaluate((skip) => {
        for (const tr of document.querySelectorAll('#signals tbody tr')) {
          const state = tr.querySelector('.state').textContent;
          const sev = tr.querySelector('td').className;
          const btn = tr.querySelector('button[data-act="ack"]');
          if ((state === 'firing' || state === 'escalated') && sev !== 'sev-reward' && btn &&
              !btn.disabled && !skip.includes(tr.dataset.id)) {
            return tr.dataset.id;
          }
        }
        return null;
      }, [...tried]));
      tried.add(id);
      log(`acknowledging ${id}`);
      // The table re-renders on every event; a row whose signal resolved disappears.
      const clicked = await page.locator(`#signals tbody tr[data-id="${id}"] button[data-act="ack"]`)
        .click({ timeout: 5000 }).then(() => true, () => false);
      if (!clicked) { log(`${id} left the table before the click; trying another`); continue; }
      await page.waitForFunction(
        (short) => [...document.querySelectorAll('#feed li')].some(
          (li) => li.textContent.includes(`ack sent for ${short}`)),
        id.slice(0, 10), { timeout: 10000 });
      // The CLI sees the transition (or the signal resolved itself first).
      const settled = Date.now() + 15000;
      while (Date.now() < settled) {
        ev = watched(id, 'TRANSITION_KIND_ACKNOWLEDGED');  // may be followed by RESOLVED at once
        if (ev || watched(id, 'TRANSITION_KIND_RESOLVED')) break;
        await sleep(200);
      }
      if (!ev) log(`${id} was not acknowledged (resolved first?); trying another`);
    }
    if (!ev) fail(`no acknowledgement seen by \`cybersyn watch\` after ${tried.size} tries\n${watch.text}`);
    if (ev.transition.actor !== 'planning') fail(`acknowledged by ${ev.transition.actor}, not planning`);
    log(`cybersyn watch: ${id} ACKNOWLEDGED by ${ev.transition.actor} (reason "${ev.transition.reason}")`);

    // And the page shows it live too.
    await page.waitForFunction(
      () => [...document.querySelectorAll('#feed li')].some(
        (li) => /acknowledged/.test(li.textContent) && /by planning/.test(li.textContent)),
      null, { timeout: 15000 });

    if (page.errors.length) fail(`JavaScript errors on the page: ${page.errors.join('; ')}`);
    await oneRowPerFault(page);
  } finally {
    await screenshot(page, 'opsroom.png');
    await browser.close();
  }
});
