import type { Identity } from '../../kernel/identity/schema.js';
import type { NeedBus } from '../../roundtable/need-bus.js';
import type { Store } from '../../store/index.js';
import { Supervisor } from '../supervisor.js';
import type { TaskQueue } from '../task-queue.js';
import { Epoch } from './epoch.js';
import { SIM_TIMING } from './scenario.js';
import type { VirtualTime } from './virtual-time.js';

export interface SupervisorHostOptions {
  readonly time: VirtualTime;
  readonly queue: TaskQueue;
  readonly bus: NeedBus;
  /**
   * Opens the supervisor's own store handle, written as `actor`. With restarts, a new connection
   * to the run's database file each time (closed when the incarnation dies); else a handle on the
   * shared connection.
   */
  readonly openStore: (actor: string) => Store;
  readonly slots: () => readonly { identity: Identity; capacity: number }[];
  /** Called when an incarnation died: its actor may write nothing from now on. */
  readonly onDeath: (actor: string) => void;
}

/**
 * The supervisor process of a run, through its incarnations. `restart()` is the process dying
 * between two ticks, with no goodbye: its epoch ends (no timer of it fires again), its database
 * connection is closed, and after a restart delay a new Supervisor opens the database again and
 * starts (it takes the supervisor lock, reconciles SQLite with the queue, publishes a snapshot).
 * Each incarnation writes as `supervisor#<n>`, so the invariants can tell them apart.
 */
export class SupervisorHost {
  readonly #o: SupervisorHostOptions;
  #incarnation = 0;
  #current: { supervisor: Supervisor; epoch: Epoch; store: Store; actor: string } | undefined;
  #restarts = 0;

  constructor(options: SupervisorHostOptions) {
    this.#o = options;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** The supervisor of the current incarnation, if one is up. */
  get current(): Supervisor | undefined {
    return this.#current?.supervisor;
  }

  async start(): Promise<void> {
    this.#incarnation++;
    const actor = `supervisor#${this.#incarnation}`;
    const { time } = this.#o;
    const epoch = new Epoch(time.timers, actor);
    const store = this.#o.openStore(actor);
    const supervisor = new Supervisor({
      store,
      queue: this.#o.queue,
      bus: this.#o.bus,
      clock: time.clock,
      timers: epoch.timers,
      loopMs: SIM_TIMING.loopMs,
      maxAttempts: SIM_TIMING.maxAttempts,
      retryDelayMs: SIM_TIMING.retryDelayMs,
      deadAfterMs: 3 * SIM_TIMING.heartbeatMs,
      snapshotEvery: SIM_TIMING.snapshotEvery,
      slots: this.#o.slots,
    });
    this.#current = { supervisor, epoch, store, actor };
    await supervisor.start();
  }

  /** Rings the current incarnation (a session ended); nothing while the supervisor is down. */
  kick(): void {
    this.#current?.supervisor.kick();
  }

  /** The process dies now and comes back after the restart delay. */
  restart(): void {
    const dying = this.#current;
    if (!dying) return;
    this.#current = undefined;
    this.#restarts++;
    dying.epoch.end();
    dying.store.close();
    this.#o.onDeath(dying.actor);
    this.#o.time.timers.setTimeout(() => void this.start(), SIM_TIMING.supervisorRestartMs);
  }

  /** The end of the run: the current incarnation stops for good (no restart follows). */
  stop(): void {
    const current = this.#current;
    this.#current = undefined;
    current?.epoch.end();
    current?.store.close();
  }
}
