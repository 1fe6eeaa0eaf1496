import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type AdminUsageLine, usageCsv } from '../lambdas/core/usage';
import { operatorTokenFile } from './platform';

const USAGE = `usage: npm run tenant -- <command> [options]
  create <id> [--tier T] [--placement pool|silo] [limits]
                                    onboard a tenant and print its first API key; silo: on a
                                    stack of its own (enterprise tier), served from the pool until ready
  get <id>                          show a tenant
  update <id> [--tier T] [limits] [--audit-prompts true|false] [--cache-ttl SECONDS]
         [--session-scope tenant|principal] [user limits | --no-user-limits]
                                    change tier (resets limits to its defaults), limits, audit settings,
                                    how long deterministic answers are cached (0: never), whether each
                                    user or key keeps its own sessions; each end user's own limits
  suspend <id> | resume <id>        stop or restart the tenant's calls (within the authorizer cache TTL)
  key create <id> [limits] [--project P]
                                    issue another API key (printed once), with limits of its own, its
                                    calls counted toward project P
  key project <id> <keyId> <P|none> move a key to another project (or none) from its next call on
  project set <id> <P> [limits]     project P's own limits (every key and JWT of P together)
  project remove <id> <P>           drop project P's own limits
  key revoke <id> <keyId>           revoke an API key
  adapter add <id> <name> --artifact <s3://bucket/key.tar.gz>
                                    load a LoRA adapter for the tenant (status: Creating, then InService
                                    or Failed with SageMaker's reason); its model is ft:<base>:<name>
  adapter list <id>                 the tenant's adapters and their status
  adapter remove <id> <name>        unload and forget an adapter
  prompt put <id> <name> --file <template.json>
                                    create or replace a prompt template {messages, few_shot?, model?,
                                    max_tokens?} with {{variable}} placeholders; prints its version
  prompt get <id> <name> | prompt list <id> | prompt remove <id> <name>
  route set <id> <model> [--fallback M2[,M3...]] [--on throttled,5xx,timeout,context_length,content_filter]
            [--retries N] [--weights W1,W2...] [--attempt-timeout-ms N]
                                    how the tenant's calls for <model> are served: <model> first, then
                                    each fallback in order (targets: a model, <model>@us|eu|apac|global
                                    for a cross-region profile, ft:<base>:<adapter>); --weights share
                                    first attempts among the targets
  route get <id>                    the tenant's routes, and its tier's
  route remove <id> <model>         drop the tenant's route for <model> (its tier's applies again)
  token <id> [--user U] [--project P] [--expires-in SECONDS]
                                    mint a JWT for a user of the tenant (local dev issuer)
  promote <id> [--region R] [--no-wait]
                                    move an enterprise tenant to a silo stack of its own (in region R,
                                    one the pool places silos in), serving it all along: deploy, copy,
                                    switch, wait out cached credentials, catch up
  demote <id> [--no-wait]           bring a silo tenant back to the pool, serving it all along: copy,
                                    switch, wait out cached credentials, catch up, decommission the silo
  reindex <id> | reindex --all      move a tenant's chunks (every tenant's with more than one index:
                                    the shared index of old) into an index of its own in its tier's store
  offboard <id> [--no-wait]         suspend the tenant, wait out cached credentials, delete everything
                                    held for it, keep its id as a tombstone; print the counts
  usage [--month yyyy-mm] [--csv]   every tenant's usage and cost for a month (default: this month)
  limits: [--rpm N] [--tpm N] [--monthly-tokens N] [--monthly-budget USD] (or --budget-usd);
  user limits: [--user-rpm N] [--user-tpm N] [--user-monthly-tokens N] [--user-monthly-budget USD]
  (an end user: the request's user field, or a JWT's subject); tiers: basic, standard, enterprise
Talks to the local platform on http://127.0.0.1:$PORT (default 8787) with the operator token in
$LOCAL_DATA_DIR/operator-token (default .local).`;

/**
 * The tenant CLI (`npm run tenant`): talks to the running local platform's admin routes with the
 * operator token, and writes what they answer to `out`. Throws with the message to show on failure.
 */
export async function runTenantCli(
  args: string[],
  env: { readonly PORT?: string; readonly LOCAL_DATA_DIR?: string },
  out: (line: string) => void,
  err: (line: string) => void = out,
): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tier: { type: 'string' },
      rpm: { type: 'string' },
      tpm: { type: 'string' },
      'monthly-tokens': { type: 'string' },
      'budget-usd': { type: 'string' },
      'monthly-budget': { type: 'string' },
      'user-rpm': { type: 'string' },
      'user-tpm': { type: 'string' },
      'user-monthly-tokens': { type: 'string' },
      'user-monthly-budget': { type: 'string' },
      'no-user-limits': { type: 'boolean' },
      'audit-prompts': { type: 'string' },
      'cache-ttl': { type: 'string' },
      'session-scope': { type: 'string' },
      month: { type: 'string' },
      csv: { type: 'boolean' },
      user: { type: 'string' },
      'expires-in': { type: 'string' },
      'no-wait': { type: 'boolean' },
      placement: { type: 'string' },
      region: { type: 'string' },
      artifact: { type: 'string' },
      file: { type: 'string' },
      fallback: { type: 'string' },
      project: { type: 'string' },
      on: { type: 'string' },
      retries: { type: 'string' },
      weights: { type: 'string' },
      'attempt-timeout-ms': { type: 'string' },
      all: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });

  const baseUrl = `http://127.0.0.1:${env.PORT ?? 8787}`;
  const dataDir = resolve(env.LOCAL_DATA_DIR ?? '.local');

  async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    let operatorToken: string;
    try {
      operatorToken = readFileSync(operatorTokenFile(dataDir), 'utf8').trim();
    } catch {
      throw new Error(`no operator token in ${dataDir}: is the local platform running (npm start)?`);
    }
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${operatorToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch(() => {
      throw new Error(`cannot reach ${baseUrl}: start the platform with npm start`);
    });
    const answer = (await response.json()) as Record<string, unknown>;
    if (!response.ok) throw new Error(JSON.stringify(answer));
    return answer;
  }

  const numberOption = (name: keyof typeof values) => (values[name] === undefined ? undefined : Number(values[name]));
  const tenantPath = (id: string) => `/admin/tenants/${encodeURIComponent(id)}`;
  const print = (answer: unknown) => out(JSON.stringify(answer, null, 2));

  /** The limits the options name: `--rpm`..., or `--user-rpm`... for each end user's. */
  function limitOptions(prefix: '' | 'user-' = ''): Record<string, number> {
    const option = (name: string) => numberOption(`${prefix}${name}` as keyof typeof values);
    return Object.fromEntries(
      Object.entries({
        requestsPerMinute: option('rpm'),
        tokensPerMinute: option('tpm'),
        monthlyTokens: option('monthly-tokens'),
        monthlyBudgetUsd: option('monthly-budget') ?? (prefix === '' ? option('budget-usd') : undefined),
      }).filter(([, value]) => value !== undefined),
    ) as Record<string, number>;
  }

  const list = (name: 'fallback' | 'on' | 'weights') =>
    values[name] === undefined
      ? undefined
      : String(values[name])
          .split(',')
          .map((item) => item.trim());

  /** A route from the options: the model first, then its fallbacks (the platform validates it). */
  function routeOptions(model: string) {
    const weights = list('weights');
    const targets = [model, ...(list('fallback') ?? [])].map((target, i) => ({
      model: target,
      ...(weights?.[i] !== undefined && { weight: Number(weights[i]) }),
    }));
    return {
      targets,
      ...(values.on !== undefined && { on: list('on') }),
      ...(values.retries !== undefined && { retries: numberOption('retries') }),
      ...(values['attempt-timeout-ms'] !== undefined && { attempt_timeout_ms: numberOption('attempt-timeout-ms') }),
    };
  }

  const [command, ...rest] = positionals;
  if (values.help || !command) {
    out(USAGE);
    return;
  }
  const [id, keyId] = ['key', 'adapter', 'prompt', 'route', 'project'].includes(command) ? rest.slice(1) : rest;
  /** An adapter's or a prompt template's name, or a route's model. */
  const itemName = keyId;
  /** Polls the tenant until its move has ended, saying each step once. */
  async function awaitPlacement(tenant: Record<string, unknown>) {
    let shown = '';
    // Until it ends: complete, failed before its switch, or stopped after it (its error kept: ask again to resume).
    const ended = () => ['complete', 'failed'].includes(String(tenant.placement_status)) || 'placement_error' in tenant;
    while (values['no-wait'] !== true && !ended()) {
      if (tenant.placement_status !== shown) {
        shown = String(tenant.placement_status);
        err(`placement: ${shown}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
      tenant = await call('GET', tenantPath(String(tenant.id)));
    }
    return tenant;
  }

  if (command === 'create' && id) {
    const created = await call('POST', '/admin/tenants', {
      id,
      tier: values.tier,
      limits: limitOptions(),
      placement: values.placement,
    });
    // The key first: it works in the pool now and, copied with the tenant, at its silo later.
    const key = await call('POST', `${tenantPath(id)}/api-keys`);
    print(created.placement_status ? await awaitPlacement(created) : created);
    out(String(key.api_key));
  } else if (command === 'reindex' && values.all) {
    let cursor: string | undefined;
    do {
      const page = await call(
        'GET',
        `/admin/tenants?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      for (const tenant of page.data as { id: string; status: string; placements: string[] }[]) {
        if (tenant.placements.length > 1 && tenant.status !== 'offboarded') {
          print(await call('POST', `${tenantPath(tenant.id)}/reindex`));
        }
      }
      cursor = page.next_cursor as string | undefined;
    } while (cursor);
  } else if (command === 'reindex' && id) {
    print(await call('POST', `${tenantPath(id)}/reindex`));
  } else if (command === 'promote' && id) {
    print(await awaitPlacement(await call('POST', `${tenantPath(id)}/promote`, { region: values.region })));
  } else if (command === 'demote' && id) {
    print(await awaitPlacement(await call('POST', `${tenantPath(id)}/demote`)));
  } else if (command === 'get' && id) {
    print(await call('GET', tenantPath(id)));
  } else if (command === 'update' && id) {
    const limits = limitOptions();
    const userLimits = limitOptions('user-');
    print(
      await call('PATCH', tenantPath(id), {
        tier: values.tier,
        limits: Object.keys(limits).length > 0 ? limits : undefined,
        user_limits: values['no-user-limits'] ? null : Object.keys(userLimits).length > 0 ? userLimits : undefined,
        audit_prompts: values['audit-prompts'] === undefined ? undefined : values['audit-prompts'] === 'true',
        cache_ttl_seconds: numberOption('cache-ttl'),
        session_scope: values['session-scope'],
      }),
    );
  } else if ((command === 'suspend' || command === 'resume') && id) {
    print(await call('PATCH', tenantPath(id), { status: command === 'suspend' ? 'suspended' : 'active' }));
  } else if (command === 'key' && rest[0] === 'create' && id) {
    const limits = limitOptions();
    const key = await call('POST', `${tenantPath(id)}/api-keys`, {
      ...(Object.keys(limits).length > 0 && { limits }),
      ...(values.project && { project: values.project }),
    });
    out(String(key.api_key));
  } else if (command === 'key' && rest[0] === 'project' && id && keyId && rest[3]) {
    const project = rest[3] === 'none' ? null : rest[3];
    print(await call('PATCH', `${tenantPath(id)}/api-keys/${encodeURIComponent(keyId)}`, { project }));
  } else if (command === 'project' && (rest[0] === 'set' || rest[0] === 'remove') && id && itemName) {
    // Read, change one project's limits, write back at the version read: a concurrent change is a 409.
    const tenant = await call('GET', tenantPath(id));
    const projects = { ...(tenant.project_limits as Record<string, unknown> | undefined) };
    if (rest[0] === 'remove') delete projects[itemName];
    else projects[itemName] = limitOptions();
    const projectLimits = Object.keys(projects).length > 0 ? projects : null;
    print(await call('PATCH', tenantPath(id), { project_limits: projectLimits, version: tenant.version }));
  } else if (command === 'key' && rest[0] === 'revoke' && id && keyId) {
    print(await call('DELETE', `${tenantPath(id)}/api-keys/${encodeURIComponent(keyId)}`));
  } else if (command === 'adapter' && rest[0] === 'add' && id && itemName) {
    print(await call('POST', `${tenantPath(id)}/adapters`, { name: itemName, artifact_url: values.artifact }));
  } else if (command === 'adapter' && rest[0] === 'list' && id) {
    print(await call('GET', `${tenantPath(id)}/adapters`));
  } else if (command === 'adapter' && rest[0] === 'remove' && id && itemName) {
    print(await call('DELETE', `${tenantPath(id)}/adapters/${encodeURIComponent(itemName)}`));
  } else if (command === 'prompt' && rest[0] === 'put' && id && itemName && values.file) {
    const template = JSON.parse(readFileSync(values.file, 'utf8')) as unknown;
    print(await call('PUT', `${tenantPath(id)}/prompts/${encodeURIComponent(itemName)}`, template));
  } else if (command === 'prompt' && rest[0] === 'get' && id && itemName) {
    print(await call('GET', `${tenantPath(id)}/prompts/${encodeURIComponent(itemName)}`));
  } else if (command === 'prompt' && rest[0] === 'list' && id) {
    print(await call('GET', `${tenantPath(id)}/prompts`));
  } else if (command === 'prompt' && rest[0] === 'remove' && id && itemName) {
    print(await call('DELETE', `${tenantPath(id)}/prompts/${encodeURIComponent(itemName)}`));
  } else if (command === 'route' && rest[0] === 'get' && id) {
    print(await call('GET', `${tenantPath(id)}/routing`));
  } else if (command === 'route' && (rest[0] === 'set' || rest[0] === 'remove') && id && itemName) {
    // Read, change one route, write back at the version read: a concurrent change is a 409, never lost.
    const current = await call('GET', `${tenantPath(id)}/routing`);
    const routes = { ...(current.routes as Record<string, unknown>) };
    if (rest[0] === 'remove') delete routes[itemName];
    else routes[itemName] = routeOptions(itemName);
    print(await call('PUT', `${tenantPath(id)}/routing`, { routes, version: current.version }));
  } else if (command === 'token' && id) {
    const answer = await call('POST', '/local/tokens', {
      tenant_id: id,
      user_id: values.user,
      project: values.project,
      expires_in: numberOption('expires-in'),
    });
    out(String(answer.token));
  } else if (command === 'offboard' && id) {
    let tenant = await call('DELETE', tenantPath(id));
    if (!values['no-wait']) {
      const drainUntil = String((tenant.offboarding as { drain_until?: string } | undefined)?.drain_until);
      if (tenant.status !== 'offboarded') err(`offboarding: data is deleted after ${drainUntil}`);
      while (tenant.status !== 'offboarded') {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        tenant = await call('GET', tenantPath(id));
      }
    }
    print(tenant);
  } else if (command === 'usage') {
    const month = values.month ?? new Date().toISOString().slice(0, 7);
    const report = await call('GET', `/admin/usage?month=${encodeURIComponent(month)}`);
    if (values.csv) out(usageCsv(report.data as AdminUsageLine[]));
    else print(report);
  } else {
    throw new Error(USAGE);
  }
}
