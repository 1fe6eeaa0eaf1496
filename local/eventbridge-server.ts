import { randomUUID } from 'node:crypto';
import { failAsAws, listenLocally, localServer, readBody, sendAwsError, sigV4Scope } from './aws-wire';

/** An event as a rule on the default bus would see it. */
export interface LocalEvent {
  readonly source: string;
  readonly detailType: string;
  readonly detail: unknown;
}

export interface LocalEventBridge {
  readonly endpoint: string;
  /** Every event put on the bus, oldest first. */
  readonly events: LocalEvent[];
  close(): Promise<void>;
}

/**
 * EventBridge `PutEvents` (JSON 1.1) on the default bus: events are kept, for the local platform
 * to show and the tests to read, where on AWS a rule would route them.
 */
export async function startLocalEventBridge(): Promise<LocalEventBridge> {
  const events: LocalEvent[] = [];
  const server = localServer(async (request, response) => {
    const body = JSON.parse((await readBody(request)).toString('utf8') || '{}') as {
      Entries?: { Source?: string; DetailType?: string; Detail?: string }[];
    };
    if (sigV4Scope(request.headers.authorization)?.service !== 'events') {
      return sendAwsError(
        response,
        403,
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
    if (request.headers['x-amz-target'] !== 'AWSEvents.PutEvents') {
      return sendAwsError(response, 400, 'UnsupportedOperation', 'local EventBridge serves PutEvents only');
    }
    const entries = body.Entries ?? [];
    if (entries.length === 0 || entries.length > 10) {
      return sendAwsError(response, 400, 'ValidationException', 'Entries must hold 1 to 10 events');
    }
    const results = entries.map((entry) => {
      if (!entry.Source || !entry.DetailType || !entry.Detail) {
        return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Source, DetailType and Detail are required' };
      }
      events.push({ source: entry.Source, detailType: entry.DetailType, detail: JSON.parse(entry.Detail) });
      return { EventId: randomUUID() };
    });
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    response.end(
      JSON.stringify({ FailedEntryCount: results.filter((r) => 'ErrorCode' in r).length, Entries: results }),
    );
  }, failAsAws);
  const listening = await listenLocally(server);
  return {
    ...listening,
    events,
  };
}
