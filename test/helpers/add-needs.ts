/**
 * A writer process for the concurrency tests: opens the store at --db (creating it if needed),
 * says `ready`, waits for the --go file to appear, then adds needs (and resolves every fifth one)
 * for --ms milliseconds. Prints one JSON line with what it did; exits 0 even when writes failed,
 * so the test can report them.
 *
 * With --open-after-go it waits for the go file before opening, so several writers race to
 * create and migrate the database.
 *
 *   node --import tsx test/helpers/add-needs.ts --db PATH --actor NAME --seed N --ms 3000 --go PATH
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createSeededPrng, Store } from '../../src/store/index.js';

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    actor: { type: 'string', default: 'writer' },
    seed: { type: 'string', default: '1' },
    ms: { type: 'string', default: '3000' },
    go: { type: 'string' },
    'open-after-go': { type: 'boolean', default: false },
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  if (!values.db) throw new Error('--db is required');
  const actor = values.actor;
  const report = {
    actor,
    created: 0,
    resolved: 0,
    failed: 0,
    errors: [] as string[],
    openError: null as string | null,
  };
  const waitForGo = async () => {
    while (values.go && !existsSync(values.go)) await sleep(2);
  };
  if (values['open-after-go']) {
    process.stdout.write('ready\n');
    await waitForGo();
  }
  let store: Store;
  try {
    store = Store.open(values.db, { actor, prng: createSeededPrng(Number(values.seed)) });
  } catch (error) {
    report.openError = (error as Error).message;
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  if (!values['open-after-go']) {
    process.stdout.write('ready\n');
    await waitForGo();
  }
  const until = performance.now() + Number(values.ms);
  let i = 0;
  while (performance.now() < until) {
    i++;
    try {
      const need = store.needs.create({ title: `${actor} need ${i}`, tags: [actor] });
      report.created++;
      if (i % 5 === 0) {
        store.needs.resolve(need.id);
        report.resolved++;
      }
    } catch (error) {
      report.failed++;
      if (report.errors.length < 5)
        report.errors.push(`${(error as { code?: string }).code}: ${(error as Error).message}`);
    }
    // Yield now and then so the event loop (and the other writers) get a turn.
    if (i % 50 === 0) await sleep(0);
  }
  store.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
