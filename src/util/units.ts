/**
 * Human units the way Docker's go-units prints and parses them: sizes
 * ("10MB", "1.5GB"; RAMInBytes "512m"), durations ("Up 2 minutes").
 */
const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** HumanSize: decimal units with 3 significant digits, e.g. "4.86MB". */
export function humanSize(bytes: number): string {
  let value = bytes;
  let i = 0;
  while (value >= 1000 && i < DECIMAL.length - 1) {
    value /= 1000;
    i++;
  }
  return `${formatSignificant(value)}${DECIMAL[i]}`;
}

function formatSignificant(value: number): string {
  // Go's %.4g: up to 4 significant digits without trailing zeros.
  const s = value.toPrecision(4);
  return String(Number(s));
}

/**
 * RAMInBytes: "512", "512k", "64m", "1g", "1.5GB" with binary multipliers.
 * Throws on anything else.
 */
export function parseRamBytes(input: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$/i.exec(input);
  if (!m) throw new Error(`invalid size: '${input}'`);
  const n = Number(m[1]);
  const unit = m[2].toLowerCase();
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[unit] ?? 1;
  return Math.floor(n * mult);
}

/** Docker's HumanDuration, used in `ps` status text. */
export function humanDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.round(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3600000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  const days = hours / 24;
  if (days < 7 * 2) return `${Math.floor(days)} days`;
  if (days < 30 * 2) return `${Math.floor(days / 7)} weeks`;
  if (days < 365 * 2) return `${Math.floor(days / 30)} months`;
  return `${Math.floor(days / 365)} years`;
}

/** Parses Go-style durations: "10s", "1m30s", "500ms", "2h". */
export function parseGoDuration(input: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(input))) {
    if (m.index !== consumed) break;
    consumed += m[0].length;
    const n = Number(m[1]);
    const unit = m[2];
    total += n * ({ ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }[unit] ?? 0);
  }
  if (consumed !== input.length || input.length === 0) {
    if (/^\d+$/.test(input)) return Number(input) * 1000;
    throw new Error(`invalid duration: ${input}`);
  }
  return total;
}
