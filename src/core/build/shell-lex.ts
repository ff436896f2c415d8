/**
 * Variable substitution and word splitting for Dockerfile instructions, as
 * Docker's builder does it (not a shell: no command substitution, globbing
 * or arithmetic). Quotes are removed, `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR:+alternative}` (and their colon-less and `?` forms) are expanded,
 * and the escape character (`\` or the `# escape=` one) escapes the next
 * character. Words split on whitespace outside quotes, after expansion.
 */
import { invalidArgument } from '../errdefs/index.js';

export type BuildEnv = ReadonlyMap<string, string>;

export function envMap(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env) {
    const i = e.indexOf('=');
    if (i < 0) m.set(e, '');
    else m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class Words {
  words: string[] = [];
  word = '';
  inWord = false;

  /** A character whose whitespace splits words. */
  add(ch: string): void {
    if (/\s/.test(ch)) {
      if (this.inWord && this.word.length) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }

  addRaw(text: string): void {
    this.word += text;
    this.inWord = true;
  }

  done(): string[] {
    if (this.word.length) this.words.push(this.word);
    this.word = '';
    this.inWord = false;
    return this.words;
  }
}

class Lexer {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly env: BuildEnv,
    private readonly escape: string,
  ) {}

  private peek(): string | undefined {
    return this.text[this.pos];
  }

  private next(): string | undefined {
    return this.text[this.pos++];
  }

  /** Processes until stop (or the end); returns the text and its words. */
  run(stop?: string): { result: string; words: string[] } {
    let result = '';
    const words = new Words();
    while (this.peek() !== undefined) {
      const ch = this.peek()!;
      if (stop !== undefined && ch === stop) {
        this.next();
        return { result, words: words.done() };
      }
      if (ch === '$') {
        const value = this.dollar();
        result += value;
        for (const c of value) words.add(c);
      } else if (ch === "'") {
        const value = this.singleQuoted();
        result += value;
        words.addRaw(value);
      } else if (ch === '"') {
        const value = this.doubleQuoted();
        result += value;
        words.addRaw(value);
      } else {
        this.next();
        if (ch === this.escape) {
          const escaped = this.next();
          if (escaped === undefined) break; // an escape at the very end is dropped
          words.addRaw(escaped);
          result += escaped;
        } else {
          words.add(ch);
          result += ch;
        }
      }
    }
    if (stop !== undefined) throw invalidArgument(`unexpected end of statement while looking for matching ${stop}`);
    return { result, words: words.done() };
  }

  private singleQuoted(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw invalidArgument('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return out;
      out += ch;
    }
  }

  private doubleQuoted(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw invalidArgument('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        const following = this.peek();
        if (following === undefined) continue;
        if (following === '"' || following === '$' || following === this.escape) {
          out += this.next();
          continue;
        }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = '';
    const first = this.peek();
    if (first !== undefined && /[0-9]/.test(first)) {
      while (this.peek() !== undefined && /[0-9]/.test(this.peek()!)) name += this.next();
      return name;
    }
    if (first !== undefined && SPECIAL_PARAMS.has(first)) return this.next()!;
    while (this.peek() !== undefined && /[\p{L}\p{N}_]/u.test(this.peek()!)) name += this.next();
    return name;
  }

  private dollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.name();
      if (!name) return '$';
      return this.env.get(name) ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw invalidArgument("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw invalidArgument('syntax error: bad substitution');
    const name = this.name();
    const op = this.next();
    if (op === '}') return this.env.get(name) ?? '';
    if (op === undefined) throw invalidArgument("syntax error: missing '}'");
    let modifier = op;
    let nullIsUnset = false;
    if (op === ':') {
      nullIsUnset = true;
      modifier = this.next() ?? '';
    }
    if (modifier !== '-' && modifier !== '+' && modifier !== '?') {
      throw invalidArgument(`unsupported modifier (${nullIsUnset ? ':' : ''}${modifier}) in substitution`);
    }
    let word: string;
    try {
      word = this.run('}').result;
    } catch (err) {
      if (this.peek() === undefined) throw invalidArgument("syntax error: missing '}'");
      throw err;
    }
    const value = this.env.get(name);
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (modifier) {
      case '-':
        return unset ? word : value!;
      case '+':
        return unset ? '' : word;
      default:
        if (unset) throw invalidArgument(`${name}: ${word || (value === undefined ? 'is not allowed to be unset' : 'is not allowed to be empty')}`);
        return value!;
    }
  }
}

/** One word: quotes removed, variables expanded, whitespace kept. */
export function processWord(text: string, env: BuildEnv, escape = '\\'): string {
  return new Lexer(text, env, escape).run().result;
}

/** Several words: expanded, then split on whitespace outside quotes. */
export function processWords(text: string, env: BuildEnv, escape = '\\'): string[] {
  return new Lexer(text, env, escape).run().words;
}
