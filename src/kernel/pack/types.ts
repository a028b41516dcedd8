/** The shapes shared by the context pack's packer, header and compiler. */

export const PACK_SECTIONS = ['need', 'dependencies', 'memory', 'artifacts', 'neighbours', 'events'] as const;
export type PackSection = (typeof PACK_SECTIONS)[number];

export const SECTION_HEADINGS: Readonly<Record<PackSection | 'pointers', string>> = {
  need: '## Need',
  dependencies: '## Dependency chain (depends_on, transitively)',
  memory: '## Notes and outcomes of earlier tasks',
  artifacts: '## Referenced artifacts',
  neighbours: '## Neighbours (needs sharing tags)',
  events: '## Recent events (newest first)',
  pointers: '## Pointers (left out; expand with expand_pointer)',
};

export type PackItemKind =
  | 'need'
  | 'dependency'
  | 'task'
  | 'note'
  | 'transcript'
  | 'artifact'
  | 'neighbour'
  | 'event';

export interface PackedItem {
  readonly kind: PackItemKind;
  readonly ref: string;
  readonly title: string;
  /** Model tokens of the block shown. */
  readonly tokens: number;
  /** True when a shorter block than the full one is shown (its full text is behind a pointer). */
  readonly abridged: boolean;
}

export interface LeftOutItem {
  readonly kind: PackItemKind;
  readonly ref: string;
  readonly title: string;
  /** Model tokens of the item in full (what expand_pointer returns, or its line). */
  readonly tokens: number;
  /** `pointer`: a pointer line stands for it; `dropped`: not even a pointer fitted, or it has none. */
  readonly as: 'pointer' | 'dropped';
}

/** What the candidate lists were cut at before packing (counts of rows never ranked). */
export interface NotConsidered {
  readonly dependencies: boolean;
  readonly memory: number;
  readonly artifacts: number;
  readonly neighbours: number;
  /** Tags of the need carried by more needs than the neighbour window, and how many carry each. */
  readonly neighbourTags: readonly {
    readonly tag: string;
    readonly needs: number;
    readonly exact: boolean;
  }[];
  readonly neighbourWindow: number;
  readonly events: number;
}
