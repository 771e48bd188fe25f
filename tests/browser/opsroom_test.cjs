// The Opsroom in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// start `cybersyn demo`, open the Opsroom, see the tree, wait for a signal to arrive live over
// server-sent events, sign in with the demo operator token, click "ack" on a signal, and verify
// the acknowledgement through the CLI (`cybersyn watch --json` sees ACKNOWLEDGED by planning).
// Saves a screenshot (its path is printed) as the test's artefact. Exits non-zero on failure.
'use strict';

const { TOKEN, log, fail, sleep, start, waitFor, startDemo, openBrowser, main, screenshot } =
  require('./lib.cjs');

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
  } finally {
    await screenshot(page, 'opsroom.png');
    await browser.close();
  }
});
