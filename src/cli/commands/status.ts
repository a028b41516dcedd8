import type { Command } from 'commander';
import { output, withStore } from '../context.js';
import { callGuardAsOperator } from '../operator.js';

export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description('needs by state, running tasks, agents, unmet and orphaned needs, budget used')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const now = store.clock.now();
        const needs: Record<string, number> = { open: 0, active: 0, resolved: 0, dropped: 0 };
        for (const c of store.needs.counts()) needs[c.status] = (needs[c.status] ?? 0) + c.count;
        const running = store.tasks.listByStatus(['running']).map((t) => ({
          id: t.id,
          need: t.needId,
          identity: t.identity,
          attempt: t.attempt,
          ageMs: now - (t.startedAt ?? t.createdAt),
          lastProgressMs: t.progressAt === null ? null : now - t.progressAt,
          tokens: t.tokensIn + t.tokensOut + t.tokensCacheRead + t.tokensCacheWrite,
        }));
        const queued = store.tasks.listByStatus(['queued']).length;
        const agents = store.agents.live(now - 60_000).map((a) => ({
          id: a.id,
          identity: a.identity,
          worker: a.worker,
          capacity: a.capacity,
          load: a.load,
        }));
        // Identities that get no new work for now: their model was unavailable.
        const held = store.identities
          .held(now)
          .map((h) => ({ identity: h.name, until: h.until, holds: h.holds, reason: h.reason }));
        const flagged = store.needs
          .list({ status: ['open', 'active'] })
          .filter((n) => n.orphaned || n.unmetSince !== null)
          .map((n) => ({
            id: n.id,
            title: n.title,
            orphaned: n.orphaned,
            unmetSince: n.unmetSince,
            failures: store.scheduling.failures(n.id).failures,
          }));
        const lock = store.scheduling.lockHolder();
        const supervisor = lock
          ? {
              pid: lock.pid,
              host: lock.host,
              heartbeatAgeMs: now - lock.heartbeatAt,
              alive: now - lock.heartbeatAt < 15_000,
            }
          : null;
        const budget = store.budgets.totals();
        const data = { needs, queued, running, agents, held, flagged, budget, supervisor };
        output(flags.json, data, () => {
          const lines = [
            `needs: ${needs['open']} open, ${needs['active']} active, ${needs['resolved']} resolved, ${needs['dropped']} dropped`,
            `supervisor: ${supervisor ? `pid ${supervisor.pid} on ${supervisor.host}, ${supervisor.alive ? 'alive' : 'not running'} (heartbeat ${Math.round(supervisor.heartbeatAgeMs / 1000)} s ago)` : 'not running'}`,
            `tasks: ${queued} queued, ${running.length} running`,
            ...running.map(
              (t) =>
                `  ${t.id} ${t.identity} on ${t.need} attempt ${t.attempt}, ${Math.round(t.ageMs / 1000)} s old, ` +
                `${t.lastProgressMs === null ? 'no progress yet' : `progress ${Math.round(t.lastProgressMs / 1000)} s ago`}, ${t.tokens} tokens`,
            ),
            `agents: ${agents.length} live`,
            ...agents.map((a) => `  ${a.id} ${a.identity} on ${a.worker}: load ${a.load}/${a.capacity}`),
            ...(held.length > 0 ? [`held (model unavailable): ${held.length}`] : []),
            ...held.map(
              (h) =>
                `  ${h.identity} until ${new Date(h.until).toISOString()} (hold ${h.holds} in a row): ${h.reason}; ` +
                `mlos identity resume ${h.identity} ends it now`,
            ),
            `unmet or orphaned: ${flagged.length}`,
            ...flagged.map(
              (n) =>
                `  ${n.id} ${n.orphaned ? 'ORPHANED' : 'unmet'} "${n.title}"` +
                (n.failures > 0
                  ? `, ${n.failures} failed ${n.failures === 1 ? 'attempt' : 'attempts'} (mlos need retry ${n.id})`
                  : ''),
            ),
            `budget used: ${budget.tokens} tokens, $${budget.costUsd.toFixed(4)}`,
          ];
          return lines.join('\n');
        });
      });
    });

  const task = program.command('task').description('operate on tasks');
  task
    .command('cancel')
    .description('cancel a queued or running task through the guard (its lease is revoked)')
    .argument('<id>', 'task id')
    .option('--reason <text>', 'why, recorded in the event log')
    .action(async (id: string, flags: { reason?: string }, command: Command) => {
      await withStore(command, async (store) => {
        const { text } = await callGuardAsOperator(store, 'cancel_task', {
          task_id: id,
          ...(flags.reason && { reason: flags.reason }),
        });
        process.stdout.write(`${text}\n`);
      });
    });
}
