#!/usr/bin/env node
// Runs every benchmark in bench/ (or those named on the command line) one after another and
// prints each one's JSON line. Each benchmark compares against a baseline measured in the same run.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
let failed = 0;
for (const file of files) {
  process.stderr.write(`\n── ${file}\n`);
  const result = spawnSync(process.execPath, [join(here, file)], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) {
    failed++;
    process.stderr.write(`${file} failed with exit code ${result.status}\n`);
  }
}
process.exitCode = failed ? 1 : 0;
