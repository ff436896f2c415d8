/**
 * Registry configuration: a JSON file (`--config`) overlaid by command-line
 * flags, checked once at start so a bad setting stops the server with a
 * clear message instead of failing a request later.
 */
import fsp from 'node:fs/promises';
import { invalidArgument } from '../core/errdefs/index.js';
import { parseRamBytes } from '../util/units.js';
import type { AccessRule } from './auth/access.js';

export interface RegistryConfig {
  root: string;
  /** host:port to listen on; port 0 picks a free port (printed in the "listening" log line). */
  addr: string;
  tls?: { cert: string; key: string };
  logLevel: string;
  deleteEnabled: boolean;
  maxManifestBytes: number;
  /** Uploads untouched for this long are removed (ms). */
  uploadPurgeAfterMs: number;
  gc: {
    /** 0 disables periodic collection. */
    intervalMs: number;
    /** Unreferenced content younger than this (or used this recently) is kept (ms). */
    graceMs: number;
    deleteUntagged: boolean;
  };
  auth: {
    htpasswd?: string;
    anonymousPull: boolean;
    access?: AccessRule[];
    token?: {
      realm?: string;
      service: string;
      issuer: string;
      expirySeconds: number;
      refreshExpirySeconds: number;
      keyFile?: string;
    };
  };
}

export const DEFAULT_CONFIG: Omit<RegistryConfig, 'root'> = {
  addr: '127.0.0.1:5000',
  logLevel: 'info',
  deleteEnabled: true,
  maxManifestBytes: 4 << 20,
  uploadPurgeAfterMs: 24 * 3600_000,
  gc: { intervalMs: 0, graceMs: 3600_000, deleteUntagged: true },
  auth: { anonymousPull: false },
};

/** "90s", "15m", "1h", "250ms", "0": a duration in milliseconds. */
export function parseDuration(value: string | number, what: string): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (m === null) throw invalidArgument(`${what}: invalid duration ${JSON.stringify(value)} (use e.g. 30s, 15m, 1h)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's']!;
  if (m[2] === undefined && Number(m[1]) !== 0) throw invalidArgument(`${what}: duration ${JSON.stringify(value)} needs a unit (s, m, h)`);
  return Math.round(Number(m[1]) * mult);
}

export function parseSize(value: string | number, what: string): number {
  if (typeof value === 'number') return value;
  try {
    return parseRamBytes(value);
  } catch {
    throw invalidArgument(`${what}: invalid size ${JSON.stringify(value)}`);
  }
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument(`config: ${what} must be an object`);
  return v as Json;
}

function str(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw invalidArgument(`config: ${what} must be a non-empty string`);
  return v;
}

function bool(v: unknown, what: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalidArgument(`config: ${what} must be true or false`);
  return v;
}

/** Reads the JSON config file into a partial config (flags come on top). */
export async function loadConfigFile(file: string): Promise<Partial<RegistryConfig>> {
  let doc: Json;
  try {
    doc = obj(JSON.parse(await fsp.readFile(file, 'utf8')), 'the file');
  } catch (err) {
    throw invalidArgument(`config ${file}: ${(err as Error).message}`);
  }
  const out: Partial<RegistryConfig> = {};
  const root = str(doc.root, 'root');
  if (root !== undefined) out.root = root;
  const addr = str(doc.addr, 'addr');
  if (addr !== undefined) out.addr = addr;
  const tls = obj(doc.tls, 'tls');
  if (tls.cert !== undefined || tls.key !== undefined) out.tls = { cert: str(tls.cert, 'tls.cert') ?? '', key: str(tls.key, 'tls.key') ?? '' };
  const log = obj(doc.log, 'log');
  const level = str(log.level, 'log.level');
  if (level !== undefined) out.logLevel = level;
  const storage = obj(doc.storage, 'storage');
  const del = bool(storage.deleteEnabled, 'storage.deleteEnabled');
  if (del !== undefined) out.deleteEnabled = del;
  if (storage.maxManifestSize !== undefined) out.maxManifestBytes = parseSize(storage.maxManifestSize as string, 'storage.maxManifestSize');
  if (storage.uploadPurgeAfter !== undefined) out.uploadPurgeAfterMs = parseDuration(storage.uploadPurgeAfter as string, 'storage.uploadPurgeAfter');
  const gc = obj(doc.gc, 'gc');
  out.gc = { ...DEFAULT_CONFIG.gc };
  if (gc.interval !== undefined) out.gc.intervalMs = parseDuration(gc.interval as string, 'gc.interval');
  if (gc.grace !== undefined) out.gc.graceMs = parseDuration(gc.grace as string, 'gc.grace');
  const untagged = bool(gc.deleteUntagged, 'gc.deleteUntagged');
  if (untagged !== undefined) out.gc.deleteUntagged = untagged;
  const auth = obj(doc.auth, 'auth');
  out.auth = { anonymousPull: bool(auth.anonymousPull, 'auth.anonymousPull') ?? false };
  const htpasswd = str(auth.htpasswd, 'auth.htpasswd');
  if (htpasswd !== undefined) out.auth.htpasswd = htpasswd;
  if (auth.access !== undefined) {
    if (!Array.isArray(auth.access)) throw invalidArgument('config: auth.access must be a list of rules');
    out.auth.access = auth.access as AccessRule[];
  }
  if (auth.token !== undefined) {
    const t = obj(auth.token, 'auth.token');
    out.auth.token = {
      service: str(t.service, 'auth.token.service') ?? 'berth-registry',
      issuer: str(t.issuer, 'auth.token.issuer') ?? 'berth-registry',
      expirySeconds: Math.round(parseDuration((t.expiry as string | undefined) ?? '5m', 'auth.token.expiry') / 1000),
      refreshExpirySeconds: Math.round(parseDuration((t.refreshExpiry as string | undefined) ?? '720h', 'auth.token.refreshExpiry') / 1000),
    };
    const realm = str(t.realm, 'auth.token.realm');
    if (realm !== undefined) out.auth.token.realm = realm;
    const keyFile = str(t.keyFile, 'auth.token.keyFile');
    if (keyFile !== undefined) out.auth.token.keyFile = keyFile;
  }
  return out;
}

export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (m === null) throw invalidArgument(`invalid address ${JSON.stringify(addr)} (expected HOST:PORT)`);
  const port = Number(m[3]);
  if (port > 65535) throw invalidArgument(`invalid port in ${JSON.stringify(addr)}`);
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!), port };
}
