import { Writable } from 'node:stream';
import { writeStreamed } from '../../lambdas/streamed-response';

describe('writeStreamed', () => {
  /** A client that reads nothing: its writable takes one byte and never drains. */
  const stalledClient = () => {
    const written: string[] = [];
    const out = new Writable({
      highWaterMark: 1,
      write: (chunk: Buffer) => void written.push(chunk.toString()),
    });
    return { out, written };
  };

  it("reads the body to its end past a reader that never drains, so the stream's settle runs at the model's pace", async () => {
    const events: string[] = [];
    async function* body() {
      try {
        for (const word of ['data: a\n\n', 'data: b\n\n', 'data: [DONE]\n\n']) {
          events.push(`yield ${word.trim()}`);
          yield word;
        }
      } finally {
        events.push('settled');
      }
    }
    const { out } = stalledClient();
    await writeStreamed(body(), out);
    expect(events).toEqual(['yield data: a', 'yield data: b', 'yield data: [DONE]', 'settled']);
    // all of it is held for the client, in order, and the answer is ended
    expect(out.writableLength).toBeGreaterThan(0);
    expect(out.writableEnded).toBe(true);
  });

  it('stops reading when the client is gone: the generator settles what it made', async () => {
    const events: string[] = [];
    const { out } = stalledClient();
    async function* body() {
      try {
        yield 'data: a\n\n';
        out.destroy();
        await new Promise((resolve) => setImmediate(resolve));
        yield 'data: b\n\n';
        events.push('never');
        yield 'data: c\n\n';
      } finally {
        events.push('settled');
      }
    }
    await writeStreamed(body(), out);
    expect(events).toEqual(['settled']);
    expect(out.writableEnded).toBe(false);
  });
});
