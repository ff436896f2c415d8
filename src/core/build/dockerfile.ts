/**
 * Dockerfile parsing as Docker's builder does it: parser directives
 * (`# escape=`, `# syntax=`) at the top, comments, line continuations with
 * the escape character, `--flag=value` options, JSON ("exec") and shell
 * forms. Variables are not expanded here: that needs the build's state and
 * happens when an instruction runs (shell-lex.ts).
 */
import { invalidArgument } from '../errdefs/index.js';
import { parseJsonArray } from '../images/changes.js';

export const INSTRUCTIONS = [
  'FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'ENV', 'ARG', 'LABEL', 'EXPOSE', 'WORKDIR', 'USER', 'VOLUME', 'COPY', 'ADD',
  'STOPSIGNAL', 'HEALTHCHECK', 'ONBUILD', 'SHELL', 'MAINTAINER',
] as const;
export type Keyword = (typeof INSTRUCTIONS)[number];

/** Flags each instruction accepts (others are refused with the line number). */
const FLAGS: Partial<Record<Keyword, readonly string[]>> = {
  FROM: ['platform'],
  COPY: ['from', 'chown', 'chmod'],
  ADD: ['chown', 'chmod'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Flags that exist only in BuildKit: a clear message rather than "unknown flag". */
const BUILDKIT_FLAGS: Partial<Record<Keyword, readonly string[]>> = {
  RUN: ['mount', 'network', 'security'],
  COPY: ['link', 'parents', 'exclude'],
  ADD: ['link', 'checksum', 'keep-git-dir', 'exclude'],
};

export interface Instruction {
  keyword: Keyword;
  /** The text after the keyword and flags, continuation lines joined. */
  args: string;
  /** The arguments in JSON form, when they were written as a JSON array. */
  json?: string[];
  flags: Map<string, string>;
  /** 1-based line where the instruction starts. */
  line: number;
  /** The instruction as written (continuations joined), for messages and history. */
  original: string;
}

export interface Dockerfile {
  escape: string;
  /** ARG instructions before the first FROM. */
  globalArgs: Instruction[];
  stages: Stage[];
}

export interface Stage {
  /** Lower-cased `AS name`, if any. */
  name?: string;
  index: number;
  from: Instruction;
  instructions: Instruction[];
}

function parseError(line: number, message: string): Error {
  return invalidArgument(`Dockerfile parse error line ${line}: ${message}`);
}

const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;

/** Splits the text into logical lines with their starting line numbers. */
function logicalLines(text: string): { lines: { text: string; line: number }[]; escape: string } {
  const physical = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let i = 0;
  const seen = new Set<string>();
  // parser directives: only at the very top, before any other line
  for (; i < physical.length; i++) {
    const m = DIRECTIVE.exec(physical[i]);
    if (!m) break;
    const name = m[1].toLowerCase();
    if (seen.has(name)) throw parseError(i + 1, `only one ${name} parser directive can be used`);
    seen.add(name);
    if (name === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw parseError(i + 1, `invalid escape token '${m[2]}' does not match ` + '` or \\');
      escape = m[2];
    }
    // syntax= and unknown directives are comments for the classic builder
  }
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const lines: { text: string; line: number }[] = [];
  let current: string | undefined;
  let start = 0;
  for (; i < physical.length; i++) {
    const raw = physical[i];
    const trimmed = raw.trimStart();
    if (trimmed.startsWith('#')) continue; // comments, also inside a continuation
    if (current === undefined) {
      if (trimmed === '') continue;
      start = i + 1;
      current = '';
    } else if (trimmed === '') {
      continue; // empty continuation lines are skipped (Docker warns)
    }
    if (continuation.test(raw)) {
      current += raw.replace(continuation, '');
      continue;
    }
    current += raw;
    lines.push({ text: current.trim(), line: start });
    current = undefined;
  }
  if (current !== undefined && current.trim() !== '') lines.push({ text: current.trim(), line: start });
  return { lines, escape };
}

/** Parses one logical line into an instruction. */
export function parseInstruction(text: string, line: number): Instruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(text);
  if (!m) throw parseError(line, 'empty instruction');
  const keyword = m[1].toUpperCase() as Keyword;
  if (!(INSTRUCTIONS as readonly string[]).includes(keyword)) throw parseError(line, `unknown instruction: ${m[1]}`);
  let rest = m[2];
  const flags = new Map<string, string>();
  // --name=value (or --name) options come first
  for (;;) {
    const f = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!f || keyword === 'ONBUILD') break;
    const name = f[1].toLowerCase();
    if (BUILDKIT_FLAGS[keyword]?.includes(name)) {
      throw parseError(line, `the --${name} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled`);
    }
    if (!FLAGS[keyword]?.includes(name)) throw parseError(line, `unknown flag: ${name}`);
    if (flags.has(name)) throw parseError(line, `duplicate flag specified: ${name}`);
    flags.set(name, f[2] ?? '');
    rest = rest.slice(f[0].length);
  }
  const args = rest.trim();
  const ins: Instruction = { keyword, args, flags, line, original: text };
  const json = parseJsonArray(args);
  if (json && ['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'VOLUME', 'HEALTHCHECK'].includes(keyword)) ins.json = json;
  validate(ins);
  return ins;
}

function validate(ins: Instruction): void {
  const { keyword, args, line } = ins;
  const need = (what: string): void => {
    if (!args) throw parseError(line, `${keyword} requires ${what}`);
  };
  switch (keyword) {
    case 'FROM': {
      need('exactly one argument');
      const words = args.split(/\s+/);
      if (!(words.length === 1 || (words.length === 3 && words[1].toLowerCase() === 'as'))) {
        throw parseError(line, 'FROM requires either one or three arguments');
      }
      break;
    }
    case 'COPY':
    case 'ADD': {
      const n = ins.json ? ins.json.length : args.split(/\s+/).filter(Boolean).length;
      if (n < 2) throw parseError(line, `${keyword} requires at least two arguments, but only ${n} provided`);
      break;
    }
    case 'SHELL':
      if (!ins.json) throw parseError(line, 'SHELL requires the arguments to be in JSON form');
      if (ins.json.length === 0) throw parseError(line, 'SHELL requires at least one argument');
      break;
    case 'ENV':
    case 'LABEL':
    case 'ARG':
    case 'EXPOSE':
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'VOLUME':
    case 'MAINTAINER':
      need('at least one argument');
      break;
    case 'HEALTHCHECK': {
      need('an argument');
      const word = args.split(/\s+/)[0].toUpperCase();
      if (word !== 'NONE' && word !== 'CMD') throw parseError(line, `Unknown type "${word}" in HEALTHCHECK (try CMD)`);
      if (word === 'NONE' && args.split(/\s+/).length > 1) throw parseError(line, 'HEALTHCHECK NONE takes no arguments');
      break;
    }
    case 'ONBUILD': {
      need('at least one argument');
      const inner = parseInstruction(args, line);
      if (inner.keyword === 'ONBUILD') throw parseError(line, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (inner.keyword === 'FROM' || inner.keyword === 'MAINTAINER') throw parseError(line, `${inner.keyword} isn't allowed as an ONBUILD trigger`);
      break;
    }
    default:
      break;
  }
}

export function parseDockerfile(text: string): Dockerfile {
  const { lines, escape } = logicalLines(text);
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const l of lines) {
    const ins = parseInstruction(l.text, l.line);
    if (ins.keyword === 'FROM') {
      const words = ins.args.split(/\s+/);
      const name = words.length === 3 ? words[2].toLowerCase() : undefined;
      if (name !== undefined) {
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) throw parseError(l.line, `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`);
        if (stages.some((s) => s.name === name)) throw parseError(l.line, `duplicate name ${name}`);
      }
      stages.push({ name, index: stages.length, from: ins, instructions: [] });
      continue;
    }
    if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw parseError(l.line, `${ins.keyword} before the first FROM: a Dockerfile must begin with FROM (only ARG may come first)`);
      globalArgs.push(ins);
      continue;
    }
    stages[stages.length - 1].instructions.push(ins);
  }
  if (stages.length === 0) throw invalidArgument('the Dockerfile (Dockerfile) cannot be empty: it needs at least one FROM');
  return { escape, globalArgs, stages };
}

/**
 * Splits `k=v k2="v 2"` (or the legacy `k v` form of ENV and LABEL) into
 * raw pairs; quotes stay for processWord to remove.
 */
export function nameValuePairs(args: string, keyword: string, escape = '\\'): [string, string][] {
  const tokens = splitKeepingQuotes(args, escape);
  if (tokens.length === 0) throw invalidArgument(`${keyword} requires at least one argument`);
  if (!tokens[0].includes('=')) {
    if (keyword === 'ARG') return tokens.map((t) => [t, ''] as [string, string]);
    // legacy: NAME value-with-spaces
    const m = /^(\S+)\s+([\s\S]*)$/.exec(args.trim());
    if (!m) throw invalidArgument(`${keyword} names can not be blank`);
    return [[m[1], m[2]]];
  }
  return tokens.map((t) => {
    const i = t.indexOf('=');
    if (i < 0) {
      if (keyword === 'ARG') return [t, ''];
      throw invalidArgument(`Syntax error - can't find = in "${t}". Must be of the form: name=value`);
    }
    if (i === 0) throw invalidArgument(`${keyword} names can not be blank`);
    return [t.slice(0, i), t.slice(i + 1)];
  });
}

/** Splits on whitespace outside quotes; quotes and escapes are kept in the tokens. */
function splitKeepingQuotes(text: string, escape: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === escape && i + 1 < text.length) {
      cur += c + text[++i];
      continue;
    }
    if (quote) {
      if (c === quote) quote = null;
      cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (/\s/.test(c)) {
      if (cur) out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur) out.push(cur);
  return out;
}
