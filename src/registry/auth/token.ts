/**
 * Bearer tokens for the Docker token protocol: compact JWTs (HS256) that the
 * registry issues at `/token` and checks on every request. Access tokens carry
 * the granted scopes; refresh tokens (for `docker login`'s identity token and
 * `POST /token` with grant_type=refresh_token) carry only the account.
 */
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../../core/errdefs/index.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import type { Scope } from './access.js';

export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  typ: 'access' | 'refresh';
  access?: TokenAccess[];
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

export class TokenSigner {
  constructor(
    private readonly key: Buffer,
    readonly issuer: string,
    readonly service: string,
  ) {}

  /** Loads the signing key, creating a random one (atomically, mode 0600) on first use. */
  static async loadKey(file: string): Promise<Buffer> {
    try {
      const key = await fsp.readFile(file);
      if (key.length >= 32) return key;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const key = crypto.randomBytes(32);
    await writeFileAtomic(file, key, 0o600);
    return key;
  }

  issue(typ: 'access' | 'refresh', account: string, lifetimeSeconds: number, access?: TokenAccess[]): { token: string; claims: TokenClaims } {
    const now = Math.floor(Date.now() / 1000);
    const claims: TokenClaims = {
      iss: this.issuer,
      sub: account,
      aud: this.service,
      // Rounded up: a token lives at least its lifetime, whatever the fraction of the second.
      exp: Math.ceil((Date.now() + lifetimeSeconds * 1000) / 1000),
      nbf: now - 10,
      iat: now,
      jti: crypto.randomBytes(12).toString('hex'),
      typ,
    };
    if (access !== undefined) claims.access = access;
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = b64url(JSON.stringify(claims));
    const signature = crypto.createHmac('sha256', this.key).update(`${header}.${payload}`).digest('base64url');
    return { token: `${header}.${payload}.${signature}`, claims };
  }

  /** The claims of a valid, unexpired token of this type, else undefined. */
  verify(token: string, typ: 'access' | 'refresh'): TokenClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header, payload, signature] = parts as [string, string, string];
    const expected = crypto.createHmac('sha256', this.key).update(`${header}.${payload}`).digest();
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return undefined;
    let claims: TokenClaims;
    try {
      const head = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown };
      if (head.alg !== 'HS256') return undefined;
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return undefined;
    }
    const now = Math.floor(Date.now() / 1000);
    if (claims.typ !== typ || claims.iss !== this.issuer || claims.aud !== this.service) return undefined;
    if (typeof claims.exp !== 'number' || claims.exp <= now || typeof claims.nbf !== 'number' || claims.nbf > now) return undefined;
    if (typeof claims.sub !== 'string') return undefined;
    return claims;
  }
}

/** Whether a token's access list covers a scope ('*' in the token grants every action). */
export function tokenCovers(access: TokenAccess[] | undefined, scope: Scope): boolean {
  const entry = (access ?? []).filter((a) => a.type === scope.type && a.name === scope.name);
  const held = new Set(entry.flatMap((a) => a.actions));
  return held.has('*') || scope.actions.every((a) => held.has(a));
}
