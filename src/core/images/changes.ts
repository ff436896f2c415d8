/**
 * Dockerfile-style `--change` instructions for import and commit:
 * CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR.
 */
import path from 'node:path';
import { invalidArgument } from '../errdefs/index.js';
import type { ImageRunConfig } from './types.js';

const ALLOWED = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']);

/** JSON array form if the text is one, else undefined (shell form). */
export function parseJsonArray(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

/** Splits words honouring double and single quotes and backslash escapes. */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw invalidArgument(`unterminated quote in: ${text}`);
  if (inWord) words.push(cur);
  return words;
}

/** Parses "k=v k2=v2" or the legacy "k v" form used by ENV and LABEL. */
export function parseKeyValues(args: string, instruction: string): [string, string][] {
  const words = splitWords(args);
  if (words.length === 0) throw invalidArgument(`${instruction} requires at least one argument`);
  if (!words[0].includes('=')) {
    // legacy form: first word is the key, the rest of the line is the value
    const key = words[0];
    const value = args.trim().slice(args.trim().indexOf(key) + key.length).trim();
    return [[key, value.replace(/^"(.*)"$/, '$1')]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw invalidArgument(`${instruction} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/** Replaces KEY in place (keeping the order, as Docker does) or appends it. */
function setEnv(env: string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const i = env.findIndex((e) => e.split('=')[0] === key);
  return i < 0 ? [...env, entry] : env.map((e, j) => (j === i ? entry : e));
}

/** Applies change lines to a copy of the config. */
export function applyChanges(base: ImageRunConfig, changes: readonly string[]): ImageRunConfig {
  const config: ImageRunConfig = structuredClone(base);
  let cmdSet = false;
  for (const raw of changes) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line);
    if (!m) continue;
    const instruction = m[1].toUpperCase();
    const args = m[2];
    if (!ALLOWED.has(instruction)) throw invalidArgument(`${m[1]} is not a valid change command`);
    switch (instruction) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const list = parseJsonArray(args) ?? (args.trim() ? ['/bin/sh', '-c', args.trim()] : []);
        if (instruction === 'CMD') {
          config.Cmd = list;
          cmdSet = true;
        } else {
          config.Entrypoint = list;
          // A new entrypoint drops the inherited CMD unless one was given too.
          if (!cmdSet) config.Cmd = null;
        }
        break;
      }
      case 'ENV':
        for (const [k, v] of parseKeyValues(args, 'ENV')) config.Env = setEnv(config.Env ?? [], k, v);
        break;
      case 'LABEL':
        for (const [k, v] of parseKeyValues(args, 'LABEL')) config.Labels = { ...(config.Labels ?? {}), [k]: v };
        break;
      case 'EXPOSE':
        for (const p of splitWords(args)) {
          const port = p.includes('/') ? p.toLowerCase() : `${p}/tcp`;
          if (!/^\d+(-\d+)?\/(tcp|udp|sctp)$/.test(port)) throw invalidArgument(`invalid port: ${p}`);
          config.ExposedPorts = { ...(config.ExposedPorts ?? {}), [port]: {} };
        }
        break;
      case 'VOLUME': {
        const list = parseJsonArray(args) ?? splitWords(args);
        if (list.length === 0) throw invalidArgument('VOLUME requires at least one argument');
        for (const v of list) config.Volumes = { ...(config.Volumes ?? {}), [v]: {} };
        break;
      }
      case 'WORKDIR':
        config.WorkingDir = path.posix.resolve(config.WorkingDir || '/', args.trim());
        break;
      case 'USER':
        config.User = args.trim();
        break;
      case 'STOPSIGNAL':
        config.StopSignal = args.trim();
        break;
      case 'ONBUILD':
        config.OnBuild = [...(config.OnBuild ?? []), args.trim()];
        break;
    }
  }
  return config;
}
