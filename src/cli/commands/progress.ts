import type { Store } from '../../store/index.js';

/** The live progress line of `mlos run` on a terminal (stderr), redrawn at most every 250 ms. */
export class ProgressLine {
  #shown = false;
  #last = 0;

  render(store: Store, running: number, runId: string): void {
    const now = Date.now();
    if (now - this.#last < 250) return;
    this.#last = now;
    const counts = new Map<string, number>();
    for (const c of store.needs.counts()) counts.set(c.status, (counts.get(c.status) ?? 0) + c.count);
    const agents = store.agents.live(now - 60_000).length;
    const { tokens, costUsd } = store.budgets.totals(runId);
    const held = store.identities.held(now).map((h) => h.name);
    const line =
      `needs open ${counts.get('open') ?? 0} · active ${counts.get('active') ?? 0} · resolved ${counts.get('resolved') ?? 0} │ sessions ${running} │ agents ${agents}` +
      (held.length > 0 ? ` (held, model unavailable: ${held.join(', ')})` : '') +
      ` │ tokens ${tokens} · $${costUsd.toFixed(4)}`;
    process.stderr.write(`\r\x1b[2K${line}`);
    this.#shown = true;
  }

  clear(): void {
    if (!this.#shown) return;
    process.stderr.write('\r\x1b[2K');
    this.#shown = false;
  }
}
