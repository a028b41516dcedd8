import type { Store } from '../store/index.js';

/** Counters the runtime keeps in memory for /metrics. */
export interface RuntimeCounters {
  takeovers: number;
  leaseExpiries: number;
  graduated: number;
}

/**
 * Prometheus text exposition of the run: needs by status, tasks by status, queue depth, tokens,
 * cost, takeovers, lease expiries and identities held by a model outage.
 */
export function renderMetrics(
  store: Store,
  counters: RuntimeCounters,
  queueDepth: Record<string, number>,
  runId: string,
): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, samples: [Record<string, string>, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
        .join(',');
      lines.push(`${name}${l ? `{${l}}` : ''} ${value}`);
    }
  };
  const counter = (name: string, help: string, value: number) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
  };
  const byStatus = new Map<string, number>();
  for (const c of store.needs.counts()) byStatus.set(c.status, (byStatus.get(c.status) ?? 0) + c.count);
  gauge(
    'mlos_needs',
    'Needs by status.',
    ['open', 'active', 'resolved', 'dropped'].map((s) => [{ status: s }, byStatus.get(s) ?? 0]),
  );
  gauge(
    'mlos_tasks',
    'Tasks by status.',
    store.scheduling.taskCounts().map((c) => [{ status: c.status }, c.count]),
  );
  gauge(
    'mlos_queue_depth',
    'Waiting jobs per identity.',
    Object.entries(queueDepth).map(([identity, n]) => [{ identity }, n]),
  );
  const run = store.budgets.totals(runId);
  const all = store.budgets.totals();
  counter('mlos_tokens_total', 'Tokens used by model calls, all runs.', all.tokens);
  counter('mlos_cost_usd_total', 'Cost of model calls in USD, all runs.', all.costUsd);
  gauge('mlos_run_tokens', 'Tokens used in this run.', [[{}, run.tokens]]);
  counter('mlos_takeovers_total', 'Needs taken over from another task.', counters.takeovers);
  counter(
    'mlos_lease_expiries_total',
    'Leases that expired without progress (tasks lost).',
    counters.leaseExpiries,
  );
  counter('mlos_graduations_total', 'Needs graduated into tasks by this supervisor.', counters.graduated);
  const held = new Set(store.identities.held(store.clock.now()).map((h) => h.name));
  gauge(
    'mlos_identity_held',
    'Whether an identity is held (no new work) because its model was unavailable.',
    store.identities.list().map((pin) => [{ identity: pin.name }, held.has(pin.name) ? 1 : 0]),
  );
  return `${lines.join('\n')}\n`;
}
