/**
 * Go's filepath.Match, which COPY and ADD use for their sources: `*` and
 * `?` never match `/`, `[...]` classes with ranges and `^`/`!` negation,
 * `\` escapes. A malformed pattern is an error, as in Go.
 */
import { invalidArgument } from '../errdefs/index.js';

const cache = new Map<string, RegExp>();

function toRegExp(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (i + 1 >= pattern.length) throw invalidArgument(`syntax error in pattern: ${pattern}`);
      re += escapeRe(pattern[++i]);
    } else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (pattern[j] === '^' || pattern[j] === '!') {
        cls += '^';
        j++;
      }
      let closed = false;
      let first = true;
      for (; j < pattern.length; j++) {
        const d = pattern[j];
        if (d === ']' && !first) {
          closed = true;
          break;
        }
        first = false;
        if (d === '\\') {
          if (j + 1 >= pattern.length) break;
          cls += escapeRe(pattern[++j]);
        } else if (d === '-' && cls.length && pattern[j + 1] !== ']') {
          cls += '-';
        } else {
          cls += escapeRe(d);
        }
      }
      if (!closed || cls === '' || cls === '^') throw invalidArgument(`syntax error in pattern: ${pattern}`);
      // a class never matches the separator
      re += cls.startsWith('^') ? `[${cls}/]` : `(?!/)[${cls}]`;
      i = j;
    } else {
      re += escapeRe(c);
    }
  }
  return new RegExp(re + '$', 's');
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(c) ? `\\${c}` : c;
}

export function globMatch(pattern: string, name: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    re = toRegExp(pattern);
    cache.set(pattern, re);
  }
  return re.test(name);
}

export function hasGlob(pattern: string): boolean {
  return /[*?[\\]/.test(pattern);
}
