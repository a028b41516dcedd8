import { formatDurationMs } from '../identity/duration.js';

/**
 * Text helpers shared by the view renderers: escaping stored text for Markdown and Mermaid, and
 * formatting stored facts (times, durations, priorities). Pure: no clock, no locale.
 */

const INLINE_SPECIALS = /[\\`*_[\]<>|~&#]/g;

/**
 * Stored text as one line of inline Markdown: line breaks become spaces and every character
 * that could start emphasis, a link, HTML, a table cell or an entity is backslash-escaped, so a
 * title renders as itself.
 */
export function inline(text: string): string {
  const flat = text.includes('\n') || text.includes('\r') ? text.replace(/\r\n|\r|\n/g, ' ') : text;
  return flat.replace(INLINE_SPECIALS, '\\$&');
}

/** An id or other token known to be free of backticks, as a code span. */
export function code(text: string): string {
  return `\`${text}\``;
}

/** A Markdown link whose text is escaped stored text. */
export function link(text: string, target: string): string {
  return `[${inline(text)}](${target})`;
}

const MERMAID_ENTITIES: Readonly<Record<string, string>> = {
  '"': '#quot;',
  '#': '#35;',
  '&': '#amp;',
  '<': '#lt;',
  '>': '#gt;',
  '[': '#91;',
  ']': '#93;',
  '(': '#40;',
  ')': '#41;',
  '{': '#123;',
  '}': '#125;',
  '|': '#124;',
  '`': '#96;',
  ';': '#59;',
  '\\': '#92;',
};

/**
 * Stored text as the inside of a quoted Mermaid label (`id["…"]`): line breaks become spaces,
 * and quotes, brackets, pipes, backticks and HTML characters become Mermaid entity codes, so
 * no title can close the label, the node, or the code fence around the graph.
 */
export function mermaidLabel(text: string, maxChars = 80): string {
  const flat = text.replace(/\r\n|\r|\n/g, ' ');
  const chars = Array.from(flat);
  const cut = chars.length > maxChars ? `${chars.slice(0, maxChars - 1).join('')}…` : flat;
  return cut.replace(/["#&<>[\](){}|`;\\]/g, (c) => MERMAID_ENTITIES[c]!);
}

/** A stored time (ms since the epoch) as an ISO 8601 string in UTC. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `P0` … `P4`. */
export function priority(p: number): string {
  return `P${p}`;
}

/** A stored duration (ms) in the largest unit that divides it: `1h`, `90s`, `250ms`. */
export const duration = formatDurationMs;

/** Byte-order string comparison: the same on every machine and locale. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
