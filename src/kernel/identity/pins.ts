import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  DatabaseError,
  holdOf,
  IdentityDriftError,
  type IdentityPin,
  NameSchema,
  type Store,
  UserError,
} from '../../store/index.js';
import type { IdentityFileError } from './errors.js';
import {
  displayPath,
  type IdentityDir,
  type IdentityFile,
  loadIdentityDir,
  loadIdentityFile,
} from './load.js';
import { identityHash, parseIdentity } from './parse.js';
import type { Identity } from './schema.js';

/**
 * Where an identity stands between its file and its pin:
 * - `new`: a file that lints and has no pin yet (the next sync pins it);
 * - `invalid`: a file without a pin that does not lint (it cannot be pinned);
 * - `pinned`: the file matches its pin;
 * - `drifted`: the file differs from its pin, or the database still holds a drift mark;
 * - `paused`: pinned and unchanged, but the operator paused it;
 * - `held`: pinned and unchanged, but its model was unavailable: no new work until the hold ends;
 * - `missing-file`: pinned, but its file is gone or unreadable (the pin stays in force).
 */
export type IdentityState = 'new' | 'invalid' | 'pinned' | 'drifted' | 'paused' | 'held' | 'missing-file';

export interface IdentityStatus {
  readonly name: string;
  readonly state: IdentityState;
  /** The file as shown to the operator, or null when there is none. */
  readonly file: string | null;
  readonly fileHash: string | null;
  readonly pinnedHash: string | null;
  /** The database holds a drift mark (written by a sync or the watcher). */
  readonly driftRecorded: boolean;
  readonly paused: boolean;
  /** Until when a hold (its model was unavailable) keeps new work from it, or null. */
  readonly heldUntil: number | null;
  /** Whether the kernel hands this identity new work (decided from the database alone). */
  readonly runnable: boolean;
  /** The file's lint errors, if any. */
  readonly error: IdentityFileError | null;
}

export interface SyncChange {
  readonly name: string;
  readonly kind: 'pinned' | 'drifted' | 'restored';
  /** The hash of the file as read. */
  readonly fileHash: string;
  /** The pinned hash before this change (null for a first pin). */
  readonly pinnedHash: string | null;
}

export interface DriftReport {
  readonly name: string;
  readonly file: string;
  readonly pinnedHash: string;
  readonly fileHash: string;
  readonly error: IdentityDriftError;
}

export interface SyncReport {
  readonly dir: string;
  /** What this sync wrote (pins, drift marks, cleared marks), in name order. */
  readonly changes: readonly SyncChange[];
  /** Every identity whose file differs from its pin after the sync, new or already recorded. */
  readonly drift: readonly DriftReport[];
  /** Lint errors of files, one per file. */
  readonly errors: readonly IdentityFileError[];
  /** Pinned identities whose file is gone. */
  readonly missing: readonly string[];
  readonly statuses: readonly IdentityStatus[];
}

export interface ExcludedIdentity {
  readonly name: string;
  readonly reason: 'drifted' | 'paused' | 'invalid';
  readonly message: string;
}

export interface RunnableIdentities {
  readonly identities: readonly Identity[];
  readonly excluded: readonly ExcludedIdentity[];
}

export interface AcceptResult {
  readonly name: string;
  readonly file: string;
  /**
   * `pinned`: first pin; `accepted`: re-pinned to new bytes; `restored`: the file was back to its
   * pin and the drift mark was cleared; `unchanged`: nothing to do.
   */
  readonly outcome: 'pinned' | 'accepted' | 'restored' | 'unchanged';
  readonly oldHash: string | null;
  readonly newHash: string;
  /** Top-level fields (and `prompt`) that differ from the previously pinned identity. */
  readonly changedFields: readonly string[];
}

/** A hash as shown to operators. */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

/**
 * The Identity an agent runs, built from the pin's stored bytes (never from the file): workers
 * and the kernel never read identity files after the pin. Throws a DatabaseError when the stored
 * bytes do not match the pinned hash, and an IdentityFileError when they no longer lint.
 */
export function identityFromPin(pin: IdentityPin): Identity {
  const key = `${pin.name}:${pin.hash}`;
  const cached = pinnedIdentities.get(key);
  // The same pinned bytes always parse to the same (deeply frozen) identity.
  if (cached && cached.source === pin.content) return cached;
  const identity = parsePin(pin);
  if (pinnedIdentities.size >= 256) pinnedIdentities.clear();
  pinnedIdentities.set(key, identity);
  return identity;
}

const pinnedIdentities = new Map<string, Identity>();

function parsePin(pin: IdentityPin): Identity {
  if (identityHash(pin.content) !== pin.hash) {
    throw new DatabaseError(
      'identity_pin_corrupt',
      `the pinned bytes of identity ${pin.name} do not match its pinned hash ${shortHash(pin.hash)}: restore the database from a backup, or re-pin with \`mlos identity accept ${pin.name}\``,
    );
  }
  return parseIdentity(pin.content, { file: `${pin.name}.md (pinned)`, name: pin.name });
}

/**
 * The identities the kernel may give new work, built from the pinned bytes in the database.
 * Drifted and paused identities, and pins whose bytes no longer lint, are excluded with a reason.
 */
export function resolveRunnableIdentities(store: Store): RunnableIdentities {
  const identities: Identity[] = [];
  const excluded: ExcludedIdentity[] = [];
  for (const pin of store.identities.list()) {
    if (pin.driftHash !== null) {
      excluded.push({
        name: pin.name,
        reason: 'drifted',
        message: driftMessage(pin.name, null, pin.hash, pin.driftHash),
      });
      continue;
    }
    if (pin.paused) {
      excluded.push({
        name: pin.name,
        reason: 'paused',
        message: `${pin.name} is paused: resume it with \`mlos identity resume ${pin.name}\``,
      });
      continue;
    }
    try {
      identities.push(identityFromPin(pin));
    } catch (error) {
      if (!(error instanceof UserError) && !(error instanceof DatabaseError)) throw error;
      excluded.push({ name: pin.name, reason: 'invalid', message: error.message });
    }
  }
  return { identities, excluded };
}

/** The runnable identities alone; see `resolveRunnableIdentities`. */
export function runnableIdentities(store: Store): readonly Identity[] {
  return resolveRunnableIdentities(store).identities;
}

/** The state of every identity, from the folder and the database, without writing anything. */
export function identityStatuses(store: Store, dir: string): IdentityStatus[] {
  // A missing folder is no error while pins exist: each is listed as missing its file.
  if (!existsSync(dir) && store.identities.list().length > 0)
    return statusesOf(store, { dir: resolve(dir), files: [], identities: [], errors: [] });
  return statusesOf(store, loadIdentityDir(dir));
}

/** The state of one identity, from its file in `dir` (if any) and its pin (if any), without writing. */
export function identityStatus(store: Store, dir: string, name: string): IdentityStatus {
  const path = join(dir, `${name}.md`);
  return statusOf(
    name,
    store.identities.get(name),
    existsSync(path) ? loadIdentityFile(path) : undefined,
    store.clock.now(),
  );
}

/**
 * Reconciles the folder with the pins: a new file that lints is pinned (exact bytes); a file that
 * differs from its pin is marked drifted (one event per distinct drifted hash); a file back to its
 * pinned bytes clears the mark. Each identity is decided and written in its own transaction, so
 * concurrent syncs from several processes write each fact once.
 */
export function syncIdentities(store: Store, dir: string): SyncReport {
  const loaded = loadIdentityDir(dir);
  const changes: SyncChange[] = [];
  for (const file of loaded.files) {
    const change = reconcile(store, file);
    if (change) changes.push(change);
  }
  const statuses = statusesOf(store, loaded);
  const files = new Map(loaded.files.map((f) => [f.name, f]));
  const drift: DriftReport[] = [];
  for (const s of statuses) {
    if (s.state !== 'drifted' || s.fileHash === null || s.pinnedHash === null || s.fileHash === s.pinnedHash)
      continue;
    const file = files.get(s.name)!.file;
    drift.push({
      name: s.name,
      file,
      pinnedHash: s.pinnedHash,
      fileHash: s.fileHash,
      error: new IdentityDriftError(driftMessage(s.name, file, s.pinnedHash, s.fileHash)),
    });
  }
  return {
    dir: loaded.dir,
    changes,
    drift,
    errors: loaded.errors,
    missing: statuses.filter((s) => s.state === 'missing-file').map((s) => s.name),
    statuses,
  };
}

/**
 * Re-pins `name` to the current bytes of its file (writing an event with the old and new hash).
 * Refuses a file that does not lint. A file already equal to its pin only clears a drift mark.
 */
export function acceptIdentity(store: Store, dir: string, name: string): AcceptResult {
  if (!NameSchema.safeParse(name).success) {
    throw new UserError(
      `${JSON.stringify(name)} is not an identity name: list them with \`mlos identity list\``,
    );
  }
  const f = loadIdentityFile(join(dir, `${name}.md`));
  const existing = store.identities.get(name);
  if (f.hash === null) {
    throw new UserError(
      existing
        ? `${f.file} does not exist or cannot be read, so there is nothing to accept: the pin (${shortHash(existing.hash)}) stays in force; restore the file, or pause the identity with \`mlos identity pause ${name}\``
        : `${f.file} does not exist: there is no identity ${name} in ${displayPath(dir)}; list them with \`mlos identity list\``,
    );
  }
  if (f.error || !f.identity) {
    throw new UserError(
      `${f.file} does not lint, so it cannot be accepted; fix it and run \`mlos identity accept ${name}\` again:\n${f.error?.message ?? ''}`,
      { code: 'identity_invalid', cause: f.error },
    );
  }
  const identity = f.identity;
  return store.transaction(() => {
    const pin = store.identities.get(name);
    const base = { name, file: f.file, newHash: identity.hash, oldHash: pin?.hash ?? null };
    if (pin && pin.hash === identity.hash) {
      if (pin.driftHash === null) return { ...base, outcome: 'unchanged', changedFields: [] };
      store.identities.clearDrift(name);
      return { ...base, outcome: 'restored', changedFields: [] };
    }
    const before = pin ? safeIdentityFromPin(pin) : null;
    store.identities.pin(name, identity.hash, identity.source);
    return {
      ...base,
      outcome: pin ? 'accepted' : 'pinned',
      changedFields: before ? diffIdentities(before, identity) : [],
    };
  });
}

const COMPARED_FIELDS = [
  'objective',
  'invariants',
  'scope',
  'tools',
  'model',
  'capacity',
  'budgets',
  'takeover',
  'prompt',
] as const;

/** The fields (`capacity`, `scope`, `prompt`, …) whose resolved values differ between two identities. */
export function diffIdentities(a: Identity, b: Identity): string[] {
  return COMPARED_FIELDS.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

function safeIdentityFromPin(pin: IdentityPin): Identity | null {
  try {
    return identityFromPin(pin);
  } catch {
    return null;
  }
}

type Action = 'pin' | 'drift' | 'restore' | null;

function decide(pin: IdentityPin | undefined, f: IdentityFile): Action {
  if (f.hash === null) return null;
  if (!pin) return f.identity ? 'pin' : null;
  if (pin.hash === f.hash) return pin.driftHash !== null ? 'restore' : null;
  return pin.driftHash === f.hash ? null : 'drift';
}

function reconcile(store: Store, f: IdentityFile): SyncChange | null {
  // Decide outside the write lock first: a sync that changes nothing takes no lock.
  if (decide(store.identities.get(f.name), f) === null || f.hash === null) return null;
  const hash = f.hash;
  return store.transaction((): SyncChange | null => {
    const pin = store.identities.get(f.name);
    switch (decide(pin, f)) {
      case 'pin':
        store.identities.pin(f.name, hash, f.identity!.source);
        return { name: f.name, kind: 'pinned', fileHash: hash, pinnedHash: null };
      case 'drift':
        store.identities.markDrift(f.name, hash);
        return { name: f.name, kind: 'drifted', fileHash: hash, pinnedHash: pin!.hash };
      case 'restore':
        store.identities.clearDrift(f.name);
        return { name: f.name, kind: 'restored', fileHash: hash, pinnedHash: pin!.hash };
      default:
        return null;
    }
  });
}

function statusesOf(store: Store, loaded: IdentityDir): IdentityStatus[] {
  const pins = new Map(store.identities.list().map((p) => [p.name, p]));
  const files = new Map(loaded.files.map((f) => [f.name, f]));
  const names = [...new Set([...pins.keys(), ...files.keys()])].sort();
  const now = store.clock.now();
  return names.map((name) => statusOf(name, pins.get(name), files.get(name), now));
}

function statusOf(
  name: string,
  pin: IdentityPin | undefined,
  f: IdentityFile | undefined,
  now: number,
): IdentityStatus {
  const hold = pin ? holdOf(pin, now) : null;
  const fileHash = f?.hash ?? null;
  let state: IdentityState;
  if (!pin) state = f?.identity ? 'new' : 'invalid';
  else if (fileHash === null) state = 'missing-file';
  else if (fileHash !== pin.hash || pin.driftHash !== null) state = 'drifted';
  else if (pin.paused) state = 'paused';
  else if (hold) state = 'held';
  else state = 'pinned';
  return {
    name,
    state,
    file: f?.file ?? null,
    fileHash,
    pinnedHash: pin?.hash ?? null,
    driftRecorded: pin?.driftHash != null,
    paused: pin?.paused ?? false,
    heldUntil: hold?.until ?? null,
    runnable:
      pin !== undefined &&
      pin.driftHash === null &&
      !pin.paused &&
      hold === null &&
      safeIdentityFromPin(pin) !== null,
    error: f?.error ?? null,
  };
}

function driftMessage(name: string, file: string | null, pinnedHash: string, fileHash: string): string {
  return `${file ?? `the file of ${name}`} changed since it was pinned (pinned ${shortHash(pinnedHash)}, file ${shortHash(fileHash)}): ${name} gets no new work until you review the change and run \`mlos identity accept ${name}\`, or restore the file`;
}
