import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ITEM_ACCESS_OPERATIONS, tenantLeadingKeyPatterns } from '../contract/iam';
import { TABLE_KEY } from '../contract/tables';
import { parseJson } from '../lambdas/core/json';
import {
  type DynamoDbAnswer,
  type DynamoDbHandler,
  failAsDynamoDb,
  localServer,
  readBody,
  remember,
  sendDynamoDbAnswer,
  sendDynamoDbError,
  signatureMatches,
  sigV4Scope,
} from './aws-wire';
import { capacityKind, PartitionCapacity } from './partition-capacity';
import type { LocalSts } from './sts-server';

/** What TenantAccessRole's policy allows (see lib/constructs/tenant-access-role.ts): no Scan, no table-wide reads. */

type AttributeMap = Record<string, { S?: string }>;
interface DynamoDbRequest {
  TableName?: string;
  Key?: AttributeMap;
  Item?: AttributeMap;
  KeyConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: AttributeMap;
  RequestItems?: Record<
    string,
    { PutRequest?: { Item: AttributeMap }; DeleteRequest?: { Key: AttributeMap } }[] | { Keys?: AttributeMap[] }
  >;
  TransactItems?: Partial<Record<'Put' | 'Update' | 'Delete' | 'ConditionCheck', DynamoDbRequest>>[];
  ReturnConsumedCapacity?: string;
}

/**
 * Faults the front can inject, as DynamoDB or the network would cause them: `throttle` and
 * `server-error` answer without touching the table; `lost-response` applies the request, then drops
 * the connection; `timeout` applies it and answers nothing for longer than the client waits.
 */
export type DynamoDbFault = 'throttle' | 'server-error' | 'lost-response' | 'timeout';
export type DynamoDbFaultInjector = (request: { operation: string; body: string }) => DynamoDbFault | undefined;

/** Longer than the platform's DynamoDB request timeout (3 s). */
const TIMEOUT_FAULT_MS = 3_500;

const FAULT_ERRORS = {
  throttle: {
    status: 400,
    type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException',
    message: 'Rate of requests exceeds the allowed throughput.',
  },
  'server-error': {
    status: 500,
    type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
    message: 'Internal server error',
  },
} as const;

/** One access decision of the front, kept for tests to assert who touched which partition. */
export interface AccessDecision {
  readonly operation: string;
  readonly tables: readonly string[];
  /** `TENANT#<id>` partition keys the request names. */
  readonly leadingKeys: readonly string[];
  /** The `tenantId` session tag of the signing credentials; absent for the platform's own credentials. */
  readonly tenantTag?: string;
  readonly allowed: boolean;
}

/**
 * The partition keys a request touches, per table, for the operations tenant sessions may use;
 * `undefined` when they cannot be read off the request (which IAM's LeadingKeys would refuse too).
 */
export function leadingKeys(operation: string, body: DynamoDbRequest): { table: string; key: string }[] | undefined {
  const pk = (item?: AttributeMap) => item?.[TABLE_KEY.partitionKey]?.S;
  const single = (key: string | undefined) => (body.TableName && key ? [{ table: body.TableName, key }] : undefined);
  switch (operation) {
    case 'GetItem':
    case 'DeleteItem':
    case 'UpdateItem':
      return single(pk(body.Key));
    case 'PutItem':
      return single(pk(body.Item));
    case 'Query': {
      const names = body.ExpressionAttributeNames ?? {};
      for (const [, name, value] of (body.KeyConditionExpression ?? '').matchAll(/([#\w]+)\s*=\s*(:\w+)/g)) {
        if ((names[name] ?? name) === TABLE_KEY.partitionKey) return single(body.ExpressionAttributeValues?.[value]?.S);
      }
      return undefined;
    }
    case 'BatchWriteItem':
    case 'BatchGetItem':
    case 'TransactWriteItems': {
      const found =
        operation === 'TransactWriteItems'
          ? (body.TransactItems ?? []).map((item) => {
              const action = Object.values(item)[0];
              return { table: action?.TableName, key: pk(action?.Key ?? action?.Item) };
            })
          : Object.entries(body.RequestItems ?? {}).flatMap(([table, requests]) =>
              Array.isArray(requests)
                ? requests.map((r) => ({ table, key: pk(r.PutRequest?.Item ?? r.DeleteRequest?.Key) }))
                : (requests.Keys ?? []).map((key) => ({ table, key: pk(key) })),
            );
      return found.length > 0 && found.every((f) => f.table && f.key)
        ? (found as { table: string; key: string }[])
        : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * A front for the local DynamoDB that does what IAM does on AWS for the platform's tables: tenant
 * tables answer only to credentials issued by the local STS, correctly signed, for the partition
 * `TENANT#<tenantId tag>` (the local analogue of `dynamodb:LeadingKeys`); the platform's own
 * credentials reach the other tables, and tenant tables only to Scan them (the admin report).
 */
export async function startDynamoDbFront(options: {
  /** The local DynamoDB behind the front, called in-process. */
  dynamodb: DynamoDbHandler;
  sts: LocalSts;
  /** The platform's own roles' key: any other key that is not a tenant session's is unknown. */
  platformCredentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  tenantTables: readonly string[];
  /** Tables whose tenant partitions sessions may read (GetItem, Query) but not write: the registry. */
  readableTenantTables?: readonly string[];
  /** Per-partition-key units a second. @default DynamoDB's: 1,000 write and 3,000 read units */
  partitionLimits?: { writeUnitsPerSecond: number; readUnitsPerSecond: number };
  /** The clock the per-second windows follow. */
  now?: () => number;
}): Promise<{
  endpoint: string;
  decisions: AccessDecision[];
  /** Tests only: inject faults into the requests that pass the access check (undefined stops). */
  injectFaults(injector: DynamoDbFaultInjector | undefined): void;
  /** Per-partition-key throughput, enforced, and what each key consumed. */
  capacity: PartitionCapacity;
  close(): Promise<void>;
}> {
  const decisions: AccessDecision[] = [];
  const capacity = new PartitionCapacity(options.partitionLimits, options.now);
  let faults: DynamoDbFaultInjector | undefined;

  const server: Server = localServer(async (request, response) => {
    const body = await readBody(request);
    const operation = String(request.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const accessKeyId = sigV4Scope(request.headers.authorization)?.accessKeyId ?? '';
    const session = options.sts.sessionOf(accessKeyId);
    // As DynamoDB does: a key no one issued, or a request its key did not sign, is no one's.
    const signer = session ?? (accessKeyId === options.platformCredentials.accessKeyId && options.platformCredentials);
    if (!signer) {
      return sendDynamoDbError(
        response,
        400,
        'com.amazon.coral.service#UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
    if (!(await signatureMatches(request, body, signer))) {
      return sendDynamoDbError(
        response,
        400,
        'com.amazon.coral.service#InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided.',
      );
    }
    const parsed = (parseJson(body.toString('utf8')) ?? {}) as DynamoDbRequest;
    const touched = leadingKeys(operation, parsed);
    const tables = touched?.map((t) => t.table) ?? (parsed.TableName ? [parsed.TableName] : []);
    const tenantTable = tables.some((table) => options.tenantTables.includes(table));

    let allowed: boolean;
    if (session) {
      const [ownKey, ownShards] = tenantLeadingKeyPatterns(session.tags.tenantId);
      allowed =
        session.expiresAtMs > Date.now() &&
        ITEM_ACCESS_OPERATIONS.has(operation) &&
        touched?.every(
          (t) =>
            (options.tenantTables.includes(t.table) ||
              (options.readableTenantTables?.includes(t.table) && ['GetItem', 'Query'].includes(operation))) &&
            // IAM's StringLike: the key itself, or `TENANT#<id>#` and anything after.
            (t.key === ownKey || t.key.startsWith(ownShards.slice(0, -1))),
        ) === true;
    } else {
      // The platform's own roles: the admin function's Scan for the all-tenant report, nothing else.
      allowed = !tenantTable || operation === 'Scan';
    }
    remember(decisions, {
      operation,
      tables,
      leadingKeys: [...new Set(touched?.map((t) => t.key) ?? [])],
      tenantTag: session?.tags.tenantId,
      allowed,
    });

    if (!allowed) {
      response.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(
        JSON.stringify({
          __type: 'com.amazon.coral.service#AccessDeniedException',
          Message: `User: ${session ? `assumed-role/tenant-${session.tags.tenantId}` : accessKeyId} is not authorized to perform: dynamodb:${operation} because no identity-based policy allows it`,
        }),
      );
      return;
    }
    // DynamoDB's per-partition limits: a key at its units this second is throttled before anything runs.
    const kind = capacityKind(operation);
    const keys = (touched ?? tables.map((table) => ({ table, key: '*' }))).map((t) => `${t.table}/${t.key}`);
    if (kind && capacity.exceeded(keys, kind)) {
      return sendDynamoDbError(
        response,
        400,
        'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
        'Throughput exceeds the current capacity for one or more partitions of your table.',
      );
    }
    const fault = faults?.({ operation, body: body.toString('utf8') });
    if (fault === 'throttle' || fault === 'server-error') {
      const { status, type, message } = FAULT_ERRORS[fault];
      return sendDynamoDbError(response, status, type, message);
    }
    // Ask DynamoDB (dynalite) what each request consumes, to count it per partition key.
    const asked = parsed.ReturnConsumedCapacity !== undefined && parsed.ReturnConsumedCapacity !== 'NONE';
    let answer: DynamoDbAnswer;
    try {
      answer = await options.dynamodb(
        operation,
        kind && !asked ? { ...parsed, ReturnConsumedCapacity: 'TOTAL' } : parsed,
      );
    } catch {
      return sendDynamoDbError(
        response,
        500,
        'com.amazonaws.dynamodb.v20120810#InternalServerError',
        'local DynamoDB failed',
      );
    }
    if (fault) {
      // Applied, and the answer lost: the connection drops now, or after the client stopped waiting.
      setTimeout(() => response.socket?.destroy(), fault === 'timeout' ? TIMEOUT_FAULT_MS : 0);
      return;
    }
    if (!kind) return sendDynamoDbAnswer(response, answer);
    // Count what the request consumed; hand the answer on as the client asked for it.
    const { ConsumedCapacity, ...rest } = answer.body;
    const consumed = [ConsumedCapacity ?? []].flat() as { CapacityUnits?: number }[];
    // A write refused by its condition is charged all the same (at least a unit), though dynalite reports none.
    const refused = kind === 'write' && String(answer.body.__type ?? '').endsWith('ConditionalCheckFailedException');
    capacity.record(keys, kind, refused ? 1 : consumed.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0));
    sendDynamoDbAnswer(response, asked ? answer : { status: answer.status, body: rest });
  }, failAsDynamoDb);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    decisions,
    injectFaults: (injector) => {
      faults = injector;
    },
    capacity,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
