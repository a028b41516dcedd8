import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../scheduler/logger.js';

export type LogFormat = 'json' | 'pretty';

/**
 * The process logger: JSON lines (for machines) or one readable line per record (for people),
 * on stderr so stdout stays for data. `onLine` lets a progress display clear its line first.
 */
export function createLogger(format: LogFormat, level = 'info', onLine?: () => void): Logger {
  if (format === 'json') return pino({ level, base: { pid: process.pid } }, pino.destination(2));
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      onLine?.();
      for (const line of chunk.toString('utf8').split('\n'))
        if (line) process.stderr.write(`${pretty(line)}\n`);
      done();
    },
  });
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

function pretty(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, err, ...rest } = record;
  const when = typeof time === 'string' ? time.slice(11, 19) : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const error =
    err && typeof err === 'object'
      ? ` (${(err as { message?: string }).message ?? ''})`
      : err
        ? ` (${String(err)})`
        : '';
  return `${when} ${(LEVELS[level as number] ?? String(level)).padEnd(5)} ${msg ?? ''}${error}${fields ? `  ${fields}` : ''}`;
}
