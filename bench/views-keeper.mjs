#!/usr/bin/env node
/**
 * Benchmark: what keeping views compiled costs `mlos run` on a long log. A graph of `needs` needs
 * (a quarter of them chained by dependencies) whose event log has grown to about `events` events
 * (renames); then rounds in which 50 needs change and the workspace is compiled again:
 *   - as the view keeper does (`known`: a need page is rendered only when its seq moved, files it
 *     wrote are not read back);
 *   - baseline, measured in the same run: a compile that renders every page and reads every file,
 *     as `mlos compile` and the keeper's once-a-minute pass do.
 * Run: npm run build && node bench/views-keeper.mjs [needs] [events] [rounds]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileWorkspace } from '../dist/kernel/views/index.js';
import { createSeededPrng, ManualClock, Store } from '../dist/store/index.js';

const NEEDS = Number(process.argv[2] ?? 2000);
const EVENTS = Number(process.argv[3] ?? 100_000);
const ROUNDS = Number(process.argv[4] ?? 5);
const CHANGED = 50;
const tags = [['kernel'], ['context'], ['cleanup']];

const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-views-'));
const clock = new ManualClock();
const store = Store.open(join(dir, 'mlos.db'), { clock, prng: createSeededPrng(1) });
const ids = [];
store.transaction(() => {
  for (let i = 0; i < NEEDS; i++) {
    const need = store.needs.create({ title: `need ${i}`, tags: tags[i % tags.length] });
    if (i % 4 === 1) store.edges.link(need.id, 'depends_on', ids[i - 1]);
    ids.push(need.id);
  }
});
process.stderr.write(`building a log of ${EVENTS} events…\n`);
for (let done = store.events.headSeq(); done < EVENTS; done = store.events.headSeq()) {
  store.transaction(() => {
    for (let i = 0; i < Math.min(10_000, EVENTS - done); i++) {
      clock.advance(1);
      store.needs.update(ids[(done + i) % NEEDS], { title: `need ${(done + i) % NEEDS} (rev ${done + i})` });
    }
  });
}
const workspace = store.workspaces.require('default');
const known = new Map();
compileWorkspace(store, workspace, { outDir: join(dir, 'keeper'), known });
compileWorkspace(store, workspace, { outDir: join(dir, 'full') });

const keeperMs = [];
const fullMs = [];
for (let round = 0; round < ROUNDS; round++) {
  store.transaction(() => {
    for (let i = 0; i < CHANGED; i++) {
      clock.advance(1);
      const id = ids[(round * 997 + i * 37) % NEEDS];
      store.needs.update(id, { title: `changed in round ${round} (${i})` });
    }
  });
  let t = performance.now();
  compileWorkspace(store, workspace, { outDir: join(dir, 'keeper'), known });
  keeperMs.push(Math.round(performance.now() - t));
  t = performance.now();
  compileWorkspace(store, workspace, { outDir: join(dir, 'full') });
  fullMs.push(Math.round(performance.now() - t));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const result = {
  bench: 'views-keeper',
  needs: NEEDS,
  events: store.events.headSeq(),
  changedPerRound: CHANGED,
  keeperMs,
  fullMs,
  keeperMedianMs: median(keeperMs),
  fullMedianMs: median(fullMs),
  speedup: Math.round((median(fullMs) / median(keeperMs)) * 10) / 10,
};
store.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(result));
const row = (k, v) => `${k.padEnd(40)} ${v}`;
process.stderr.write(
  `${[
    row('needs / events', `${result.needs} / ${result.events}`),
    row(`keeper compile, ${CHANGED} needs changed (ms)`, keeperMs.join(', ')),
    row('full compile, baseline (ms)', fullMs.join(', ')),
    row('median speedup', result.speedup),
  ].join('\n')}\n`,
);
