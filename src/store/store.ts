import { existsSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { type Clock, systemClock } from './clock.js';
import { StoreContext } from './context.js';
import { type Db, type OpenDatabaseOptions, openDatabase } from './database.js';
import { DatabaseError, UserError } from './errors.js';
import { EventLog } from './event-log.js';
import { createIdGenerator, createRandomPrng, type IdGenerator, type Prng } from './random.js';
import { AgentRepository } from './repos/agents.js';
import { ArtifactRepository } from './repos/artifacts.js';
import { BudgetRepository } from './repos/budgets.js';
import { ClaimRepository } from './repos/claims.js';
import { EdgeRepository } from './repos/edges.js';
import { IdentityRepository } from './repos/identities.js';
import { LeaseRepository } from './repos/leases.js';
import { NeedRepository } from './repos/needs.js';
import { PackReadRepository } from './repos/pack-reads.js';
import { SchedulingRepository } from './repos/scheduling.js';
import { SecretRepository } from './repos/secrets.js';
import { TaskRepository } from './repos/tasks.js';
import { ViewRepository } from './repos/views.js';
import { WorkspaceRepository } from './repos/workspaces.js';

export interface StoreOptions extends OpenDatabaseOptions {
  readonly clock?: Clock;
  readonly prng?: Prng;
  readonly ids?: IdGenerator;
  /** Who the writes of this handle are attributed to in the event log (`cli`, `supervisor`, …). */
  readonly actor?: string;
}

/**
 * The typed repository API over one mlos database: the only way to the data. Every mutation
 * runs in a BEGIN IMMEDIATE transaction and appends its event to the hash chain in the same
 * transaction.
 */
export class Store {
  readonly path: string;
  readonly clock: Clock;
  readonly events: EventLog;
  readonly leases: LeaseRepository;
  readonly needs: NeedRepository;
  readonly edges: EdgeRepository;
  readonly artifacts: ArtifactRepository;
  readonly tasks: TaskRepository;
  readonly workspaces: WorkspaceRepository;
  /** Read-only, set-based queries for the views compiler. */
  readonly views: ViewRepository;
  readonly identities: IdentityRepository;
  readonly claims: ClaimRepository;
  readonly budgets: BudgetRepository;
  readonly secrets: SecretRepository;
  readonly scheduling: SchedulingRepository;
  readonly agents: AgentRepository;
  /** Read-only, indexed queries for context packs, pointer expansion and awareness. */
  readonly packReads: PackReadRepository;
  readonly #db: Db;
  readonly #ids: IdGenerator;
  readonly #ctx: StoreContext;
  readonly #owner: boolean;
  #closed = false;

  private constructor(path: string, db: Db, clock: Clock, ids: IdGenerator, actor: string, owner: boolean) {
    this.path = path;
    this.#db = db;
    this.clock = clock;
    this.#ids = ids;
    this.#owner = owner;
    this.events = new EventLog(db);
    this.#ctx = new StoreContext(db, clock, ids, actor, this.events);
    this.leases = new LeaseRepository(this.#ctx);
    this.edges = new EdgeRepository(this.#ctx, this.leases);
    this.tasks = new TaskRepository(this.#ctx, this.leases);
    this.needs = new NeedRepository(
      this.#ctx,
      this.leases,
      () => this.edges,
      () => this.tasks,
    );
    this.artifacts = new ArtifactRepository(this.#ctx, this.edges);
    this.workspaces = new WorkspaceRepository(this.#ctx);
    this.views = new ViewRepository(this.#ctx);
    this.identities = new IdentityRepository(this.#ctx);
    this.claims = new ClaimRepository(this.#ctx, this.needs, this.tasks, this.leases, this.edges);
    this.budgets = new BudgetRepository(this.#ctx);
    this.secrets = new SecretRepository(this.#ctx);
    this.scheduling = new SchedulingRepository(this.#ctx);
    this.agents = new AgentRepository(this.#ctx);
    this.packReads = new PackReadRepository(this.#ctx, this.needs, this.tasks, this.events);
  }

  /** Opens (creating and migrating if needed) the database at `path`; `:memory:` for tests. */
  static open(path: string, options: StoreOptions = {}): Store {
    const db = openDatabase(path, options);
    const clock = options.clock ?? systemClock;
    const ids = options.ids ?? createIdGenerator(clock, options.prng ?? createRandomPrng());
    return new Store(path, db, clock, ids, options.actor ?? 'cli', true);
  }

  get actor(): string {
    return this.#ctx.actor;
  }

  /** The same database, with writes attributed to another actor. Closing it does not close the database. */
  as(actor: string): Store {
    return new Store(this.path, this.#db, this.clock, this.#ids, actor, false);
  }

  /** Runs several repository calls as one BEGIN IMMEDIATE transaction: all or nothing. */
  transaction<T>(fn: () => T): T {
    return this.#ctx.write(fn);
  }

  /** The folder relative paths in the database (workspace outputs) are resolved against. */
  get baseDir(): string {
    return this.path === ':memory:' ? process.cwd() : dirname(resolve(this.path));
  }

  resolvePath(p: string): string {
    return isAbsolute(p) ? p : resolve(this.baseDir, p);
  }

  /**
   * Writes a consistent copy of the database to `target` with VACUUM INTO. Safe while other
   * processes write: the copy is one read transaction's snapshot.
   */
  backup(target: string): void {
    if (existsSync(target)) throw new UserError(`${target} already exists: choose a new file for the backup`);
    try {
      mkdirSync(dirname(resolve(target)), { recursive: true });
      this.#db.prepare('VACUUM INTO ?').run(target);
    } catch (cause) {
      throw new DatabaseError('backup_failed', `cannot write backup ${target}: ${(cause as Error).message}`, {
        cause,
      });
    }
  }

  /**
   * Turns this connection's automatic WAL checkpoint down to a safety net of `pages` pages, for a
   * process that runs a `Checkpointer` beside it: its commits no longer pay for checkpoints.
   */
  deferCheckpoints(pages = 16_384): void {
    if (this.path !== ':memory:') this.#db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.floor(pages))}`);
  }

  close(): void {
    if (this.#closed || !this.#owner) return;
    this.#closed = true;
    this.#db.close();
  }
}
