/**
 * Human units the way Docker's go-units prints and parses them: sizes
 * ("10MB", "1.5GB"; RAMInBytes "512m"), durations ("Up 2 minutes").
 */
const DECIMAL = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** HumanSizeWithPrecision: decimal units, `precision` significant digits (the CLI shows 3: "4.86MB"). */
export function humanSize(bytes: number, precision = 3): string {
  let value = bytes;
  let i = 0;
  while (value >= 1000 && i < DECIMAL.length - 1) {
    value /= 1000;
    i++;
  }
  return `${formatSignificant(value, precision)}${DECIMAL[i]}`;
}

function formatSignificant(value: number, precision: number): string {
  // Go's %.Ng: N significant digits without trailing zeros.
  return String(Number(value.toPrecision(precision)));
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

/** Docker's HumanDuration (go-units), used in `ps` status text: truncating, hours rounded. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3600000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
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
