import { Writable } from 'node:stream';
import { KEEP_ALIVE, writeStreamed } from '../../lambdas/streamed-response';

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

  it('writes a keep-alive comment between events when a whole interval passed quietly, and stops its timer at the end', async () => {
    const written: string[] = [];
    const out = new Writable({ write: (chunk: Buffer, _encoding, done) => done(void written.push(chunk.toString())) });
    let tick = () => {};
    let stopped = false;
    const ticker = (ms: number, onTick: () => void) => {
      expect(ms).toBe(KEEP_ALIVE.everyMs);
      tick = onTick;
      return () => {
        stopped = true;
      };
    };
    const next: ((chunk: string) => void)[] = [];
    const nextChunk = () => new Promise<string>((resolve) => next.push(resolve));
    async function* body() {
      yield 'data: a\n\n';
      yield await nextChunk(); // the model thinks
      yield 'data: [DONE]\n\n';
    }
    const writing = writeStreamed(body(), out, ticker);
    await new Promise((resolve) => setImmediate(resolve));
    tick(); // 'a' came during this interval: nothing yet
    expect(written).toEqual(['data: a\n\n']);
    tick(); // a whole quiet interval
    tick();
    expect(written).toEqual(['data: a\n\n', KEEP_ALIVE.comment, KEEP_ALIVE.comment]);
    next[0]('data: b\n\n');
    await writing;
    expect(written.slice(3)).toEqual(['data: b\n\n', 'data: [DONE]\n\n']);
    expect(stopped).toBe(true);
  });
});
