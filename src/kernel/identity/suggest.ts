/** `perTask`, `per-task` and `PER_TASK` all compare as `per_task`. */
function normalize(word: string): string {
  return word
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[-\s]/g, '_');
}

/** Levenshtein distance, for short words only (field and tool names). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The candidate `word` was most likely meant to be, or null when none is close: a different
 * spelling of the same words, or at most one edit per three characters (and at least one).
 * Ties go to the earlier candidate, so the answer is deterministic.
 */
export function didYouMean(word: string, candidates: readonly string[]): string | null {
  const w = normalize(word);
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = editDistance(w, normalize(candidate));
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(w.length / 3));
  return best !== null && bestDistance <= limit ? best : null;
}
