/**
 * The benches' one table of AWS list prices: us-east-1, USD, on-demand, the first tier of each, no
 * free tier. Each price has its pricing page and the date it took effect; recorded 2026-12-07 from
 * those pages as last read, not fetched by the bench: check them before quoting a figure.
 */
export const PRICES = {
  // https://aws.amazon.com/api-gateway/pricing/ REST APIs, first 333 million requests a month: $3.50 per million (since 2016).
  apiGatewayRestUsdPerMillionRequests: 3.5,
  // https://aws.amazon.com/lambda/pricing/ requests: $0.20 per million (since 2014).
  lambdaUsdPerMillionRequests: 0.2,
  // https://aws.amazon.com/lambda/pricing/ duration, first 6 billion GB-s a month (x86) / 7.5 billion (Arm): per GB-s,
  // x86 since 2020-12-01 (1 ms billing), Arm (Graviton2) since 2021-09-29.
  lambdaUsdPerGbSecond: { x86_64: 0.0000166667, arm64: 0.0000133334 },
  // https://aws.amazon.com/dynamodb/pricing/on-demand/ write and read request units: $0.625 and $0.125 per million (since 2024-11-01).
  dynamodbUsdPerMillionWriteUnits: 0.625,
  dynamodbUsdPerMillionReadUnits: 0.125,
  // https://aws.amazon.com/cloudwatch/pricing/ Logs, standard class, ingestion: $0.50 per GB (Lambda's logs, tiered
  // since 2025-05-01, start at the same $0.50 for the first 10 TB a month).
  cloudwatchLogsUsdPerGbIngested: 0.5,
  // https://aws.amazon.com/cloudwatch/pricing/ custom metrics (EMF included), first 10,000: $0.30 per metric a month.
  cloudwatchUsdPerMetricMonth: 0.3,
  // https://aws.amazon.com/xray/pricing/ traces recorded: $5.00 per million (since 2017).
  xrayUsdPerMillionTracesRecorded: 5,
  // https://aws.amazon.com/bedrock/pricing/ Guardrails, per 1,000 text units (of up to 1,000 characters each):
  // content filters and denied topics $0.15 (since 2024-12-02), sensitive information filters $0.10.
  guardrailUsdPerThousandTextUnits: { contentFilters: 0.15, deniedTopics: 0.15, sensitiveInformation: 0.1 },
} as const;

export type LambdaArchitecture = keyof typeof PRICES.lambdaUsdPerGbSecond;

/** What one metered chat uses of each priced thing on AWS, as the cost bench measures or assumes it. */
export interface ChatFootprint {
  /** The Lambda functions' memory and architecture, as the CDK code configures them. */
  readonly memoryMb: number;
  readonly architecture: LambdaArchitecture;
  /** Milliseconds per invocation, before Lambda rounds up to the millisecond. */
  readonly chatHandlerMs: number;
  readonly authorizerMs: number;
  /** The share of calls API Gateway answers from its authorizer cache (no authorizer invocation). */
  readonly authorizerCacheHitRatio: number;
  /** DynamoDB units per chat (the chat handler's) and per authorizer invocation. */
  readonly chatWriteUnits: number;
  readonly chatReadUnits: number;
  readonly authorizerReadUnits: number;
  /** Bytes ingested into CloudWatch Logs per chat (handler lines, EMF, Lambda's own, the access log) and per authorizer invocation. */
  readonly chatLogBytes: number;
  readonly authorizerLogBytes: number;
  /** Distinct custom metrics the chat path publishes (EMF), billed a month each whatever the volume. */
  readonly customMetrics: number;
  readonly chatsPerMonth: number;
  /** Whether the stage and functions are traced (X-Ray). */
  readonly tracing: boolean;
  /** Text units the tier's guardrail evaluates per chat, by policy; absent: no guardrail. */
  readonly guardrailTextUnits?: GuardrailTextUnits;
}

export interface GuardrailTextUnits {
  readonly contentFilters: number;
  readonly deniedTopics: number;
  readonly sensitiveInformation: number;
}

export interface CostComponent {
  readonly component: string;
  readonly usdPerMillionChats: number;
}

const GB = 1024 ** 3;
const SECONDS_PER_MONTH = (365 * 86_400) / 12;

/** Lambda per million invocations: the request price and the duration, billed by the rounded-up millisecond. */
export function lambdaUsdPerMillion(ms: number, memoryMb: number, architecture: LambdaArchitecture): number {
  const gbSeconds = (Math.ceil(ms) / 1000) * (memoryMb / 1024);
  return PRICES.lambdaUsdPerMillionRequests + gbSeconds * PRICES.lambdaUsdPerGbSecond[architecture] * 1e6;
}

/**
 * The share of requests X-Ray records under its default sampling rule (the first request each
 * second, then 5 % of the rest), at an even `requestsPerMonth`.
 */
export function xraySampledShare(requestsPerMonth: number): number {
  const perSecond = requestsPerMonth / SECONDS_PER_MONTH;
  if (perSecond <= 1) return 1;
  return (1 + 0.05 * (perSecond - 1)) / perSecond;
}

/** Bedrock's text units for a text: one per 1,000 characters or part of them. */
export function textUnits(characters: number): number {
  return Math.ceil(characters / 1000);
}

/**
 * What the default guardrail (`lib/config.ts`: prompt attacks on the input, denied topics and
 * blocked PII both ways) evaluates of a chat of these input and output characters.
 */
export function guardrailTextUnits(inputCharacters: number, outputCharacters: number): GuardrailTextUnits {
  const input = textUnits(inputCharacters);
  const both = input + textUnits(outputCharacters);
  return { contentFilters: input, deniedTopics: both, sensitiveInformation: both };
}

/** Each priced component's dollars per million metered chats. */
export function costPerMillionChats(f: ChatFootprint): CostComponent[] {
  const misses = 1 - f.authorizerCacheHitRatio;
  const logsUsd = (bytes: number) => (bytes / GB) * PRICES.cloudwatchLogsUsdPerGbIngested * 1e6;
  const guardrail = f.guardrailTextUnits;
  const perThousand = PRICES.guardrailUsdPerThousandTextUnits;
  const components: CostComponent[] = [
    { component: 'API Gateway REST requests', usdPerMillionChats: PRICES.apiGatewayRestUsdPerMillionRequests },
    {
      component: 'Lambda chat handler',
      usdPerMillionChats: lambdaUsdPerMillion(f.chatHandlerMs, f.memoryMb, f.architecture),
    },
    {
      component: 'Lambda authorizer (cache misses)',
      usdPerMillionChats: misses * lambdaUsdPerMillion(f.authorizerMs, f.memoryMb, f.architecture),
    },
    {
      component: 'DynamoDB on-demand',
      usdPerMillionChats:
        f.chatWriteUnits * PRICES.dynamodbUsdPerMillionWriteUnits +
        (f.chatReadUnits + misses * f.authorizerReadUnits) * PRICES.dynamodbUsdPerMillionReadUnits,
    },
    {
      component: 'CloudWatch Logs ingestion',
      usdPerMillionChats: logsUsd(f.chatLogBytes + misses * f.authorizerLogBytes),
    },
    {
      component: 'CloudWatch custom metrics (EMF)',
      usdPerMillionChats: (f.customMetrics * PRICES.cloudwatchUsdPerMetricMonth * 1e6) / f.chatsPerMonth,
    },
    {
      component: 'X-Ray traces',
      usdPerMillionChats: f.tracing ? xraySampledShare(f.chatsPerMonth) * PRICES.xrayUsdPerMillionTracesRecorded : 0,
    },
  ];
  if (guardrail) {
    components.push({
      component: 'Bedrock Guardrails',
      usdPerMillionChats:
        (guardrail.contentFilters * perThousand.contentFilters +
          guardrail.deniedTopics * perThousand.deniedTopics +
          guardrail.sensitiveInformation * perThousand.sensitiveInformation) *
        1000,
    });
  }
  return components;
}
