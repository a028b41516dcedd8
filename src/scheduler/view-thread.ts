/**
 * The view thread (see ViewKeeper): its own read-only connection to the database, compiling every
 * workspace when asked and answering how long it took and which workspaces failed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Store } from '../store/index.js';
import { type ViewThreadReply, WorkspaceCompiler } from './view-keeper.js';

const port = parentPort!;
const store = Store.open((workerData as { path: string }).path, { readonly: true, actor: 'views' });
const compiler = new WorkspaceCompiler(store);

port.on('message', (message: { verify: boolean } | 'close') => {
  if (message === 'close') {
    store.close();
    port.close();
    return;
  }
  const started = performance.now();
  const failures = compiler.compileAll(message.verify);
  const reply: ViewThreadReply = { tookMs: performance.now() - started, failures };
  port.postMessage(reply);
});
