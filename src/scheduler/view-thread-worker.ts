/**
 * The views thread (see ViewThread): a read-only connection to the database and a ViewKeeper that
 * polls the event log and compiles every workspace's views when it moved, off the supervisor's
 * thread. Log lines go back to the parent, which writes them to the run's log.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Store } from '../store/index.js';
import type { Logger } from './logger.js';
import { ViewKeeper } from './view-keeper.js';
import type { ViewThreadData, ViewThreadMessage } from './view-thread.js';

const port = parentPort;
if (!port) throw new Error('view-thread-worker runs as a worker thread of ViewThread');
const data = workerData as ViewThreadData;

const post = (message: ViewThreadMessage) => {
  try {
    port.postMessage(message);
  } catch {
    // A field that cannot be cloned: the line goes without its fields.
    if (message.type === 'log') port.postMessage({ ...message, obj: {} });
  }
};
/**
 * A log field as it crosses to the parent: an error keeps its class name, code and cause, which
 * structured cloning drops.
 */
function portable(value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const { name, message, stack } = value;
  const code = (value as { code?: unknown }).code;
  return {
    type: name === 'Error' ? value.constructor.name : name,
    message,
    ...(code !== undefined && { code }),
    ...(value.cause !== undefined && { cause: portable(value.cause) }),
    stack,
  };
}
const line =
  (level: 'info' | 'warn' | 'error' | 'debug') =>
  (obj: object, msg?: string): void =>
    post({
      type: 'log',
      level,
      obj: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, portable(v)])),
      ...(msg !== undefined && { msg }),
    });
const log: Logger = { info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') };

const store = Store.open(data.path, { readonly: true, actor: 'views' });
const keeper = new ViewKeeper({ store, log, maxShare: data.maxShare });
let failing = false;
const compile = (force: boolean) => {
  try {
    keeper.maybeCompile(force);
    failing = false;
  } catch (error) {
    // The database was unreadable for a moment (say, a migration by a newer mlos): try again next
    // poll, and say so once per failing stretch.
    if (!failing) log.warn({ err: error }, 'views not compiled: the database could not be read');
    failing = true;
  }
};
const timer = setInterval(() => compile(false), data.pollMs);

port.on('message', (message: { type: 'close'; compile: boolean }) => {
  if (message.type !== 'close') return;
  clearInterval(timer);
  if (message.compile) compile(true);
  store.close();
  post({ type: 'closed' });
  port.close();
});
post({ type: 'ready' });
