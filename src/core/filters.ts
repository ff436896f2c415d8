/**
 * The `filters` query parameter: JSON in two shapes, {"k":{"v":true}} (docker
 * CLI) and {"k":["v"]} (docker-py, dockerode). Values of one key are ORed,
 * except `label`, whose values are all required.
 */
import { invalidArgument } from './errdefs/index.js';

export class Filters {
  private readonly values = new Map<string, string[]>();

  static parse(raw: string | undefined | null, allowed: readonly string[]): Filters {
    const f = new Filters();
    if (!raw) return f;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw invalidArgument(`invalid filter: ${raw}`);
    }
    if (parsed === null) return f;
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidArgument('invalid filter: expected a JSON object');
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (!allowed.includes(key)) throw invalidArgument(`invalid filter '${key}'`);
      let list: string[];
      if (Array.isArray(value)) {
        list = value.map(String);
      } else if (value && typeof value === 'object') {
        list = Object.entries(value as Record<string, unknown>)
          .filter(([, on]) => on === true)
          .map(([k]) => k);
      } else if (typeof value === 'string') {
        list = [value];
      } else {
        throw invalidArgument(`invalid filter '${key}'`);
      }
      if (list.length > 0) f.values.set(key, list);
    }
    return f;
  }

  static of(entries: Record<string, string[]>): Filters {
    const f = new Filters();
    for (const [k, v] of Object.entries(entries)) if (v.length) f.values.set(k, v);
    return f;
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  get(key: string): string[] {
    return this.values.get(key) ?? [];
  }

  keys(): string[] {
    return [...this.values.keys()];
  }

  /** True when key is absent or any of its values satisfies the predicate. */
  matchAny(key: string, predicate: (value: string) => boolean): boolean {
    const list = this.values.get(key);
    if (!list) return true;
    return list.some(predicate);
  }

  /** A boolean filter such as dangling=true; undefined when absent. */
  bool(key: string): boolean | undefined {
    const list = this.values.get(key);
    if (!list) return undefined;
    const v = list[list.length - 1].toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw invalidArgument(`invalid filter '${key}=${list[list.length - 1]}'`);
  }

  /** label filters: every "k" or "k=v" (or "k!=v") must hold. */
  matchLabels(labels: Record<string, string> | null | undefined, key = 'label'): boolean {
    const list = this.values.get(key);
    if (!list) return true;
    const l = labels ?? {};
    return list.every((expr) => {
      const neq = expr.indexOf('!=');
      if (neq > 0) return l[expr.slice(0, neq)] !== expr.slice(neq + 2);
      const eq = expr.indexOf('=');
      if (eq === -1) return expr in l;
      return l[expr.slice(0, eq)] === expr.slice(eq + 1);
    });
  }

  toJSON(): Record<string, string[]> {
    return Object.fromEntries(this.values);
  }
}

/** Go's path.Match-style glob ('*' and '?' stop at '/'). */
export function globMatch(pattern: string, value: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i);
      if (end === -1) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^\^/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$').test(value);
}
