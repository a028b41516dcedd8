import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The root of the installed package (where package.json and identities/ live). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const VERSION = (
  JSON.parse(readFileSync(`${PACKAGE_ROOT}package.json`, 'utf8')) as { version: string }
).version;
