import type { StoreContext } from '../context.js';
import type { Db } from '../database.js';
import { NotFoundError, UserError } from '../errors.js';
import { sha256 } from '../hash.js';
import { type NewArtifact, NewArtifactSchema, parseInput } from '../schemas.js';
import type { Artifact, ArtifactKind, Fence } from '../types.js';
import type { EdgeRepository } from './edges.js';

export interface ArtifactRow {
  id: string;
  kind: ArtifactKind;
  uri: string | null;
  title: string;
  content: string | null;
  content_hash: string;
  summary: string | null;
  token_count: number;
  created_at: number;
}

export interface AddArtifactOptions {
  /** Links the need to the artifact with a `references` edge. */
  readonly needId?: string;
  readonly fence?: Fence;
  /** Token count of the content, measured by the caller's tokenizer. */
  readonly tokenCount?: number;
}

/** Artifacts: files, URLs, notes, transcripts and results. Registration is idempotent by content. */
export class ArtifactRepository {
  readonly #ctx: StoreContext;
  readonly #edges: EdgeRepository;
  readonly #get;

  constructor(ctx: StoreContext, edges: EdgeRepository) {
    this.#ctx = ctx;
    this.#edges = edges;
    this.#get = ctx.once(prepareArtifactGet);
  }

  /**
   * Registers an artifact. The same kind, URI and content registered twice gives the same
   * artifact back (and only links it again), so retries by an agent never duplicate.
   */
  add(input: NewArtifact, options: AddArtifactOptions = {}): { artifact: Artifact; created: boolean } {
    const a = parseInput(NewArtifactSchema, input, 'artifact');
    if ((a.kind === 'file' || a.kind === 'url') && !a.uri) {
      throw new UserError(`a ${a.kind} artifact needs a ${a.kind === 'file' ? 'path' : 'URL'}`);
    }
    if (a.content === null && a.uri === null) {
      throw new UserError(`a ${a.kind} artifact needs content or a URI`);
    }
    const contentHash = sha256(a.content ?? `uri:${a.uri}`);
    return this.#ctx.write(() => {
      if (options.needId && !this.#ctx.prepare('SELECT 1 FROM needs WHERE id = ?').get(options.needId)) {
        throw new NotFoundError('need', options.needId);
      }
      const existing = this.#ctx
        .prepare<[string, string, string | null], ArtifactRow>(
          'SELECT * FROM artifacts WHERE content_hash = ? AND kind = ? AND uri IS ? ORDER BY created_at LIMIT 1',
        )
        .get(contentHash, a.kind, a.uri);
      let artifact: Artifact;
      if (existing) {
        artifact = toArtifact(existing);
      } else {
        const id = this.#ctx.ids.next('art');
        this.#ctx
          .prepare(
            `INSERT INTO artifacts (id, kind, uri, title, content, content_hash, summary, token_count, created_at)
             VALUES (@id, @kind, @uri, @title, @content, @contentHash, @summary, @tokenCount, @now)`,
          )
          .run({ ...a, id, contentHash, tokenCount: options.tokenCount ?? 0, now: this.#ctx.now() });
        this.#ctx.emit({
          kind: 'artifact.added',
          entity: id,
          needId: options.needId ?? null,
          payload: { kind: a.kind, uri: a.uri, title: a.title, contentHash, summary: a.summary },
        });
        artifact = this.require(id);
      }
      if (options.needId) {
        this.#edges.link(
          options.needId,
          'references',
          artifact.id,
          options.fence ? { fence: options.fence } : {},
        );
      }
      return { artifact, created: !existing };
    });
  }

  get(id: string): Artifact | undefined {
    const row = this.#get.get(id);
    return row && toArtifact(row);
  }

  require(id: string): Artifact {
    const artifact = this.get(id);
    if (!artifact) throw new NotFoundError('artifact', id);
    return artifact;
  }

  /** The oldest artifact registered under `uri`, if any. */
  findByUri(uri: string): Artifact | undefined {
    const row = this.#ctx
      .prepare<[string], ArtifactRow>('SELECT * FROM artifacts WHERE uri = ? ORDER BY created_at, id LIMIT 1')
      .get(uri);
    return row && toArtifact(row);
  }

  /** Artifacts a need references, oldest first. */
  forNeed(needId: string): Artifact[] {
    return this.#ctx
      .prepare<[string], ArtifactRow>(
        `SELECT a.* FROM edges e JOIN artifacts a ON a.id = e.to_id
         WHERE e.from_id = ? AND e.rel = 'references' ORDER BY a.created_at, a.id`,
      )
      .all(needId)
      .map(toArtifact);
  }

  list(limit = 1000): Artifact[] {
    return this.#ctx
      .prepare<[number], ArtifactRow>('SELECT * FROM artifacts ORDER BY created_at, id LIMIT ?')
      .all(limit)
      .map(toArtifact);
  }
}

export function toArtifact(row: ArtifactRow): Artifact {
  return {
    id: row.id,
    kind: row.kind,
    uri: row.uri,
    title: row.title,
    content: row.content,
    contentHash: row.content_hash,
    summary: row.summary,
    tokenCount: row.token_count,
    createdAt: row.created_at,
  };
}

function prepareArtifactGet(db: Db) {
  return db.prepare<[string], ArtifactRow>('SELECT * FROM artifacts WHERE id = ?');
}
