/** Timestamps in the forms the Engine API uses. */

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** RFC 3339 with nanoseconds, as Go prints time.Time in JSON. */
export function rfc3339Nano(date: Date | number = Date.now(), extraNanos = 0): string {
  const d = typeof date === 'number' ? new Date(date) : date;
  const iso = d.toISOString(); // 2024-01-02T03:04:05.678Z
  const ms = iso.slice(20, 23);
  const nanos = `${ms}${String(extraNanos).padStart(6, '0')}`.replace(/0+$/, '');
  return `${iso.slice(0, 19)}${nanos ? '.' + nanos : ''}Z`;
}

/** A precise "now" for ordering log lines and events. */
export function nowNanos(): bigint {
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
}

export function nanosToRfc3339(nanos: bigint): string {
  const ms = Number(nanos / 1_000_000n);
  const rest = Number(nanos % 1_000_000n);
  return rfc3339Nano(ms, rest);
}

/**
 * Parses `since`/`until` values: unix seconds (with optional fraction),
 * RFC 3339 timestamps, or Go durations relative to now ("10m").
 * Returns milliseconds since the epoch.
 */
export function parseTimeArg(value: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Math.floor(Number(value) * 1000);
  const rel = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(value);
  if (rel) {
    const n = Number(rel[1]);
    const mult = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }[rel[2]] ?? 1000;
    return now - n * mult;
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`invalid time value: ${value}`);
  return t;
}

export function parseRfc3339(value: string): number {
  return Date.parse(value);
}
