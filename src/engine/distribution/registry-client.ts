/**
 * An HTTP client for one registry endpoint and one set of credentials: picks
 * the scheme (HTTPS, or HTTP for loopback and insecure registries after a
 * TLS failure), keeps connections alive, answers auth challenges (Basic, or
 * Bearer tokens from the challenge's realm, from `/v2/` or any 401) and
 * retries once with credentials. Maps registry errors to Berth's taxonomy
 * with Docker's wording. Never logs a credential.
 */
import crypto from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { BerthError, errnoCode, forbidden, internal, notFound, unauthorized, unavailable } from '../../core/errdefs/index.js';
import { BERTH_VERSION } from '../../api/version.js';
import type { Endpoint } from './registry-hosts.js';
import { type AuthConfig, type Challenge, basicHeader, parseChallenges, registryErrorText } from './auth.js';

export const USER_AGENT = `berth/${BERTH_VERSION}`;

export interface RegistryRequest {
  method: string;
  /** "/v2/..." or an absolute URL (upload Locations may point elsewhere). */
  url: string;
  headers?: Record<string, string>;
  /** A Buffer, or a function giving a fresh stream per attempt. */
  body?: Buffer | (() => Readable);
  /** Token scopes this request needs: "repository:library/busybox:pull". */
  scopes: string[];
  signal?: AbortSignal;
  /** Milliseconds without data before the request is abandoned. */
  idleTimeoutMs?: number;
}

interface CachedToken {
  token: string;
  expires: number;
}

/** Per daemon: scheme that worked for a host; tokens by realm, scopes and credentials. */
const schemeByHost = new Map<string, 'https' | 'http'>();
const tokenCache = new Map<string, CachedToken>();
const challengeByHost = new Map<string, Challenge>();
const agents = new Map<string, http.Agent>();

function agentFor(scheme: 'http' | 'https', ep: Endpoint): http.Agent {
  const key = `${scheme}|${ep.host}|${ep.insecureTLS}|${ep.ca?.length ?? 0}`;
  let agent = agents.get(key);
  if (!agent) {
    agent =
      scheme === 'http'
        ? new http.Agent({ keepAlive: true, maxSockets: 16 })
        : new https.Agent({
            keepAlive: true,
            maxSockets: 16,
            rejectUnauthorized: !ep.insecureTLS,
            ca: ep.ca ? [...tls.rootCertificates, ...ep.ca] : undefined,
          });
    agents.set(key, agent);
  }
  return agent;
}

/** TLS spoken to a plain-HTTP server (or refused): the cue to fall back to HTTP. */
function isTLSFailure(err: unknown): boolean {
  const code = errnoCode(err) ?? '';
  return code === 'EPROTO' || code === 'ECONNRESET' || code.startsWith('ERR_SSL') || /wrong version number|packet length too long/i.test(String(err));
}

export class RegistryClient {
  constructor(
    readonly endpoint: Endpoint,
    private readonly auth: AuthConfig | undefined,
  ) {}

  get host(): string {
    return this.endpoint.host;
  }

  private get credentialKey(): string {
    const a = this.auth;
    if (!a) return 'anon';
    return crypto.createHash('sha256').update(`${a.username ?? ''}\0${a.password ?? ''}\0${a.identitytoken ?? ''}\0${a.registrytoken ?? ''}`).digest('hex').slice(0, 16);
  }

  /** Sends a request, answering one auth challenge; the caller checks the status. */
  async send(req: RegistryRequest): Promise<IncomingMessage> {
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...(req.headers ?? {}) };
      const authorization = await this.authorization(req.scopes);
      if (authorization) headers.Authorization = authorization;
      const res = await this.raw(req, headers);
      if (res.statusCode !== 401 || attempt > 0) return res;
      const challenges = parseChallenges(res.headers['www-authenticate']);
      const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
      if (!challenge) return res;
      const previous = challengeByHost.get(this.host);
      challengeByHost.set(this.host, challenge);
      if (challenge.scheme === 'basic' && (!this.auth || !basicHeader(this.auth))) return res;
      if (challenge.scheme === 'bearer') {
        // a token we sent was refused (expired, or too narrow): ask again
        tokenCache.delete(this.tokenKey(challenge, req.scopes));
      } else if (previous?.scheme === 'basic' && authorization) {
        return res; // our Basic credentials were refused
      }
      res.resume();
    }
  }

  private tokenKey(challenge: Challenge, scopes: string[]): string {
    return `${challenge.params.realm}|${challenge.params.service ?? ''}|${[...scopes].sort().join(' ')}|${this.credentialKey}`;
  }

  private async authorization(scopes: string[]): Promise<string | undefined> {
    const challenge = challengeByHost.get(this.host);
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') return this.auth ? basicHeader(this.auth) : undefined;
    if (this.auth?.registrytoken) return `Bearer ${this.auth.registrytoken}`;
    const key = this.tokenKey(challenge, scopes);
    const cached = tokenCache.get(key);
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.token}`;
    const token = await this.fetchToken(challenge, scopes);
    tokenCache.set(key, token);
    return `Bearer ${token.token}`;
  }

  /** The token flow: GET realm?service&scope with Basic credentials, or POST with a refresh token. */
  private async fetchToken(challenge: Challenge, scopes: string[]): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw unauthorized(`${this.host}: bearer challenge without a realm`);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw unauthorized(`${this.host}: invalid token realm ${JSON.stringify(realm)}`);
    }
    const allScopes = new Set(scopes);
    if (challenge.params.scope) for (const s of challenge.params.scope.split(' ')) if (s) allScopes.add(s);
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT };
    let body: Buffer | undefined;
    let method = 'GET';
    if (this.auth?.identitytoken) {
      method = 'POST';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.auth.identitytoken, client_id: 'berth' });
      if (challenge.params.service) form.set('service', challenge.params.service);
      if (allScopes.size) form.set('scope', [...allScopes].join(' '));
      body = Buffer.from(form.toString());
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    } else {
      if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
      for (const s of allScopes) url.searchParams.append('scope', s);
      const basic = this.auth ? basicHeader(this.auth) : undefined;
      if (basic) headers.Authorization = basic;
    }
    const scheme = url.protocol === 'http:' ? 'http' : 'https';
    const res = await this.request(scheme, url, method, headers, body ? () => body! : undefined, undefined, 30_000);
    if (res.statusCode === 401 || res.statusCode === 403) {
      const text = await registryErrorText(res);
      throw unauthorized(`Get "${url.origin}${url.pathname}": unauthorized: ${text || 'authentication required'}`);
    }
    if (res.statusCode !== 200) {
      const text = await registryErrorText(res);
      throw unauthorized(`token server ${url.origin} answered ${res.statusCode}: ${text}`);
    }
    const json = JSON.parse((await readLimited(res, 1 << 20)).toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
    const token = json.token || json.access_token;
    if (!token) throw unauthorized(`token server ${url.origin} returned no token`);
    const ttl = Math.max(10, json.expires_in ?? 60);
    return { token, expires: Date.now() + (ttl - 5) * 1000 };
  }

  private async raw(req: RegistryRequest, headers: Record<string, string>): Promise<IncomingMessage> {
    const absolute = /^https?:\/\//.test(req.url);
    const known = schemeByHost.get(this.host);
    const schemes = absolute ? [req.url.startsWith('http:') ? ('http' as const) : ('https' as const)] : known ? [known] : this.endpoint.schemes;
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? ((b: Buffer) => () => b)(req.body) : req.body;
    let lastError: unknown;
    for (const scheme of schemes) {
      const url = absolute ? new URL(req.url) : new URL(`${scheme}://${this.host}${req.url}`);
      try {
        const res = await this.request(scheme, url, req.method, headers, body, req.signal, req.idleTimeoutMs ?? 60_000);
        if (!absolute) schemeByHost.set(this.host, scheme);
        return res;
      } catch (err) {
        lastError = err;
        if (!(scheme === 'https' && schemes.length > 1 && isTLSFailure(err))) break;
      }
    }
    if (lastError instanceof BerthError) throw lastError;
    const url = absolute ? req.url : `${schemes[schemes.length - 1]}://${this.host}${req.url}`;
    const verb = req.method.charAt(0) + req.method.slice(1).toLowerCase();
    throw unavailable(`${verb} "${url}": ${(lastError as Error)?.message ?? String(lastError)}`);
  }

  private request(
    scheme: 'http' | 'https',
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: (() => Buffer | Readable) | undefined,
    signal: AbortSignal | undefined,
    idleTimeoutMs: number,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const mod = scheme === 'http' ? http : https;
      const ep = url.host === this.host ? this.endpoint : { ...this.endpoint, insecureTLS: false };
      const req = mod.request(url, { method, headers, agent: agentFor(scheme, ep), signal });
      req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`no answer for ${idleTimeoutMs / 1000}s`)));
      req.on('response', (res) => {
        res.setTimeout(idleTimeoutMs, () => res.destroy(new Error(`stalled for ${idleTimeoutMs / 1000}s`)));
        resolve(res);
      });
      req.on('error', reject);
      const data = body?.();
      if (data === undefined) req.end();
      else if (Buffer.isBuffer(data)) req.end(data);
      else {
        data.on('error', (err) => req.destroy(err));
        data.pipe(req);
      }
    });
  }
}

/** Reads a small body (manifests, tokens, JSON) with a size limit. */
export async function readLimited(res: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > limit) {
      res.destroy();
      throw internal(`response larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Turns an unexpected registry answer into an error: 401 and 403 with
 * Docker's hint to log in, 404 as not found, the rest with the registry's
 * own error text.
 */
export async function registryError(res: IncomingMessage, what: { action: 'pull' | 'push'; repository: string; object: string }): Promise<BerthError> {
  const status = res.statusCode ?? 0;
  const text = await registryErrorText(res);
  if (status === 401 || status === 403) {
    // dockerd answers a refused pull with 404, not 401: a 401 makes the docker CLI prompt for a login
    const message = `${what.action} access denied for ${what.repository}, repository does not exist or may require 'docker login'${text ? `: ${text}` : ''}`;
    if (what.action === 'pull') return notFound(message);
    return status === 401 ? unauthorized(message) : forbidden(message);
  }
  if (status === 404) return notFound(`${what.object} not found${text ? `: ${text}` : ''}`);
  if (status === 429) return unavailable(`toomanyrequests: ${text || 'rate limited by the registry'}`);
  return internal(`${what.object}: registry answered ${status}${text ? `: ${text}` : ''}`);
}
