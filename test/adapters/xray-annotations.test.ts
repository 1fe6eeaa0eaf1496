import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { annotateTrace } from '../../lambdas/adapters/xray-annotations';

describe('X-Ray trace annotations (the daemon UDP protocol)', () => {
  let daemon: Socket;
  let address: string;
  beforeAll(async () => {
    daemon = createSocket('udp4');
    daemon.bind(0, '127.0.0.1');
    await once(daemon, 'listening');
    address = `127.0.0.1:${(daemon.address() as AddressInfo).port}`;
  });
  afterAll(() => daemon.close());

  const traceId = 'Root=1-6745a1b2-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:0';

  it("sends a finished subsegment with the annotations under the invocation's segment", async () => {
    const received = once(daemon, 'message');
    annotateTrace(
      { tenantId: 'acme', tier: 'basic' },
      { _X_AMZN_TRACE_ID: traceId, AWS_XRAY_DAEMON_ADDRESS: `tcp:${address} udp:${address}` },
      1_795_600_000_123,
    );
    const [datagram] = (await received) as [Buffer];
    const [header, body] = datagram.toString().split('\n');
    expect(JSON.parse(header)).toEqual({ format: 'json', version: 1 });
    const subsegment = JSON.parse(body);
    expect(subsegment).toMatchObject({
      type: 'subsegment',
      name: 'tenant',
      trace_id: '1-6745a1b2-0123456789abcdef01234567',
      parent_id: '53995c3f42cd8ad8',
      start_time: 1_795_600_000.123,
      end_time: 1_795_600_000.123,
      annotations: { tenantId: 'acme', tier: 'basic' },
    });
    expect(subsegment.id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('sends nothing for an unsampled trace, or outside Lambda', async () => {
    const received: Buffer[] = [];
    const listen = (message: Buffer) => received.push(message);
    daemon.on('message', listen);
    annotateTrace(
      { tenantId: 'acme' },
      { _X_AMZN_TRACE_ID: traceId.replace('Sampled=1', 'Sampled=0'), AWS_XRAY_DAEMON_ADDRESS: address },
    );
    annotateTrace({ tenantId: 'acme' }, {});
    // A sampled one after them: once it arrives, the two before it would have arrived too.
    const marker = once(daemon, 'message');
    annotateTrace({ tenantId: 'marker' }, { _X_AMZN_TRACE_ID: traceId, AWS_XRAY_DAEMON_ADDRESS: address });
    await marker;
    daemon.off('message', listen);
    expect(received.map((m) => JSON.parse(m.toString().split('\n')[1]).annotations.tenantId)).toEqual(['marker']);
  });
});
