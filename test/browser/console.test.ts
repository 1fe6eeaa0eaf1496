import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { call, ManualClock, onboard, startTestPlatform } from '../support/platform';

/** A Chromium installed on the machine, used when it is at least as new as the npm package's. */
const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/**
 * The Chromium to drive: `CHROMIUM_PATH` when set; else the system's when it is as new as
 * `@sparticuz/chromium`'s; else that package's, extracted on first use with the libraries it ships
 * (its Amazon Linux 2023 set), so `npm ci && npm test` needs nothing installed by hand.
 */
function chromiumToDrive(): { executablePath: string; env?: Record<string, string> } {
  if (process.env.CHROMIUM_PATH) return { executablePath: process.env.CHROMIUM_PATH };
  const majorOf = (version: string) => Number(/(\d+)\./.exec(version)?.[1] ?? 0);
  // Its `exports` hide its package.json from `import`: read from where npm put it.
  const packaged = join(__dirname, '..', '..', 'node_modules', '@sparticuz', 'chromium', 'package.json');
  const packagedMajor = majorOf(JSON.parse(readFileSync(packaged, 'utf8')).version);
  if (existsSync(SYSTEM_CHROMIUM)) {
    const systemVersion = execFileSync(SYSTEM_CHROMIUM, ['--version'], { encoding: 'utf8' });
    if (majorOf(systemVersion) >= packagedMajor) return { executablePath: SYSTEM_CHROMIUM };
  }
  // The package is ESM and decides at import whether to unpack its libraries: a child process asks it.
  const extract = "import('@sparticuz/chromium').then((m) => m.default.executablePath()).then((p) => console.log(p))";
  const executablePath = execFileSync(process.execPath, ['-e', extract], {
    encoding: 'utf8',
    env: { ...process.env, AWS_LAMBDA_JS_RUNTIME: 'nodejs24.x' },
  }).trim();
  const libraries = join(tmpdir(), 'al2023', 'lib');
  return {
    executablePath,
    env: { LD_LIBRARY_PATH: [libraries, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
  };
}
/** Where the screenshots go: printed, and kept for a look. */
const SCREENSHOTS = join(__dirname, '..', '..', 'test-output');

/** The little of the DOM these checks touch, typed here: the suite compiles without the DOM library. */
interface PageGlobals {
  document: { getElementById(id: string): unknown; body: { dataset: Record<string, string | undefined> } };
  sessionStorage: { length: number; getItem(key: string): string | null } & Record<string, unknown>;
  Chart: {
    getChart(canvas: unknown): {
      config: { type: string };
      data: { labels: string[]; datasets: { label: string; data: number[] }[] };
    };
  };
}
interface Canvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> } };
}

/** What a chart on the page holds, read from Chart.js, and how many pixels its canvas has painted. */
async function chartOf(page: Page, canvasId: string) {
  return page.evaluate((id) => {
    const { document, Chart } = globalThis as unknown as PageGlobals;
    const canvas = document.getElementById(id) as Canvas;
    const chart = Chart.getChart(canvas);
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
    return {
      type: chart.config.type,
      days: chart.data.labels,
      series: chart.data.datasets.map((set) => ({
        label: set.label,
        data: set.data,
        total: set.data.reduce((a, b) => a + b, 0),
      })),
      painted,
    };
  }, canvasId);
}

/** Which view the page shows: `operator`, `tenant` or `sign-in`. */
const viewOf = (page: Page) => page.evaluate(() => (globalThis as unknown as PageGlobals).document.body.dataset.view);

const rowsOf = (page: Page, tableId: string) =>
  page.$$eval(`#${tableId} tbody tr`, (rows) =>
    rows.map((row) => [...row.querySelectorAll('td')].map((cell) => cell.textContent ?? '')),
  );

describe('usage console in a real browser (headless Chromium)', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let browser: Browser;
  let acmeKey: string;
  let acmeKeyId: string;
  let globexKey: string;
  /** Twenty days of October: the platform's clock, and the pages' (so "this month" is the same month). */
  const clock = new ManualClock(Date.parse('2026-10-01T09:00:00Z'));
  /** Every URL the pages asked for: a credential must never be in one. */
  const requested: string[] = [];

  async function open(fragment: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
    await context.clock.setFixedTime(new Date(clock.now()));
    const page = await context.newPage();
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(`${platform.url}/console/${fragment}`);
    // Drawn, or back at the sign-in form (nothing to sign in with, or refused).
    await page.waitForSelector('body[data-ready="true"], body[data-view="sign-in"]');
    return page;
  }

  beforeAll(async () => {
    const { executablePath, env } = chromiumToDrive();
    browser = await chromium.launch({
      executablePath,
      ...(env && { env: { ...process.env, ...env } as Record<string, string> }),
      // As root in a container, without the sandbox; no background traffic to Google.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    platform = await startTestPlatform(undefined, { now: clock.now });
    ({ apiKey: acmeKey, keyId: acmeKeyId } = await onboard(platform, 'acme-co', { tier: 'standard' }));
    ({ apiKey: globexKey } = await onboard(platform, 'globex-co', { tier: 'basic', limits: { requestsPerMinute: 2 } }));
    const { apiKey: initechKey } = await onboard(platform, 'initech', { tier: 'enterprise' });
    const chat = async (credential: string, status = 200) => {
      const answer = await call(platform, 'POST', '/v1/chat/completions', {
        credential,
        body: { model: 'nova-micro', messages: [{ role: 'user', content: 'How are tenants billed?' }], max_tokens: 30 },
      });
      expect(answer.status).toBe(status);
      return answer;
    };
    // Oct 1 to 20: acme every day (2 to 4 calls), globex every other day, initech from the 11th
    for (let day = 0; day < 20; day++) {
      if (day > 0) clock.advance(86_400_000);
      for (let i = 0; i < 2 + (day % 3); i++) await chat(acmeKey);
      if (day % 2 === 0) await chat(globexKey);
      if (day >= 10) for (let i = 0; i < 3; i++) await chat(initechKey);
    }
    // globex: two calls a minute; the third is refused
    await chat(globexKey);
    await chat(globexKey);
    expect((await chat(globexKey, 429)).body.error.code).toBe('rate_limited');
    // A call of acme's project mobile, through a JWT naming it.
    const token = (
      await call(platform, 'POST', '/local/tokens', {
        credential: platform.operatorToken,
        body: { tenant_id: 'acme-co', user_id: 'ana', project: 'mobile' },
      })
    ).body.token as string;
    await chat(token);
    // A call of acme's served by its fallback: nova-lite throttled, nova-micro answers.
    const operator = { credential: platform.operatorToken };
    await call(platform, 'PUT', '/admin/tenants/acme-co/routing', {
      ...operator,
      body: {
        routes: { 'nova-lite': { targets: [{ model: 'nova-lite' }, { model: 'nova-micro' }], on: ['throttled'] } },
      },
    });
    clock.advance(61_000);
    await call(platform, 'PUT', '/local/model-faults', {
      ...operator,
      body: { model: 'nova-lite', fault: 'throttle' },
    });
    const routed = await call(platform, 'POST', '/v1/chat/completions', {
      credential: acmeKey,
      body: { model: 'nova-lite', messages: [{ role: 'user', content: 'Which model answers?' }], max_tokens: 30 },
    });
    expect(routed.body.model).toBe('nova-micro');
    await call(platform, 'PUT', '/local/model-faults', { ...operator, body: { model: 'nova-lite', fault: null } });
    const document = await call(platform, 'POST', '/v1/documents', {
      credential: acmeKey,
      body: { title: 'Refund policy', text: 'Refunds are issued within 30 days of purchase.' },
    });
    expect(document.status).toBe(201);
    mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await platform?.close();
  });

  it("shows the operator every tenant's usage and cost as charts, how close each is to its limits, and its refusals", async () => {
    const page = await open(`#key=${platform.operatorToken}`);
    expect(await viewOf(page)).toBe('operator');

    const cost = await chartOf(page, 'op-cost-chart');
    expect(cost.type).toBe('bar');
    // Largest first; each day's cost is that day's calls'
    expect(cost.series.map((s) => s.label)).toEqual(['acme-co', 'initech', 'globex-co']);
    expect(cost.days).toHaveLength(20);
    for (const series of cost.series) expect(series.total).toBeGreaterThan(0);
    expect(cost.painted).toBeGreaterThan(1000);
    const requests = await chartOf(page, 'op-requests-chart');
    expect(Object.fromEntries(requests.series.map((s) => [s.label, s.total]))).toEqual({
      // 61 chats (one its project mobile's, counted once; one served by its fallback), and the document's embedding
      'acme-co': 62,
      initech: 30,
      'globex-co': 12,
    });
    const acmeByDay = requests.series.find((s) => s.label === 'acme-co')?.data;
    expect(acmeByDay?.slice(0, 4)).toEqual([2, 3, 4, 2]);
    expect(requests.painted).toBeGreaterThan(1000);
    expect(await page.textContent('#op-requests')).toBe('104');

    const limits = await rowsOf(page, 'op-limits');
    expect(limits.map((row) => row.slice(0, 3))).toEqual([
      ['acme-co', 'standard', 'active'],
      ['initech', 'enterprise', 'active'],
      ['globex-co', 'basic', 'active'],
    ]);
    expect(limits[2][5]).toBe('2');
    const refusals = await rowsOf(page, 'op-refusals');
    expect(refusals).toEqual([[expect.any(String), 'globex-co', 'POST /v1/chat/completions', 'rate_limited', '429']]);

    // The credential left the address bar for this tab's session storage, and no URL ever carried it.
    expect(new URL(page.url()).hash).toBe('');
    const stored = await page.evaluate(() => {
      const { sessionStorage } = globalThis as unknown as PageGlobals;
      return sessionStorage.getItem('ai-platform-console-credential');
    });
    expect(stored).toBe(platform.operatorToken);
    expect(requested.filter((url) => url.includes(platform.operatorToken))).toEqual([]);
    const file = join(SCREENSHOTS, 'console-operator.png');
    await page.screenshot({ path: file, fullPage: true });
    console.log(`operator console screenshot: ${file}`);
  });

  it('shows a tenant its own usage, keys, documents and audit, and nothing of another tenant', async () => {
    const page = await open(`#key=${acmeKey}`);
    expect(await viewOf(page)).toBe('tenant');
    const cost = await chartOf(page, 't-cost-chart');
    expect(cost.series.map((s) => s.label)).toEqual(['nova-micro', 'titan-embed-text-v2']);
    expect(cost.painted).toBeGreaterThan(1000);
    expect(await rowsOf(page, 't-keys')).toEqual([[acmeKeyId, expect.any(String), 'active']]);
    expect(await rowsOf(page, 't-documents')).toEqual([['Refund policy', '1', 'indexed', expect.any(String)]]);
    const audit = await rowsOf(page, 't-audit');
    expect(audit.length).toBeGreaterThanOrEqual(6);
    expect(JSON.stringify(audit)).not.toMatch(/globex|rate_limited|NaN|undefined/);
    expect(audit).toContainEqual([
      expect.any(String),
      'POST /v1/documents',
      '201',
      'titan-embed-text-v2',
      expect.stringMatching(/^\d+$/),
      '',
    ]);
    expect(audit).toContainEqual([
      expect.any(String),
      'POST /v1/chat/completions',
      '200',
      'nova-lite',
      expect.stringMatching(/^\d+$/),
      'nova-lite=throttled, nova-micro=ok',
    ]);
    expect(await rowsOf(page, 't-scopes')).toEqual([
      ['project', 'mobile', 'nova-micro', '1', expect.stringMatching(/^\d+$/), expect.stringMatching(/^\$/)],
    ]);
    expect(await page.textContent('body')).not.toContain('globex-co');
    const file = join(SCREENSHOTS, 'console-tenant.png');
    await page.screenshot({ path: file, fullPage: true });
    console.log(`tenant console screenshot: ${file}`);
  });

  it('signs in with a credential typed into the page, and refuses a wrong one without showing anything', async () => {
    const page = await open('');
    expect(await page.isVisible('#sign-in')).toBe(true);
    await page.fill('#credential', globexKey);
    await page.click('#sign-in-form button');
    await page.waitForSelector('body[data-ready="true"]');
    expect(await viewOf(page)).toBe('tenant');

    const refused = await open('#key=sk-not-a-real-key');
    expect(await refused.textContent('#sign-in-error')).toMatch(/^Sign-in failed/);
    expect(await refused.isVisible('#operator')).toBe(false);
    expect(await refused.isVisible('#tenant')).toBe(false);
    expect(await refused.evaluate(() => (globalThis as unknown as PageGlobals).sessionStorage.length)).toBe(0);
  });
});
