// The usage console: signs in with an operator token or a tenant API key, then draws what the API
// returns. Plain browser JavaScript (no build step), the same file locally and on CloudFront.
(() => {
  /** Session storage only: the credential leaves with the tab, and is never put in a URL. */
  const STORAGE_KEY = 'ai-platform-console-credential';
  const COLORS = ['#2f7de1', '#e1a02f', '#3aa675', '#d9453c', '#8a5cd6', '#1fa2b8', '#c2549d', '#7a8597'];
  /** Charts show the tenants that cost most; the rest are summed as one line. */
  const MAX_CHART_TENANTS = 7;
  /** The tenants whose audit trails are read for refusals. */
  const MAX_REFUSAL_TENANTS = 20;

  const byId = (id) => document.getElementById(id);
  const month = () => new Date().toISOString().slice(0, 7);
  const usd = (value) => `$${value < 1 ? value.toPrecision(3) : value.toFixed(2)}`;
  const count = (value) => value.toLocaleString('en-US');

  /** `#key=<credential>` in the fragment (never sent to a server) moves to session storage, and out of the address bar. */
  function credentialFromFragment() {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const key = fragment.get('key');
    if (key) {
      sessionStorage.setItem(STORAGE_KEY, key);
      history.replaceState(null, '', window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(STORAGE_KEY);
  }

  /** GET on the platform's API (same origin), the credential as a bearer token; the parsed answer. */
  async function get(path, credential) {
    const response = await fetch(path, { headers: { authorization: `Bearer ${credential}` } });
    const body = await response.json().catch(() => undefined);
    if (!response.ok) {
      const error = new Error(body?.error?.message ?? `${path} answered ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  /** Every page of a list route. */
  async function all(path, credential) {
    const items = [];
    let cursor;
    do {
      const separator = path.includes('?') ? '&' : '?';
      const page = await get(`${path}${cursor ? `${separator}cursor=${encodeURIComponent(cursor)}` : ''}`, credential);
      items.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  /** Fills a table body with rows of cells; text only, never markup from the API. */
  function fillTable(id, rows) {
    const body = byId(id).querySelector('tbody');
    body.replaceChildren(
      ...rows.map((cells) => {
        const row = document.createElement('tr');
        for (const cell of cells) {
          const td = document.createElement('td');
          if (cell instanceof Node) td.append(cell);
          else td.textContent = String(cell);
          row.append(td);
        }
        return row;
      }),
    );
  }

  /** A bar showing `used` of `limit`, and the percentage. */
  function meter(used, limit) {
    const share = limit > 0 ? used / limit : 0;
    const wrapper = document.createElement('span');
    const bar = document.createElement('span');
    bar.className = `meter${share >= 1 ? ' over' : share >= 0.8 ? ' warn' : ''}`;
    const fill = document.createElement('span');
    fill.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
    bar.append(fill);
    wrapper.append(bar, `${(share * 100).toPrecision(2)} %`);
    return wrapper;
  }

  /** The days of this month up to today: the charts' x axis. */
  function daysSoFar() {
    const today = new Date().toISOString().slice(0, 10);
    const days = [];
    for (let day = 1; day <= 31; day++) {
      const date = `${month()}-${String(day).padStart(2, '0')}`;
      if (date > today) break;
      days.push(date);
    }
    return days;
  }

  /** One series per key of `keyOf`, a value per day: Chart.js datasets, the largest first. */
  function seriesByDay(lines, keyOf, amountOf, days) {
    const series = new Map();
    for (const line of lines) {
      const key = keyOf(line);
      if (!series.has(key)) series.set(key, new Array(days.length).fill(0));
      const index = days.indexOf(line.date);
      if (index >= 0) series.get(key)[index] += amountOf(line);
    }
    const sorted = [...series.entries()].sort(([, a], [, b]) => sum(b) - sum(a));
    const shown = sorted.slice(0, MAX_CHART_TENANTS);
    const rest = sorted.slice(MAX_CHART_TENANTS);
    if (rest.length > 0) {
      shown.push([`${rest.length} others`, days.map((_, i) => sum(rest.map(([, values]) => values[i])))]);
    }
    return shown.map(([label, data], i) => ({
      label,
      data,
      backgroundColor: COLORS[i % COLORS.length],
      borderColor: COLORS[i % COLORS.length],
    }));
  }

  const sum = (values) => values.reduce((total, value) => total + value, 0);

  function chart(id, type, days, datasets, format = count) {
    const canvas = byId(id);
    window.Chart.getChart(canvas)?.destroy();
    return new window.Chart(canvas, {
      type,
      data: { labels: days.map((day) => day.slice(5)), datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: type === 'bar' },
          y: { stacked: type === 'bar', beginAtZero: true, ticks: { callback: (value) => format(value) } },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    });
  }

  async function showOperator(credential, tenants) {
    const usage = await get(`/admin/usage?month=${month()}&group_by=day`, credential);
    const days = daysSoFar();
    const live = tenants.filter((tenant) => tenant.status !== 'offboarded');
    byId('op-tenants').textContent = String(live.length);
    byId('op-requests').textContent = count(usage.totals.requests);
    byId('op-cost').textContent = usd(usage.totals.cost_usd);
    chart(
      'op-cost-chart',
      'bar',
      days,
      seriesByDay(
        usage.data,
        (l) => l.tenant_id,
        (l) => l.cost_usd,
        days,
      ),
      usd,
    );
    chart(
      'op-requests-chart',
      'line',
      days,
      seriesByDay(
        usage.data,
        (l) => l.tenant_id,
        (l) => l.requests,
        days,
      ),
    );

    const spent = new Map();
    for (const line of usage.data) {
      const total = spent.get(line.tenant_id) ?? { cost: 0, tokens: 0 };
      total.cost += line.cost_usd;
      total.tokens += line.input_tokens + line.output_tokens;
      spent.set(line.tenant_id, total);
    }
    const costOf = (tenant) => spent.get(tenant.id)?.cost ?? 0;
    const ranked = [...live].sort((a, b) => costOf(b) - costOf(a));
    fillTable(
      'op-limits',
      ranked.map((tenant) => {
        const used = spent.get(tenant.id) ?? { cost: 0, tokens: 0 };
        return [
          tenant.id,
          tenant.tier,
          tenant.status,
          meter(used.cost, tenant.limits.monthlyBudgetUsd),
          meter(used.tokens, tenant.limits.monthlyTokens),
          tenant.limits.requestsPerMinute,
          tenant.limits.tokensPerMinute,
        ];
      }),
    );

    const trails = await Promise.all(
      ranked.slice(0, MAX_REFUSAL_TENANTS).map(async (tenant) => {
        const page = await get(`/admin/tenants/${encodeURIComponent(tenant.id)}/audit?limit=50`, credential);
        return page.data.filter((entry) => entry.status >= 400).map((entry) => ({ ...entry, tenant: tenant.id }));
      }),
    );
    const refusals = trails
      .flat()
      .sort((a, b) => b.at.localeCompare(a.at))
      .slice(0, 25);
    fillTable(
      'op-refusals',
      refusals.map((entry) => [entry.at, entry.tenant, entry.route, entry.error_code ?? '', entry.status]),
    );
  }

  async function showTenant(credential, usage) {
    const days = daysSoFar();
    const scopeKinds = ['project', 'key', 'user'];
    const [keys, documents, audit, ...scopes] = await Promise.all([
      get('/v1/api-keys', credential),
      get('/v1/documents?limit=20', credential),
      get('/v1/audit?limit=20', credential),
      ...scopeKinds.map((kind) => get(`/v1/usage?from=${month()}-01&group_by=${kind}`, credential)),
    ]);
    byId('t-requests').textContent = count(usage.totals.requests);
    byId('t-tokens').textContent = count(usage.totals.input_tokens + usage.totals.output_tokens);
    byId('t-cost').textContent = usd(usage.totals.cost_usd);
    chart(
      't-cost-chart',
      'bar',
      days,
      seriesByDay(
        usage.data,
        (l) => l.model,
        (l) => l.cost_usd,
        days,
      ),
      usd,
    );
    chart('t-tokens-chart', 'line', days, [
      ...seriesByDay(
        usage.data,
        () => 'input tokens',
        (l) => l.input_tokens,
        days,
      ),
      ...seriesByDay(
        usage.data,
        () => 'output tokens',
        (l) => l.output_tokens,
        days,
      ).map((set) => ({
        ...set,
        backgroundColor: COLORS[1],
        borderColor: COLORS[1],
      })),
    ]);
    // Projects, and the keys and end users with limits of their own: each line per model.
    fillTable(
      't-scopes',
      scopes.flatMap((report, i) =>
        report.data.map((line) => [
          scopeKinds[i],
          line[scopeKinds[i]],
          line.model,
          count(line.requests),
          count(line.input_tokens + line.output_tokens),
          usd(line.cost_usd),
        ]),
      ),
    );
    fillTable(
      't-keys',
      keys.data.map((key) => [key.id, key.created_at, key.status]),
    );
    fillTable(
      't-documents',
      documents.data.map((doc) => [doc.title ?? doc.id, doc.chunks, doc.status, doc.created_at]),
    );
    fillTable(
      't-audit',
      audit.data.map((entry) => [
        entry.at,
        entry.route,
        entry.error_code ? `${entry.status} ${entry.error_code}` : entry.status,
        entry.model ?? '',
        // Embeddings have input tokens only.
        entry.input_tokens === undefined ? '' : entry.input_tokens + (entry.output_tokens ?? 0),
        // A routed call's fallbacks and retries: shown when it took more than one attempt.
        entry.attempts && entry.attempts.length > 1 ? entry.attempts.join(', ') : '',
      ]),
    );
  }

  function show(view) {
    for (const id of ['sign-in', 'operator', 'tenant']) byId(id).hidden = id !== view;
    byId('sign-out').hidden = view === 'sign-in';
    document.body.dataset.view = view;
  }

  /** Operator or tenant: the operator token opens the admin routes, a tenant key only its own. */
  async function signIn(credential) {
    byId('sign-in-error').textContent = '';
    try {
      // Any 4xx: not an operator credential (on AWS the admin routes answer a bearer token with
      // API Gateway's own refusal of an unsigned request).
      const tenants = await all('/admin/tenants?limit=100', credential).catch((error) => {
        if (error.status >= 400 && error.status < 500) return undefined;
        throw error;
      });
      if (tenants) {
        show('operator');
        byId('who').textContent = 'Operator';
        await showOperator(credential, tenants);
      } else {
        // Per day and model: the cost chart splits by model, the tokens chart sums them.
        const usage = await get(`/v1/usage?from=${month()}-01`, credential);
        show('tenant');
        byId('who').textContent = 'Tenant';
        await showTenant(credential, usage);
      }
      document.body.dataset.ready = 'true';
    } catch (error) {
      sessionStorage.removeItem(STORAGE_KEY);
      show('sign-in');
      byId('sign-in-error').textContent = `Sign-in failed: ${error.message}`;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    byId('sign-in-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const credential = byId('credential').value.trim();
      byId('credential').value = '';
      sessionStorage.setItem(STORAGE_KEY, credential);
      void signIn(credential);
    });
    byId('sign-out').addEventListener('click', () => {
      sessionStorage.removeItem(STORAGE_KEY);
      byId('who').textContent = '';
      show('sign-in');
    });
    const credential = credentialFromFragment();
    if (credential) void signIn(credential);
    else show('sign-in');
  });
})();
