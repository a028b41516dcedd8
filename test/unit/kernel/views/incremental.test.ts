/**
 * The view keeper's compiles render a need page only when its seq moved (see needPageSeq). That is
 * sound only if a page's seq covers everything the page shows. Random runs of graph changes check
 * it: after every change an incremental compile (with `known`) must leave exactly what a compile
 * that renders every page would write, which `check` compares byte for byte. The same runs check
 * that the seq the workspace-wide files name never goes back, whether a need closes, leaves a
 * workspace (filtered by any tags, all tags, scope or status) by a change of its tags, scope or
 * status, or the workspace's filter changes.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHeader } from '../../../../src/kernel/views/header.js';
import { compileWorkspace } from '../../../../src/kernel/views/index.js';
import { createSeededPrng } from '../../../../src/store/index.js';
import { defaultWorkspace, perTestWorld, startTask } from './fixture.js';

const world = perTestWorld();

const TAGS = ['kernel', 'docs', 'ops'];

/** The files that speak for the whole workspace: their seq covers every need it shows or showed. */
const WORKSPACE_FILES = ['PROBLEM.md', 'README.md', 'graph.md'];

describe('incremental view compiles', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`leave what a full compile writes after every change (seed ${seed})`, () => {
      const { store, clock, dir } = world;
      const prng = createSeededPrng(seed);
      const random = () => prng.nextUint32() / 2 ** 32;
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const ids: string[] = [];
      /** Per workspace, what the incremental compiles wrote (as the view keeper keeps it). */
      const known = new Map<string, Map<string, string>>();
      /** Per workspace and file, the seq its header named after the last compile. */
      const lastSeq = new Map<string, number>();
      // Workspaces that show part of the graph: needs leave and join them as their tags, scope
      // and status change.
      store.workspaces.add({ name: 'part', outDir: `${dir}/part`, tagsAny: ['kernel', 'docs'] });
      store.workspaces.add({ name: 'both', outDir: `${dir}/both`, tagsAll: ['kernel', 'ops'] });
      store.workspaces.add({ name: 'sprint', outDir: `${dir}/sprint`, scope: 'sprint', tagsAny: ['docs'] });
      store.workspaces.add({ name: 'open', outDir: `${dir}/open`, tagsAny: ['kernel'], statuses: ['open'] });
      const workspaces = () => [
        defaultWorkspace(store),
        ...['part', 'both', 'sprint', 'open'].map((name) => store.workspaces.require(name)),
      ];
      const changes: (() => void)[] = [
        () => ids.push(store.needs.create({ title: `n${ids.length}`, tags: [pick(TAGS)] }).id),
        () => store.needs.update(pick(ids), { title: `renamed ${random().toFixed(4)}` }),
        () => store.needs.update(pick(ids), { tags: [pick(TAGS)] }),
        () => store.needs.update(pick(ids), { tags: [pick(TAGS), pick(TAGS)] }),
        () => store.needs.update(pick(ids), { scope: pick(['default', 'sprint']) }),
        () => store.needs.update(pick(ids), { priority: Math.floor(random() * 4) }),
        () => store.edges.link(pick(ids), 'depends_on', pick(ids)),
        () => store.edges.link(pick(ids), 'relates_to', pick(ids)),
        () => store.needs.resolve(pick(ids)),
        () => store.needs.drop(pick(ids)),
        () => startTask(store, pick(ids), clock),
        () => store.needs.setFlags(pick(ids), { unmetSince: clock.now() }),
        () =>
          store.artifacts.add(
            { kind: 'note', title: `note ${random().toFixed(4)}`, content: String(random()) },
            { needId: pick(ids) },
          ),
        () =>
          store.workspaces.add(
            { name: 'part', outDir: `${dir}/part`, tagsAny: [pick(TAGS)] },
            { replace: true },
          ),
      ];
      for (let i = 0; i < 4; i++) changes[0]!();
      let applied = 0;
      for (let step = 0; step < 60; step++) {
        clock.advance(1000);
        try {
          pick(changes)();
          applied++;
        } catch {
          // A refused change (a cycle, a closed need, a held lease…) changes nothing.
        }
        for (const ws of workspaces()) {
          if (!known.has(ws.name)) known.set(ws.name, new Map());
          compileWorkspace(store, ws, { known: known.get(ws.name)! });
          const check = compileWorkspace(store, ws, { check: true });
          expect(check.problems, `step ${step}, workspace ${ws.name}`).toEqual([]);
          for (const file of WORKSPACE_FILES) {
            const key = `${ws.name}/${file}`;
            const seq = parseHeader(readFileSync(join(ws.outDir, file), 'utf8'))!.seq;
            expect(seq, `step ${step}: ${key} went back`).toBeGreaterThanOrEqual(lastSeq.get(key) ?? 0);
            lastSeq.set(key, seq);
          }
        }
      }
      expect(applied).toBeGreaterThan(30);
    });
  }
});
