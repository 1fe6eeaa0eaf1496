import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';

/** Replaces `file` with `content` so that a crash leaves either the old or the new content, never a torn one. */
export function writeFileDurably(file: string, content: string): void {
  const temporary = `${file}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
}
