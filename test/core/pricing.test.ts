import {
  type ChatFootprint,
  costPerMillionChats,
  guardrailTextUnits,
  lambdaUsdPerMillion,
  PRICES,
  xraySampledShare,
} from '../../bench/pricing';

const footprint: ChatFootprint = {
  memoryMb: 1024,
  architecture: 'arm64',
  chatHandlerMs: 99.2,
  authorizerMs: 10,
  authorizerCacheHitRatio: 0.9,
  chatWriteUnits: 14,
  chatReadUnits: 0,
  authorizerReadUnits: 2,
  chatLogBytes: 1024 ** 3 / 1e6,
  authorizerLogBytes: 0,
  customMetrics: 30,
  chatsPerMonth: 9_000_000,
  tracing: false,
};
const usd = (f: ChatFootprint) =>
  Object.fromEntries(costPerMillionChats(f).map((c) => [c.component, c.usdPerMillionChats]));

describe('the cost bench pricing arithmetic', () => {
  it('bills Lambda per request and per GB-second of the rounded-up millisecond, at the architecture price', () => {
    expect(lambdaUsdPerMillion(99.2, 1024, 'arm64')).toBeCloseTo(0.2 + 0.1 * 13.3334, 6);
    expect(lambdaUsdPerMillion(100, 512, 'x86_64')).toBeCloseTo(0.2 + 0.05 * 16.6667, 6);
  });

  it('counts the authorizer and its reads only on cache misses', () => {
    const costs = usd(footprint);
    expect(costs['Lambda authorizer (cache misses)']).toBeCloseTo(0.1 * lambdaUsdPerMillion(10, 1024, 'arm64'), 9);
    expect(costs['DynamoDB on-demand']).toBeCloseTo(14 * 0.625 + 0.1 * 2 * 0.125, 9);
    expect(usd({ ...footprint, authorizerCacheHitRatio: 1 })['Lambda authorizer (cache misses)']).toBe(0);
  });

  it('prices log bytes per GB ingested and spreads the monthly custom metrics over a month of chats', () => {
    const costs = usd(footprint);
    expect(costs['CloudWatch Logs ingestion']).toBeCloseTo(PRICES.cloudwatchLogsUsdPerGbIngested, 9);
    expect(costs['CloudWatch custom metrics (EMF)']).toBeCloseTo((30 * 0.3) / 9, 9);
    expect(costs['API Gateway REST requests']).toBe(3.5);
  });

  it('records every request up to one a second, then 5 % of the rest (X-Ray default sampling)', () => {
    expect(xraySampledShare(1_000)).toBe(1);
    const tenPerSecond = (10 * (365 * 86_400)) / 12;
    expect(xraySampledShare(tenPerSecond)).toBeCloseTo((1 + 0.05 * 9) / 10, 9);
    expect(usd({ ...footprint, tracing: true, chatsPerMonth: tenPerSecond })['X-Ray traces']).toBeCloseTo(0.145 * 5, 9);
    expect(usd(footprint)['X-Ray traces']).toBe(0);
  });

  it('counts guardrail text units per 1,000 characters: prompt attacks on the input, topics and PII both ways', () => {
    expect(guardrailTextUnits(47, 1001)).toEqual({ contentFilters: 1, deniedTopics: 3, sensitiveInformation: 3 });
    const costs = usd({ ...footprint, guardrailTextUnits: guardrailTextUnits(47, 75) });
    expect(costs['Bedrock Guardrails']).toBeCloseTo(0.15 * 1000 + 0.15 * 2000 + 0.1 * 2000, 9);
    expect(usd(footprint)['Bedrock Guardrails']).toBeUndefined();
  });
});
