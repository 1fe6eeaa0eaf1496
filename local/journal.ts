import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { writeFileDurably } from './durable-file';

/**
 * An append-only log of JSON entries, one a line, on disk before `append` returns: what a local
 * store acknowledges survives a crash of the process (and of the machine, for what `fdatasync`
 * reaches). A line cut short by a crash mid-write is dropped when the log is read.
 */
export class Journal<E> {
  private fd: number | undefined;

  constructor(private readonly file: string) {}

  /** The entries written before, in order. */
  read(): E[] {
    if (!existsSync(this.file)) return [];
    const entries: E[] = [];
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (line === '') continue;
      try {
        entries.push(JSON.parse(line) as E);
      } catch {
        break;
      }
    }
    return entries;
  }

  append(entries: readonly E[]): void {
    if (entries.length === 0) return;
    this.fd ??= openSync(this.file, 'a', 0o600);
    writeSync(this.fd, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''));
    fdatasyncSync(this.fd);
  }

  /** Replaces the whole log with `entries` (a compaction), so a crash leaves the old log or the new one. */
  rewrite(entries: readonly E[]): void {
    this.close();
    writeFileDurably(this.file, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(''));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
