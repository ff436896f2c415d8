/**
 * Structured logs: one JSON object per line on stderr, so a crash mid-write
 * never corrupts an earlier line. Callers pass fields, never secrets.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

/**
 * Writes to stderr until stderr breaks (the reader went away): then logging
 * stops instead of turning every failed write into another log line.
 */
let stderrBroken = false;
function stderrSink(line: string): void {
  if (stderrBroken) return;
  try {
    process.stderr.write(line);
  } catch {
    stderrBroken = true;
  }
}
process.stderr.on('error', () => {
  stderrBroken = true;
});

export class Logger {
  constructor(
    private readonly level: LogLevel = 'info',
    private readonly base: LogFields = {},
    private readonly sink: (line: string) => void = stderrSink,
  ) {}

  static parseLevel(value: string): LogLevel {
    const v = value.toLowerCase();
    if (v === 'debug' || v === 'info' || v === 'warn' || v === 'error') return v;
    if (v === 'warning') return 'warn';
    if (v === 'fatal') return 'error';
    throw new Error(`invalid log level: ${value}`);
  }

  child(fields: LogFields): Logger {
    return new Logger(this.level, { ...this.base, ...fields }, this.sink);
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.level];
  }

  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }

  private write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const record: LogFields = { time: new Date().toISOString(), level, msg, ...this.base, ...fields };
    for (const [k, v] of Object.entries(record)) {
      if (v instanceof Error) record[k] = v.message;
    }
    this.sink(JSON.stringify(record) + '\n');
  }
}

export const silentLogger = new Logger('error', {}, () => {});
