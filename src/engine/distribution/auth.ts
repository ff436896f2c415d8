/**
 * Registry credentials and the challenges that ask for them:
 *  - X-Registry-Auth decoding (base64url or standard base64 JSON, padded or
 *    not: the docker CLI sends the first, dockerode the second),
 *  - WWW-Authenticate parsing (Basic and Bearer with realm/service/scope),
 *  - Bearer tokens from the realm, cached per scope set until they expire.
 * Secrets never leave this module except in Authorization headers; the
 * `redacted` helper is what logs may show.
 */
import type { IncomingMessage } from 'node:http';
import { invalidArgument } from '../../core/errdefs/index.js';

export interface AuthConfig {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token from an earlier login. */
  identitytoken?: string;
  /** A bearer token to send as is. */
  registrytoken?: string;
  serveraddress?: string;
}

/** Decodes the X-Registry-Auth header; an empty or "{}" header means anonymous. */
export function decodeRegistryAuth(header: string | undefined): AuthConfig | undefined {
  if (!header || !header.trim()) return undefined;
  const b64 = header.trim().replace(/-/g, '+').replace(/_/g, '/');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch {
    throw invalidArgument('invalid X-Registry-Auth header: not base64-encoded JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalidArgument('invalid X-Registry-Auth header');
  const o = parsed as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof o[k] === 'string' && o[k] !== '' ? (o[k] as string) : undefined);
  const auth: AuthConfig = {
    username: str('username'),
    password: str('password'),
    identitytoken: str('identitytoken'),
    registrytoken: str('registrytoken'),
    serveraddress: str('serveraddress'),
  };
  // {"auth":"base64(user:pass)"} as stored in config.json
  const combined = str('auth');
  if (combined && !auth.username) {
    const text = Buffer.from(combined, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i > 0) {
      auth.username = text.slice(0, i);
      auth.password = text.slice(i + 1);
    }
  }
  if (!auth.username && !auth.password && !auth.identitytoken && !auth.registrytoken) return undefined;
  return auth;
}

/** For logs: who, never the secret. */
export function redacted(auth: AuthConfig | undefined): string {
  if (!auth) return 'anonymous';
  return auth.username ? `user ${auth.username}` : 'token';
}

export interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

/** Parses WWW-Authenticate: `Bearer realm="...",service="...",scope="..."` (one or more challenges). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  const re = /([A-Za-z]+)\s+((?:[A-Za-z0-9_-]+=(?:"(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?\s*)*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const scheme = m[1].toLowerCase();
    if (scheme !== 'basic' && scheme !== 'bearer') continue;
    const params: Record<string, string> = {};
    const pre = /([A-Za-z0-9_-]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
    let p: RegExpExecArray | null;
    while ((p = pre.exec(m[2])) !== null) params[p[1].toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
    out.push({ scheme, params });
  }
  return out;
}

export function basicHeader(auth: AuthConfig): string | undefined {
  if (auth.username === undefined && auth.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${auth.username ?? ''}:${auth.password ?? ''}`).toString('base64')}`;
}

/** The error text of a 401/403 registry answer, from its JSON errors if any. */
export async function registryErrorText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size < 64 << 10) chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[]; details?: string };
    if (body.errors?.length) return body.errors.map((e) => `${(e.code ?? 'error').toLowerCase()}: ${e.message ?? ''}`).join(', ');
    if (body.details) return body.details;
  } catch {
    // not JSON
  }
  return text.trim().slice(0, 200);
}
