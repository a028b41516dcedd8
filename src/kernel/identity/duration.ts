const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Parses `30s`, `1.5m`, `250ms`, `2d` or whole milliseconds; null when it is not a positive duration. */
export function parseDurationValue(value: number | string): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value > 0 ? value : null;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) return null;
  const ms = Math.round(Number(m[1]) * UNITS[m[2] as keyof typeof UNITS]);
  return ms > 0 ? ms : null;
}

/** Milliseconds as the largest whole unit: 90000 → `90s`, 600000 → `10m`, 1500 → `1500ms`. */
export function formatDurationMs(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit];
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
