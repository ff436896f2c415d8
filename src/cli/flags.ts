/**
 * Flag parsing with Docker's (pflag) semantics: --name=value, --name value,
 * -n value, -nvalue, bool clusters (-it), --bool=false, repeated flags, "--",
 * and, for run/create/exec, no flags after the first positional argument.
 *
 * Written here rather than taken from npm: commander and yargs differ from
 * pflag on exactly these points (bool=value, clusters with a trailing value,
 * interspersed=false), and Docker users type them.
 */
export type FlagType = 'bool' | 'string' | 'strings' | 'int' | 'float';

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  description: string;
  default?: string | number | boolean;
  /** Shown in help as the value's name, e.g. "list", "string". */
  valueName?: string;
  hidden?: boolean;
}

export type FlagValue = boolean | string | string[] | number;

export class FlagError extends Error {}

export interface ParsedFlags {
  values: Map<string, FlagValue>;
  /** Flags the user actually set. */
  changed: Set<string>;
  args: string[];
}

export class Flags {
  constructor(private readonly parsed: ParsedFlags) {}

  get args(): string[] {
    return this.parsed.args;
  }

  changed(name: string): boolean {
    return this.parsed.changed.has(name);
  }

  bool(name: string): boolean {
    return this.parsed.values.get(name) === true;
  }

  string(name: string): string {
    const v = this.parsed.values.get(name);
    return typeof v === 'string' ? v : '';
  }

  optString(name: string): string | undefined {
    return this.changed(name) ? this.string(name) : undefined;
  }

  strings(name: string): string[] {
    const v = this.parsed.values.get(name);
    return Array.isArray(v) ? v : [];
  }

  int(name: string): number {
    const v = this.parsed.values.get(name);
    return typeof v === 'number' ? v : 0;
  }

  number(name: string): number {
    return this.int(name);
  }
}

function parseBool(v: string, name: string): boolean {
  if (['true', '1', 't', 'T', 'TRUE', 'True'].includes(v)) return true;
  if (['false', '0', 'f', 'F', 'FALSE', 'False'].includes(v)) return false;
  throw new FlagError(`invalid argument "${v}" for "--${name}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`);
}

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], interspersed = true): Flags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const values = new Map<string, FlagValue>();
  const changed = new Set<string>();
  for (const s of specs) {
    if (s.type === 'strings') values.set(s.name, []);
    else if (s.default !== undefined) values.set(s.name, s.default);
    else if (s.type === 'bool') values.set(s.name, false);
    else if (s.type === 'int' || s.type === 'float') values.set(s.name, 0);
    else values.set(s.name, '');
  }
  const set = (spec: FlagSpec, raw: string | undefined): void => {
    changed.add(spec.name);
    switch (spec.type) {
      case 'bool':
        values.set(spec.name, raw === undefined ? true : parseBool(raw, spec.name));
        break;
      case 'string':
        values.set(spec.name, raw ?? '');
        break;
      case 'strings':
        (values.get(spec.name) as string[]).push(raw ?? '');
        break;
      case 'int': {
        if (!/^-?\d+$/.test(raw ?? '')) {
          throw new FlagError(`invalid argument "${raw}" for "--${spec.name}" flag: strconv.ParseInt: parsing "${raw}": invalid syntax`);
        }
        values.set(spec.name, parseInt(raw!, 10));
        break;
      }
      case 'float': {
        const n = Number(raw);
        if (raw === undefined || raw === '' || Number.isNaN(n)) throw new FlagError(`invalid argument "${raw}" for "--${spec.name}" flag`);
        values.set(spec.name, n);
        break;
      }
    }
  };

  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const spec = byName.get(name);
      if (!spec) throw new FlagError(`unknown flag: --${name}`);
      if (eq !== -1) set(spec, a.slice(eq + 1));
      else if (spec.type === 'bool') set(spec, undefined);
      else {
        if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: --${name}`);
        set(spec, argv[++i]);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // a cluster: -it, -p8080:80, -e=FOO
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        const spec = byShort.get(c);
        if (!spec) throw new FlagError(`unknown shorthand flag: '${c}' in ${a}`);
        if (spec.type === 'bool') {
          if (a[j + 1] === '=') {
            set(spec, a.slice(j + 2));
            break;
          }
          set(spec, undefined);
          continue;
        }
        let rest = a.slice(j + 1);
        if (rest.startsWith('=')) rest = rest.slice(1);
        if (rest.length > 0) set(spec, rest);
        else {
          if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
          set(spec, argv[++i]);
        }
        break;
      }
      continue;
    }
    if (!interspersed) {
      args.push(...argv.slice(i));
      break;
    }
    args.push(a);
  }
  return new Flags({ values, changed, args });
}

export function flagHelp(specs: readonly FlagSpec[]): string {
  const rows = specs
    .filter((s) => !s.hidden)
    .map((s) => {
      const type = s.type === 'bool' ? '' : ` ${s.valueName ?? (s.type === 'strings' ? 'list' : s.type === 'float' ? 'decimal' : s.type)}`;
      const left = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${type}`;
      const def =
        s.default !== undefined && s.default !== '' && s.default !== false && s.type !== 'bool'
          ? ` (default ${typeof s.default === 'string' ? `"${s.default}"` : s.default})`
          : '';
      return [left, s.description + def];
    });
  const width = Math.max(0, ...rows.map((r) => r[0].length));
  return rows.map(([l, r]) => `  ${l.padEnd(width)}   ${r}`).join('\n');
}
