import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Store } from '../store/index.js';

/**
 * Sends `notifications/resources/list_changed` to connected clients whenever the event log moved,
 * whoever wrote (this process, `mlos run`, the CLI). Polls the chain head; returns a stop function.
 */
export function notifyOnChange(
  store: Store,
  servers: () => Iterable<McpServer>,
  intervalMs = 1000,
): () => void {
  let last = store.events.headSeq();
  const timer = setInterval(() => {
    const seq = store.events.headSeq();
    if (seq === last) return;
    last = seq;
    for (const server of servers()) if (server.isConnected()) server.sendResourceListChanged();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
