import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../../src/cli/main.js';

const ROOT = join(import.meta.dirname, '../../..');

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  build?: string;
  image?: string;
  depends_on?: Record<string, unknown>;
}

/** Every `--flag` a command accepts, global flags included. */
function flagsOf(program: Command, name: string): Set<string> {
  const command = program.commands.find((c) => c.name() === name);
  if (!command) throw new Error(`no command ${name}`);
  const long = (o: { long?: string }) => o.long;
  return new Set(
    [...command.options.map(long), ...program.options.map(long)].filter((f): f is string => Boolean(f)),
  );
}

/** The compose file cannot be run here (no Docker engine), so its structure is checked against the CLI. */
describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, Service>;
  };
  const program = buildProgram();

  it('has Redis, one supervisor and two workers built from the repository Dockerfile', () => {
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual(['redis', 'supervisor', 'worker-1', 'worker-2']);
    expect(services['redis']!.image).toMatch(/^redis:/);
    for (const name of ['supervisor', 'worker-1', 'worker-2']) expect(services[name]!.build).toBe('.');
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain(
      'ENTRYPOINT ["node", "/app/bin/mlos.js"]',
    );
  });

  it('uses only flags the CLI accepts, with the values they need', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (!service.command || service.image) continue;
      const args = service.command;
      const sub = args.find((a) => !a.startsWith('-') && !args[args.indexOf(a) - 1]?.startsWith('--'))!;
      expect(['run', 'worker'], name).toContain(sub);
      const known = flagsOf(program, sub);
      for (const flag of args.filter((a) => a.startsWith('--')))
        expect(known, `${name}: ${flag}`).toContain(flag);
    }
    const sup = compose.services['supervisor']!.command!;
    expect(sup).toContain('--redis');
    expect(sup[sup.indexOf('--listen') + 1]).toMatch(/^0\.0\.0\.0:7411$/);
    const worker = compose.services['worker-1']!.command!;
    expect(worker[worker.indexOf('--mcp') + 1]).toBe('http://supervisor:7411/mcp');
    expect(worker[worker.indexOf('--redis') + 1]).toBe(sup[sup.indexOf('--redis') + 1]);
  });

  it('passes the tokens the CLI reads from the environment', () => {
    const sup = compose.services['supervisor']!.environment!;
    expect(Object.keys(sup).sort()).toEqual(['MLOS_OPERATOR_TOKEN', 'MLOS_WORKER_TOKEN']);
    for (const w of ['worker-1', 'worker-2']) {
      expect(compose.services[w]!.environment).toHaveProperty('MLOS_WORKER_TOKEN');
    }
    // A non-loopback --listen refuses to start without both tokens configured.
    expect(compose.services['supervisor']!.command).toContain('--listen');
  });
});
