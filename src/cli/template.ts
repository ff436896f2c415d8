/**
 * The subset of Go's text/template that `--format` uses in Docker's CLI:
 * fields (.A.B), $ and range variables, pipelines, if/else/range/with/end,
 * parentheses, literals, whitespace trimming ({{- -}}), and Docker's
 * functions (json, join, split, lower, upper, title, truncate, pad, index,
 * len, printf, println, eq/ne/lt/le/gt/ge, and/or/not, slice).
 *
 * No npm package implements Go templates with these semantics (printing
 * maps as map[k:v], <no value> for missing keys), so this is hand-written
 * and kept small.
 */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipe }
  | { kind: 'if' | 'with'; pipe: Pipe; body: Node[]; alt: Node[] }
  | { kind: 'range'; pipe: Pipe; keyVar?: string; valueVar?: string; body: Node[]; alt: Node[] };

interface Pipe {
  decl?: string[];
  cmds: Arg[][];
}

type Arg =
  | { kind: 'field'; base: 'dot' | string; path: string[] }
  | { kind: 'ident'; name: string }
  | { kind: 'literal'; value: unknown }
  | { kind: 'pipe'; pipe: Pipe; path: string[] };

// ---- lexing --------------------------------------------------------------

interface Token {
  t: 'field' | 'var' | 'ident' | 'string' | 'number' | 'pipe' | 'lparen' | 'rparen' | 'decl' | 'assign' | 'comma';
  v: string;
}

function lexAction(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '|') {
      out.push({ t: 'pipe', v: c });
      i++;
    } else if (c === '(') {
      out.push({ t: 'lparen', v: c });
      i++;
    } else if (c === ')') {
      out.push({ t: 'rparen', v: c });
      i++;
    } else if (c === ',') {
      out.push({ t: 'comma', v: c });
      i++;
    } else if (src.startsWith(':=', i)) {
      out.push({ t: 'decl', v: ':=' });
      i += 2;
    } else if (c === '=') {
      out.push({ t: 'assign', v: '=' });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[++j];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e;
        } else s += src[j];
        j++;
      }
      if (j >= src.length) throw new TemplateError('unterminated quoted string');
      out.push({ t: 'string', v: s });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError('unterminated raw string');
      out.push({ t: 'string', v: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === '.' || c === '$') {
      let j = i + 1;
      while (j < src.length && /[\w.]/.test(src[j])) j++;
      out.push({ t: c === '.' ? 'field' : 'var', v: src.slice(i, j) });
      i = j;
    } else if (/[-\d]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[\d.eE+-]/.test(src[j])) j++;
      out.push({ t: 'number', v: src.slice(i, j) });
      i = j;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /\w/.test(src[j])) j++;
      out.push({ t: 'ident', v: src.slice(i, j) });
      i = j;
    } else {
      throw new TemplateError(`unexpected "${c}" in command`);
    }
  }
  return out;
}

// ---- parsing -------------------------------------------------------------

interface RawAction {
  kind: 'text' | 'action';
  text: string;
}

function splitTemplate(src: string): RawAction[] {
  const parts: RawAction[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      parts.push({ kind: 'text', text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) parts.push({ kind: 'text', text });
    const close = src.indexOf('}}', start);
    if (close < 0) throw new TemplateError('unclosed action');
    let inner = src.slice(start, close);
    let next = close + 2;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      while (next < src.length && /\s/.test(src[next])) next++;
    }
    parts.push({ kind: 'action', text: inner.trim() });
    i = next;
  }
  return parts;
}

class Parser {
  private pos = 0;
  constructor(private readonly parts: RawAction[]) {}

  parseList(stops: string[]): { nodes: Node[]; stop?: string; stopText?: string } {
    const nodes: Node[] = [];
    while (this.pos < this.parts.length) {
      const p = this.parts[this.pos++];
      if (p.kind === 'text') {
        nodes.push({ kind: 'text', text: p.text });
        continue;
      }
      const word = p.text.split(/\s+/)[0];
      if (stops.includes(word)) return { nodes, stop: word, stopText: p.text };
      if (p.text.startsWith('/*')) continue;
      if (word === 'if' || word === 'with' || word === 'range') {
        nodes.push(this.parseBlock(word, p.text.slice(word.length)));
        continue;
      }
      nodes.push({ kind: 'action', pipe: parsePipe(lexAction(p.text)) });
    }
    if (stops.length) throw new TemplateError(`unexpected EOF: missing {{end}}`);
    return { nodes };
  }

  private parseBlock(kind: 'if' | 'with' | 'range', rest: string): Node {
    const tokens = lexAction(rest);
    const pipe = parsePipe(tokens);
    const body = this.parseList(['else', 'end']);
    let alt: Node[] = [];
    if (body.stop === 'else') {
      const elseRest = body.stopText!.slice(4).trim();
      if (elseRest.startsWith('if ') && kind === 'if') {
        alt = [this.parseBlock('if', elseRest.slice(3))];
      } else {
        const altList = this.parseList(['end']);
        alt = altList.nodes;
      }
    }
    if (kind === 'range') {
      const decl = pipe.decl ?? [];
      return {
        kind,
        pipe: { cmds: pipe.cmds },
        keyVar: decl.length === 2 ? decl[0] : undefined,
        valueVar: decl.length === 2 ? decl[1] : decl[0],
        body: body.nodes,
        alt,
      };
    }
    return { kind, pipe, body: body.nodes, alt };
  }
}

function parsePipe(tokens: Token[]): Pipe {
  let i = 0;
  let decl: string[] | undefined;
  // $a := ...  or  $k, $v := ...
  const declEnd = tokens.findIndex((t) => t.t === 'decl' || t.t === 'assign');
  if (declEnd > 0 && tokens.slice(0, declEnd).every((t) => t.t === 'var' || t.t === 'comma')) {
    decl = tokens.slice(0, declEnd).filter((t) => t.t === 'var').map((t) => t.v);
    i = declEnd + 1;
  }
  const parseArgs = (until: (t: Token) => boolean): { cmds: Arg[][]; next: number } => {
    const cmds: Arg[][] = [[]];
    while (i < tokens.length && !until(tokens[i])) {
      const t = tokens[i++];
      const cur = cmds[cmds.length - 1];
      switch (t.t) {
        case 'pipe':
          cmds.push([]);
          break;
        case 'field':
          cur.push({ kind: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.slice(1).split('.') });
          break;
        case 'var': {
          const [name, ...path] = t.v.split('.');
          cur.push({ kind: 'field', base: name, path });
          break;
        }
        case 'string':
          cur.push({ kind: 'literal', value: t.v });
          break;
        case 'number':
          cur.push({ kind: 'literal', value: Number(t.v) });
          break;
        case 'ident':
          if (t.v === 'true' || t.v === 'false') cur.push({ kind: 'literal', value: t.v === 'true' });
          else if (t.v === 'nil') cur.push({ kind: 'literal', value: null });
          else cur.push({ kind: 'ident', name: t.v });
          break;
        case 'lparen': {
          const inner = parseArgs((x) => x.t === 'rparen');
          if (tokens[i]?.t !== 'rparen') throw new TemplateError('unclosed left paren');
          i++;
          cur.push({ kind: 'pipe', pipe: { cmds: inner.cmds }, path: [] });
          break;
        }
        default:
          throw new TemplateError(`unexpected ${t.v}`);
      }
    }
    return { cmds, next: i };
  };
  const { cmds } = parseArgs(() => false);
  if (cmds.some((c) => c.length === 0)) throw new TemplateError('missing value for command');
  return { decl, cmds };
}

// ---- execution -----------------------------------------------------------

type Value = unknown;
const NO_VALUE = Symbol('no value');

function field(v: Value, name: string): Value {
  if (v === null || v === undefined || v === NO_VALUE) return NO_VALUE;
  if (typeof v === 'object' && name in (v as object)) return (v as Record<string, Value>)[name];
  if (v instanceof Map) return v.has(name) ? v.get(name) : NO_VALUE;
  return NO_VALUE;
}

function truthy(v: Value): boolean {
  if (v === NO_VALUE || v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

export function goString(v: Value): string {
  if (v === NO_VALUE || v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(goElem).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `map[${keys.map((k) => `${k}:${goElem((v as Record<string, Value>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function goElem(v: Value): string {
  return v === null ? '<nil>' : goString(v);
}

function toNum(v: Value): number {
  return typeof v === 'number' ? v : Number(v);
}

function sprintf(format: string, args: Value[]): string {
  let i = 0;
  return format.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([sdvqfxXt%])/g, (_m, flags: string, width: string, prec: string, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    let s: string;
    switch (verb) {
      case 'd':
        s = String(Math.trunc(toNum(a)));
        break;
      case 'f':
        s = toNum(a).toFixed(prec ? Number(prec) : 6);
        break;
      case 'q':
        s = JSON.stringify(goString(a));
        break;
      case 'x':
        s = typeof a === 'number' ? a.toString(16) : Buffer.from(goString(a)).toString('hex');
        break;
      case 'X':
        s = (typeof a === 'number' ? a.toString(16) : Buffer.from(goString(a)).toString('hex')).toUpperCase();
        break;
      default:
        s = goString(a);
        if (prec && verb === 's') s = s.slice(0, Number(prec));
    }
    if (width) s = flags.includes('-') ? s.padEnd(Number(width)) : s.padStart(Number(width), flags.includes('0') ? '0' : ' ');
    return s;
  });
}

const FUNCS: Record<string, (...args: Value[]) => Value> = {
  json: (v) => JSON.stringify(v === NO_VALUE ? null : v),
  join: (list, sep) => (Array.isArray(list) ? list.map(goString).join(goString(sep)) : goString(list)),
  split: (s, sep) => goString(s).split(goString(sep)),
  lower: (s) => goString(s).toLowerCase(),
  upper: (s) => goString(s).toUpperCase(),
  title: (s) => goString(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  truncate: (s, n) => [...goString(s)].slice(0, toNum(n)).join(''),
  pad: (s, l, r) => `${' '.repeat(toNum(l))}${goString(s)}${' '.repeat(toNum(r))}`,
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : v && typeof v === 'object' ? Object.keys(v).length : 0),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (Array.isArray(cur)) cur = cur[toNum(k)];
      else cur = field(cur, goString(k));
      if (cur === undefined) return NO_VALUE;
    }
    return cur;
  },
  slice: (v, a, b) => (Array.isArray(v) || typeof v === 'string' ? v.slice(toNum(a ?? 0), b === undefined ? undefined : toNum(b)) : v),
  printf: (fmt, ...args) => sprintf(goString(fmt), args),
  print: (...args) => args.map(goString).join(''),
  println: (...args) => args.map(goString).join(' ') + '\n',
  eq: (a, ...bs) => bs.some((b) => a === b || goString(a) === goString(b)),
  ne: (a, b) => !(a === b || goString(a) === goString(b)),
  lt: (a, b) => toNum(a) < toNum(b),
  le: (a, b) => toNum(a) <= toNum(b),
  gt: (a, b) => toNum(a) > toNum(b),
  ge: (a, b) => toNum(a) >= toNum(b),
  and: (...args) => args.find((a) => !truthy(a)) ?? args[args.length - 1],
  or: (...args) => args.find((a) => truthy(a)) ?? args[args.length - 1],
  not: (a) => !truthy(a),
};

interface Scope {
  dot: Value;
  vars: Map<string, Value>;
  funcs: Record<string, (...args: Value[]) => Value>;
}

function evalArg(a: Arg, s: Scope): Value {
  switch (a.kind) {
    case 'literal':
      return a.value;
    case 'field': {
      let base: Value;
      if (a.base === 'dot') base = s.dot;
      else {
        if (!s.vars.has(a.base)) throw new TemplateError(`undefined variable "${a.base}"`);
        base = s.vars.get(a.base);
      }
      for (const p of a.path) {
        // a method-like call on a context object
        const v = field(base, p);
        base = typeof v === 'function' ? (v as () => Value).call(base) : v;
      }
      return base;
    }
    case 'ident': {
      const fn = s.funcs[a.name];
      if (!fn) throw new TemplateError(`function "${a.name}" not defined`);
      return fn();
    }
    case 'pipe':
      return evalPipe(a.pipe, s);
  }
}

function evalPipe(p: Pipe, s: Scope): Value {
  let result: Value = undefined;
  p.cmds.forEach((cmd, idx) => {
    const [head, ...rest] = cmd;
    const extra = idx > 0 ? [result] : [];
    if (head.kind === 'ident') {
      const fn = s.funcs[head.name];
      if (!fn) throw new TemplateError(`function "${head.name}" not defined`);
      result = fn(...rest.map((r) => evalArg(r, s)), ...extra);
    } else {
      if (rest.length) {
        // a field call with arguments: Docker's context methods ({{.Label "x"}})
        const target = head.kind === 'field' ? head : undefined;
        if (target && target.path.length) {
          let base: Value = target.base === 'dot' ? s.dot : s.vars.get(target.base);
          for (const p2 of target.path.slice(0, -1)) base = field(base, p2);
          const m = field(base, target.path[target.path.length - 1]);
          if (typeof m === 'function') {
            result = (m as (...x: Value[]) => Value).call(base, ...rest.map((r) => evalArg(r, s)), ...extra);
            return;
          }
        }
        throw new TemplateError(`can't give argument to non-function`);
      }
      result = evalArg(head, s);
    }
  });
  if (p.decl) for (const d of p.decl) s.vars.set(d, result);
  return result;
}

function execList(nodes: Node[], s: Scope, out: string[]): void {
  for (const n of nodes) {
    switch (n.kind) {
      case 'text':
        out.push(n.text);
        break;
      case 'action': {
        const v = evalPipe(n.pipe, s);
        if (!n.pipe.decl) out.push(goString(v));
        break;
      }
      case 'if': {
        const v = evalPipe(n.pipe, s);
        execList(truthy(v) ? n.body : n.alt, s, out);
        break;
      }
      case 'with': {
        const v = evalPipe(n.pipe, s);
        if (truthy(v)) execList(n.body, { ...s, dot: v }, out);
        else execList(n.alt, s, out);
        break;
      }
      case 'range': {
        const v = evalPipe(n.pipe, s);
        let entries: [Value, Value][] = [];
        if (Array.isArray(v)) entries = v.map((x, i) => [i, x]);
        else if (v && typeof v === 'object') {
          entries = Object.keys(v)
            .sort()
            .map((k) => [k, (v as Record<string, Value>)[k]]);
        } else if (typeof v === 'number') entries = Array.from({ length: v }, (_x, i) => [i, i]);
        if (entries.length === 0) {
          execList(n.alt, s, out);
          break;
        }
        for (const [k, x] of entries) {
          const vars = new Map(s.vars);
          if (n.keyVar) vars.set(n.keyVar, k);
          if (n.valueVar) vars.set(n.valueVar, x);
          execList(n.body, { ...s, dot: x, vars }, out);
        }
        break;
      }
    }
  }
}

export class Template {
  private readonly nodes: Node[];

  constructor(
    readonly source: string,
    private readonly extraFuncs: Record<string, (...args: Value[]) => Value> = {},
  ) {
    this.nodes = new Parser(splitTemplate(source)).parseList([]).nodes;
  }

  execute(dot: Value): string {
    const out: string[] = [];
    execList(this.nodes, { dot, vars: new Map([['$', dot]]), funcs: { ...FUNCS, ...this.extraFuncs } }, out);
    return out.join('');
  }
}
