import { type FSWatcher, watch } from 'node:fs';
import { resolve } from 'node:path';
import type { Store } from '../../store/index.js';
import { type SyncReport, syncIdentities } from './pins.js';

export interface IdentityWatcherOptions {
  readonly store: Store;
  /** The identities folder. */
  readonly dir: string;
  /** Quiet time after the last file event before a sync runs, in ms (editors write in bursts). */
  readonly debounceMs?: number;
  /**
   * A sync runs at least this often, in ms, whatever fs.watch reports: the fallback for file
   * systems where fs.watch misses events (network mounts, some containers) or fails.
   */
  readonly pollIntervalMs?: number;
  /** Use fs.watch for prompt detection (default true); false leaves only the polling. */
  readonly fsWatch?: boolean;
  /** Called after every sync that wrote something (a pin, a drift mark, a cleared mark). */
  readonly onChange?: (report: SyncReport) => void;
  /**
   * Called when a sync fails (the folder vanished, the database is busy); watching goes on. The
   * same failure repeated by every poll is reported once.
   */
  readonly onError?: (error: unknown) => void;
}

export type IdentityWatcherState = 'idle' | 'watching' | 'closed';

export const WATCH_DEFAULTS = { debounceMs: 100, pollIntervalMs: 1000 } as const;

/**
 * Watches an identities folder while the system runs and syncs it with the pins, so a rewritten
 * file is marked drifted (and its identity gets no new work) within about
 * `debounceMs` after fs.watch reports it, or `pollIntervalMs` at worst. Sessions already running
 * are not touched: they hold the frozen Identity they booted with.
 */
export class IdentityWatcher {
  readonly #store: Store;
  readonly #dir: string;
  readonly #debounceMs: number;
  readonly #pollIntervalMs: number;
  readonly #fsWatch: boolean;
  readonly #onChange: (report: SyncReport) => void;
  readonly #onError: (error: unknown) => void;
  #state: IdentityWatcherState = 'idle';
  #fsWatcher: FSWatcher | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #poll: NodeJS.Timeout | null = null;
  #lastError: string | null = null;

  constructor(options: IdentityWatcherOptions) {
    this.#store = options.store;
    this.#dir = resolve(options.dir);
    this.#debounceMs = options.debounceMs ?? WATCH_DEFAULTS.debounceMs;
    this.#pollIntervalMs = options.pollIntervalMs ?? WATCH_DEFAULTS.pollIntervalMs;
    this.#fsWatch = options.fsWatch ?? true;
    this.#onChange = options.onChange ?? (() => {});
    this.#onError = options.onError ?? (() => {});
  }

  get state(): IdentityWatcherState {
    return this.#state;
  }

  /** Runs a first sync and starts watching. Calling it again while watching does nothing. */
  start(): void {
    if (this.#state === 'watching') return;
    if (this.#state === 'closed')
      throw new Error('IdentityWatcher.start: the watcher is closed; create a new one');
    this.#state = 'watching';
    this.sync();
    if (this.#fsWatch) this.#watch();
    this.#poll = setInterval(() => this.sync(), this.#pollIntervalMs);
  }

  /**
   * Syncs now. Returns the report, or null when the sync failed (reported through `onError`) or
   * the watcher is closed.
   */
  sync(): SyncReport | null {
    if (this.#state === 'closed') return null;
    let report: SyncReport;
    try {
      report = syncIdentities(this.#store, this.#dir);
    } catch (error) {
      // The same failure on every poll is reported once, until a sync succeeds again.
      const text = error instanceof Error ? error.message : String(error);
      if (text !== this.#lastError) this.#onError(error);
      this.#lastError = text;
      return null;
    }
    this.#lastError = null;
    if (report.changes.length > 0) this.#onChange(report);
    return report;
  }

  /** Stops watching. Idempotent; a sync in flight finishes, none starts afterwards. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    if (this.#debounce) clearTimeout(this.#debounce);
    if (this.#poll) clearInterval(this.#poll);
    this.#fsWatcher?.close();
    this.#debounce = null;
    this.#poll = null;
    this.#fsWatcher = null;
  }

  #watch(): void {
    try {
      this.#fsWatcher = watch(this.#dir, () => this.#schedule());
      // A failing fs.watch (the folder was removed, too many watchers) leaves the polling to it.
      this.#fsWatcher.on('error', (error) => {
        this.#onError(error);
        this.#fsWatcher?.close();
        this.#fsWatcher = null;
      });
    } catch (error) {
      this.#onError(error);
      this.#fsWatcher = null;
    }
  }

  #schedule(): void {
    if (this.#state !== 'watching') return;
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      this.sync();
    }, this.#debounceMs);
  }
}
