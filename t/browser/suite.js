// The demo as people see it: Debian's Chromium, driven by Playwright,
// walks through the demo that `make run` and `make run-https` serve, and
// axe-core checks every page. Prints TAP; t/browser/run.sh starts the
// servers and runs this with prove.
//
// Environment (set by run.sh):
//   SDEMO_URL        http://127.0.0.1:PORT/ of `make run`'s server
//   SDEMO_HTTPS_URL  https://127.0.0.1:PORT/ of `make run-https`'s server
//   CHROMIUM         the browser binary (default /usr/bin/chromium)
//   SDEMO_ARTIFACTS  where to put a screenshot of each failing step
//   SDEMO_LOGS       the servers' logs (space-separated), checked at the end
//   SDEMO_SCREENSHOTS=DIR  instead of testing, write the screenshots of
//                    every page, desktop and phone, into DIR

'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = process.env.SDEMO_URL || 'http://127.0.0.1:8080/';
const HTTPS_BASE = process.env.SDEMO_HTTPS_URL || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.SDEMO_ARTIFACTS || '';
const SHOTS = process.env.SDEMO_SCREENSHOTS || '';
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const DESKTOP = { viewport: { width: 1280, height: 800 } };
const PHONE = {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 3,
    isMobile: true,
    hasTouch: true,
    userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 ' +
        '(KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36',
};
const UNICODE_NOTE = 'café — ünïcödé ✓';
const MARKUP_NOTE = '<b>not bold</b> & <i>not italic</i>';

const url = (p, base = BASE) => new URL(p, base).toString();

// ---- a small TAP producer -------------------------------------------------

let count = 0;
let failed = 0;

function tap(pass, name, { todo, diag } = {}) {
    count++;
    const directive = todo ? ` # TODO ${todo}` : '';
    console.log(`${pass ? 'ok' : 'not ok'} ${count} - ${name}${directive}`);
    if (!pass && diag)
        for (const line of String(diag).split('\n'))
            console.log(`# ${line}`);
    if (!pass && !todo)
        failed++;
    return pass;
}

// Runs one step; an exception is a failure of that step, never the end of
// the run. `fn` returns nothing (pass), or a string (fail, with that
// diagnostic).
async function step(name, fn, opts = {}) {
    let problem;
    try {
        problem = await fn();
    } catch (e) {
        problem = e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n') : String(e);
    }
    const pass = tap(!problem, name, { todo: opts.todo, diag: problem });
    if (!pass && ARTIFACTS && opts.page && !opts.page.isClosed()) {
        const file = path.join(ARTIFACTS, `failed-${count}.png`);
        await opts.page.screenshot({ path: file, fullPage: true }).catch(() => {});
        console.log(`# screenshot: ${file}`);
    }
    return pass;
}

// ---- what every page load is watched for ----------------------------------

// Console errors and warnings, uncaught exceptions, failed subresources
// and CSP violations, per context, each with the page it happened on.
function watch(context, problems) {
    context.on('page', (page) => watchPage(page, problems));
}

// Console lines a step provokes on purpose (Chromium logs every 4xx page,
// such as the 403 of a wrong password); each one excuses one line.
const expected = [];

function watchPage(page, problems) {
    const where = () => page.url();
    page.on('console', (m) => {
        if (m.type() !== 'error' && m.type() !== 'warning')
            return;
        const i = expected.findIndex((re) => re.test(m.text()));
        if (i >= 0)
            expected.splice(i, 1);
        else
            problems.push(`${where()}: console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`${where()}: page error: ${e.message}`));
    page.on('requestfailed', (r) => {
        const why = r.failure() && r.failure().errorText;
        // A navigation cancels what the previous page was still loading
        // (often the favicon): nothing a user would see.
        if (why !== 'net::ERR_ABORTED')
            problems.push(`${where()}: request failed: ${r.url()} (${why})`);
    });
    page.on('response', (r) => {
        if (r.request().isNavigationRequest())
            return;
        if (r.status() >= 400)
            problems.push(`${where()}: ${r.status()} for ${r.url()}`);
    });
}

async function newContext(browser, problems, options = {}) {
    const context = await browser.newContext({ ...DESKTOP, ...options });
    // A CSP violation fires this event in the page; the binding (not
    // subject to the page's CSP) reports it here.
    await context.exposeBinding('__sdemoCspViolation', (source, v) =>
        problems.push(`${source.page ? source.page.url() : '?'}: CSP violation: ${v}`));
    await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) =>
            window.__sdemoCspViolation(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}` +
                (e.sourceFile ? ` (${e.sourceFile}:${e.lineNumber})` : '')));
    });
    watch(context, problems);
    context.setDefaultTimeout(15000);
    return context;
}

// ---- page helpers ----------------------------------------------------------

async function login(page, user, password, base = BASE) {
    await page.goto(url('/login', base));
    await page.fill('#username', user);
    await page.fill('#password', password);
    await Promise.all([
        page.waitForURL(/\/dashboard$/),
        page.click('form button[type=submit]'),
    ]);
}

async function visits(page) {
    const text = await page.locator('table.kv tr', { hasText: 'Visits' }).locator('td').innerText();
    const n = Number(text.trim());
    if (!Number.isInteger(n))
        throw new Error(`the Visits row says "${text}"`);
    return n;
}

async function addNote(page, text) {
    await page.fill('#note', text);
    await Promise.all([
        page.waitForURL(/\/dashboard$/),
        page.getByRole('button', { name: 'Add note' }).click(),
    ]);
}

async function notes(page) {
    return page.locator('ul.notes li').allInnerTexts();
}

async function logout(page) {
    await Promise.all([
        page.waitForURL(/\/login/),
        page.getByRole('button', { name: 'Log out', exact: true }).click(),
    ]);
}

// Every rule axe runs by default (WCAG 2.0-2.2 A and AA, best practices).
async function axe(page) {
    await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate(async () => {
        // eslint-disable-next-line no-undef
        const r = await axe.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({
            id: v.id,
            impact: v.impact,
            help: v.help,
            nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
        }));
    });
    if (!result.length)
        return undefined;
    return result.map((v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.join('\n  ')}`).join('\n');
}

// What axe does not check: with the keyboard, every control on the page
// shows a focus ring of 3:1 or more against what is behind it, and every
// text field's border has 3:1 against its background (WCAG 2.4.7, 1.4.11).
// In the page: WCAG contrast of two colours, and the colour behind a node.
// Evaluated as a string (through DevTools, so the page's CSP allows it).
const CONTRAST = `window.__sdemoContrast = (() => {
    const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const ratio = (a, b) => {
        const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((m, n) => n - m);
        return (x + 0.05) / (y + 0.05);
    };
    const behind = (node) => {
        for (let n = node; n; n = n.parentElement) {
            const c = getComputedStyle(n).backgroundColor;
            const v = rgb(c);
            if (v.length === 3 || (v.length === 4 && v[3] > 0.5))
                return c;
        }
        return 'rgb(255, 255, 255)';
    };
    return { ratio, behind };
})();`;

async function keyboardCheck(page) {
    const bad = [];
    await page.evaluate(CONTRAST);
    // Start from the top of the page, as after loading it.
    await page.evaluate(() => {
        document.body.tabIndex = -1;
        document.body.focus();
        document.body.removeAttribute('tabindex');
    });
    let stops = 0;
    for (let i = 0; i < 100; i++) {
        await page.keyboard.press('Tab');
        const r = await page.evaluate((n) => {
            const { ratio, behind } = window.__sdemoContrast;
            const el = document.activeElement;
            if (!el || el === document.body || el.dataset.sdemoTab)
                return null;  // back at the start: every control seen
            el.dataset.sdemoTab = String(n);
            const cs = getComputedStyle(el);
            const text = el.textContent.trim().slice(0, 30);
            const name = `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${text ? ` "${text}"` : ''}`;
            const problems = [];
            // The ring lies outside the control (outline-offset), on
            // whatever is behind the control.
            const around = behind(el.parentElement);
            if (cs.outlineStyle === 'none' || parseFloat(cs.outlineWidth) < 2)
                problems.push(`no focus ring (outline ${cs.outlineStyle} ${cs.outlineWidth})`);
            else if (ratio(cs.outlineColor, around) < 3)
                problems.push(`focus ring ${cs.outlineColor} has ${ratio(cs.outlineColor, around).toFixed(2)}:1`);
            return { name, problems };
        }, i);
        if (!r)
            break;
        stops++;
        for (const pr of r.problems)
            bad.push(`${r.name}: ${pr}`);
    }
    if (!stops)
        bad.push('Tab reaches no control');
    // Text fields, unfocused: the border against the field's inside or
    // against the page around it, whichever is higher (either edge shows
    // where the field is).
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    bad.push(...await page.evaluate(() => {
        const { ratio, behind } = window.__sdemoContrast;
        const out = [];
        for (const el of document.querySelectorAll(
            'input:not([type=hidden]):not([type=submit]):not([type=button]), textarea, select')) {
            const c = getComputedStyle(el).borderTopColor;
            const best = Math.max(ratio(c, behind(el)), ratio(c, behind(el.parentElement)));
            if (best < 3)
                out.push(`${el.tagName.toLowerCase()}#${el.id}: border ${c} has ${best.toFixed(2)}:1`);
        }
        return out;
    }));
    return bad.length ? `${page.url()}:\n  ${bad.join('\n  ')}` : undefined;
}

function expectHeaders(response, what) {
    const h = response.headers();
    const bad = [];
    const csp = h['content-security-policy'] || '';
    if (!/frame-ancestors 'none'/.test(csp))
        bad.push(`CSP without frame-ancestors 'none': "${csp}"`);
    // No script at all: script-src 'none', or no script-src under
    // default-src 'none'.
    const scriptSrc = (csp.match(/script-src ([^;]*)/) || [])[1];
    if (scriptSrc ? scriptSrc.trim() !== "'none'" : !/default-src 'none'/.test(csp))
        bad.push(`CSP allows script: "${csp}"`);
    if (h['x-frame-options'] !== 'DENY')
        bad.push(`X-Frame-Options: ${h['x-frame-options']}`);
    if (h['x-content-type-options'] !== 'nosniff')
        bad.push(`X-Content-Type-Options: ${h['x-content-type-options']}`);
    if (h['referrer-policy'] !== 'same-origin')
        bad.push(`Referrer-Policy: ${h['referrer-policy']}`);
    return bad.length ? `${what}: ${bad.join('; ')}` : undefined;
}

// ---- the tests -------------------------------------------------------------

async function tests(browser) {
    const problems = [];
    const ctx = await newContext(browser, problems);
    const page = await ctx.newPage();
    const o = { page };

    await step('/ answers 200 with the security headers of the module\'s pages', async () => {
        const r = await page.goto(url('/'));
        if (r.status() !== 200)
            return `status ${r.status()}`;
        return expectHeaders(r, '/');
    }, o);
    await step('/ shows the demo credentials and links to the login page', async () => {
        const text = await page.locator('main').innerText();
        const missing = ['admin', 'secret', 'password'].filter((w) => !text.includes(w));
        if (missing.length)
            return `missing: ${missing.join(', ')}`;
        if (!(await page.locator('main a[href="/login"]').count()))
            return 'no link to /login in main';
    }, o);
    await step('/ draws the request flow and maps PHP\'s session API', async () => {
        const flow = await page.locator('#flow').innerText();
        for (const w of ['POST /login', 'Set-Cookie', 'GET /dashboard', 'Welcome'])
            if (!flow.includes(w))
                return `the flow lacks "${w}"`;
        const php = await page.locator('#php table').innerText();
        for (const w of ['session_start()', '$_SESSION', 'isset', 'unset', 'session_regenerate_id(true)',
            'session_destroy()', 'SessionDemoCookieName', 'SessionDemoIdleTimeout', 'SessionDemoMaxAge',
            'SessionDemoCookieSameSite', 'SessionDemoCookieSecure'])
            if (!php.includes(w))
                return `the PHP table lacks "${w}"`;
    }, o);
    await step('axe: / has no violations', () => axe(page), o);
    await step('keyboard: / shows a focus ring on every control', () => keyboardCheck(page), o);

    await step('/login answers 200 with the security headers', async () => {
        const r = await page.goto(url('/login'));
        if (r.status() !== 200)
            return `status ${r.status()}`;
        return expectHeaders(r, '/login');
    }, o);
    await step('axe: /login has no violations', () => axe(page), o);
    await step('keyboard: /login shows a focus ring on every control; fields have 3:1 borders',
        () => keyboardCheck(page), o);

    await step('a wrong password gets 403 and one generic message', async () => {
        await page.fill('#username', 'admin');
        await page.fill('#password', 'not-the-password');
        expected.push(/status of 403/);
        const [r] = await Promise.all([
            page.waitForResponse((res) => res.request().method() === 'POST'),
            page.click('form button[type=submit]'),
        ]);
        await page.waitForLoadState();
        if (r.status() !== 403)
            return `status ${r.status()}`;
        if (!(await page.locator('.msg-error').count()))
            return 'no error message shown';
    }, o);
    await step('axe: the failed-login page has no violations', () => axe(page), o);

    await step('log in as admin / secret: the dashboard says "Welcome, admin!"', async () => {
        await login(page, 'admin', 'secret');
        const h1 = await page.locator('h1').innerText();
        if (!h1.includes('Welcome, admin!'))
            return `h1 is "${h1}"`;
        const cookies = await ctx.cookies();
        const sid = cookies.find((c) => c.name === 'sid');
        if (!sid || !sid.httpOnly || sid.sameSite !== 'Lax' || sid.path !== '/')
            return `cookie: ${JSON.stringify(sid)}`;
        if (!/^[A-Za-z0-9_-]{43}$/.test(sid.value))
            return `the ID is not 43 base64url characters: ${sid.value.length}`;
    }, o);

    await step('each reload counts exactly one visit', async () => {
        const seen = [await visits(page)];
        for (let i = 0; i < 3; i++) {
            await page.reload();
            seen.push(await visits(page));
        }
        for (let i = 1; i < seen.length; i++)
            if (seen[i] !== seen[i - 1] + 1)
                return `visits over four loads: ${seen.join(', ')}`;
    }, o);

    await step('notes: a plain note and one with markup are shown as typed', async () => {
        await addNote(page, 'first note');
        await addNote(page, MARKUP_NOTE);
        const got = await notes(page);
        if (got[0] !== 'first note' || got[1] !== MARKUP_NOTE)
            return `notes shown: ${JSON.stringify(got)}`;
        if (await page.locator('ul.notes b, ul.notes i').count())
            return 'the markup in a note was rendered';
    }, o);
    await step(`notes: a non-ASCII note is shown as typed ("${UNICODE_NOTE}")`, async () => {
        await addNote(page, UNICODE_NOTE);
        const got = await notes(page);
        if (got[got.length - 1] !== UNICODE_NOTE)
            return `last note shown: ${JSON.stringify(got[got.length - 1])}`;
    }, o);
    await step('notes: they are still there after a reload', async () => {
        await page.reload();
        const got = await notes(page);
        if (got.length !== 3 || got[0] !== 'first note')
            return `notes shown: ${JSON.stringify(got)}`;
    }, o);
    await step('axe: /dashboard has no violations', () => axe(page), o);
    await step('keyboard: /dashboard shows a focus ring on every control; fields have 3:1 borders',
        () => keyboardCheck(page), o);

    await step('/session-status shows the store\'s figures', async () => {
        const r = await page.goto(url('/session-status'));
        if (r.status() !== 200)
            return `status ${r.status()}`;
        const text = await page.locator('main').innerText();
        if (!/capacity/i.test(text) || !/sessions/i.test(text))
            return `no figures: ${text.slice(0, 200)}`;
        return expectHeaders(r, '/session-status');
    }, o);
    await step('axe: /session-status has no violations', () => axe(page), o);

    await step('log out: the login page says so and the cookie is gone', async () => {
        await page.goto(url('/dashboard'));
        await logout(page);
        const msg = await page.locator('main').innerText();
        if (!/logged out/i.test(msg))
            return `no logged-out message: ${msg.slice(0, 200)}`;
        const sid = (await ctx.cookies()).find((c) => c.name === 'sid');
        if (sid)
            return `cookie still there: ${JSON.stringify(sid)}`;
    }, o);
    await step('axe: the logged-out login page has no violations', () => axe(page), o);

    await step('Back after logout shows no cached dashboard', async () => {
        await page.goBack();
        await page.waitForLoadState();
        const text = await page.locator('body').innerText();
        if (/Welcome/.test(text) || text.includes('first note'))
            return `the dashboard came back: ${page.url()}`;
        if (!(await page.locator('#password').count()))
            return `not the login page: ${page.url()}`;
    }, o);

    await step('phone (390 px): no page scrolls sideways', async () => {
        const phone = await newContext(browser, problems, PHONE);
        const p = await phone.newPage();
        const wide = [];
        const check = async (where) => {
            const w = await p.evaluate(() => document.documentElement.scrollWidth);
            if (w > 390)
                wide.push(`${where}: ${w}px`);
        };
        for (const path of ['/', '/login', '/session-status']) {
            await p.goto(url(path));
            await check(path);
        }
        await login(p, 'admin', 'secret');
        await addNote(p, 'a-very-long-note-without-any-space-' + 'x'.repeat(120));
        await check('/dashboard');
        await logout(p);
        await phone.close();
        if (wide.length)
            return wide.join('; ');
    }, o);

    // "Your sessions": the dashboard lists the user's sessions and can end
    // any one of them.
    await step('your sessions: ending the other browser\'s session from the dashboard', async () => {
        const other = await newContext(browser, problems);
        try {
            const a = page;
            const b = await other.newPage();
            await login(a, 'admin', 'secret');
            await login(b, 'admin', 'secret');
            await a.reload();
            const list = a.locator('section', { has: a.getByRole('heading', { name: /your sessions/i }) });
            if (!(await list.count()))
                return 'the dashboard has no "Your sessions" section';
            const row = list.locator('tbody tr').filter({ hasNotText: /this device/i }).first();
            await Promise.all([a.waitForLoadState(), row.getByRole('button', { name: /end|log out/i }).click()]);
            await b.reload();
            if (!(await b.locator('#password').count()))
                return 'the other browser is still logged in';
            await a.reload();
            if (!/Welcome/.test(await a.locator('h1').innerText()))
                return 'this browser lost its own session too';
        } finally {
            await other.close();
        }
    }, o);

    // ---- HTTPS, as `make run-https` serves it ----
    let tlsProblems = [];
    if (HTTPS_BASE) {
        const sctx = await newContext(browser, tlsProblems, { ignoreHTTPSErrors: true });
        const sp = await sctx.newPage();
        await step('https: / is served over TLS 1.2 or 1.3 with the security headers', async () => {
            const r = await sp.goto(url('/', HTTPS_BASE));
            const sec = await r.securityDetails();
            if (!sec || !/^TLS 1\.[23]$/.test(sec.protocol))
                return `protocol: ${sec && sec.protocol}`;
            if (!/^https:/.test(sp.url()))
                return `not https: ${sp.url()}`;
            if (r.headers()['server'] && r.headers()['server'] !== 'Apache')
                return `Server header shows more than "Apache": ${r.headers()['server']}`;
            return expectHeaders(r, 'https /');
        }, { page: sp });
        await step('https: login sets __Host-sid (Secure, HttpOnly, SameSite=Lax, Path=/, no Domain)', async () => {
            await login(sp, 'alice', 'password', HTTPS_BASE);
            const h1 = await sp.locator('h1').innerText();
            if (!h1.includes('Welcome, alice!'))
                return `h1 is "${h1}"`;
            const cookies = await sctx.cookies();
            const c = cookies.find((k) => k.name === '__Host-sid');
            if (!c)
                return `no __Host-sid cookie: ${cookies.map((k) => k.name).join(', ')}`;
            if (!c.secure || !c.httpOnly || c.sameSite !== 'Lax' || c.path !== '/' || c.domain.startsWith('.'))
                return `cookie: ${JSON.stringify(c)}`;
            if (cookies.some((k) => k.name === 'sid'))
                return 'a plain sid cookie too';
        }, { page: sp });
        await step('https: reload counts one visit; log out clears __Host-sid', async () => {
            const v = await visits(sp);
            await sp.reload();
            if ((await visits(sp)) !== v + 1)
                return 'visits did not go up by one';
            await logout(sp);
            if ((await sctx.cookies()).some((k) => k.name === '__Host-sid'))
                return 'the cookie is still there';
        }, { page: sp });
        await sctx.close();
    } else {
        for (const n of ['https: / over TLS 1.2 or 1.3', 'https: __Host-sid cookie', 'https: visits and logout'])
            tap(true, `${n} # SKIP no SDEMO_HTTPS_URL`);
    }

    await step('no console error, failed request or CSP violation on any page', () => {
        const all = problems.concat(tlsProblems);
        return all.length ? all.join('\n') : undefined;
    });
    await step('the servers logged no error, warning or crash', () => {
        const bad = [];
        for (const file of (process.env.SDEMO_LOGS || '').split(' ').filter(Boolean))
            for (const line of fs.readFileSync(file, 'utf8').split('\n'))
                if (/\[(\w+:)?(emerg|alert|crit|error|warn)\]|AH00052|Segmentation|AddressSanitizer/.test(line))
                    bad.push(`${path.basename(file)}: ${line}`);
        return bad.length ? bad.join('\n') : undefined;
    });
    await ctx.close();
}

// ---- screenshots -----------------------------------------------------------

async function screenshots(browser) {
    fs.mkdirSync(SHOTS, { recursive: true });
    for (const [device, options] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const problems = [];
        const ctx = await newContext(browser, problems, options);
        const page = await ctx.newPage();
        const shot = async (name) => {
            const file = path.join(SHOTS, `${name}-${device}.png`);
            await page.screenshot({ path: file, fullPage: true, scale: 'css' });
            console.log(`wrote ${file}`);
        };
        await page.goto(url('/'));
        await shot('1-home');
        await page.goto(url('/login'));
        await shot('2-login');
        await login(page, 'admin', 'secret');
        await addNote(page, 'Notes live in the session, on the server.');
        await addNote(page, 'Reload: one visit per view.');
        await shot('3-dashboard');
        await page.goto(url('/session-status'));
        await shot('4-session-status');
        await page.goto(url('/dashboard'));
        await logout(page);
        await shot('5-logged-out');
        await ctx.close();
        if (problems.length)
            console.error(`problems seen on ${device}:\n  ${problems.join('\n  ')}`);
    }
}

(async () => {
    const watchdog = setTimeout(() => {
        console.log('Bail out! the browser suite took more than 5 minutes');
        process.exit(2);
    }, 300000);
    const browser = await chromium.launch({ executablePath: CHROMIUM });
    try {
        if (SHOTS) {
            await screenshots(browser);
        } else {
            await tests(browser);
            console.log(`1..${count}`);
        }
    } finally {
        await browser.close();
        clearTimeout(watchdog);
    }
    process.exitCode = failed ? 1 : 0;
})().catch((e) => {
    console.log(`Bail out! ${e && e.message}`);
    process.exit(2);
});
