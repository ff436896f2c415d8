/**
 * Request authentication and authorization in one of three modes:
 *  - none:  everything is allowed;
 *  - basic: `Authorization: Basic` checked against htpasswd;
 *  - token: the Docker token protocol: a `Bearer` challenge pointing at this
 *           registry's own `/token` service, which checks htpasswd and grants
 *           scopes by the access rules. Basic is accepted here as well, so a
 *           daemon may log in either way.
 * Anonymous pull is optional in both authenticated modes.
 */
import type { IncomingMessage } from 'node:http';
import { ociError, RegistryError } from '../errors.js';
import { ANONYMOUS, AccessPolicy, type Scope, formatScope, parseScope } from './access.js';
import type { Htpasswd } from './htpasswd.js';
import { type TokenAccess, type TokenSigner, tokenCovers } from './token.js';

export type AuthMode = 'none' | 'basic' | 'token';

export interface Identity {
  account: string;
  /** How the request authenticated. */
  via: 'none' | 'anonymous' | 'basic' | 'bearer';
  /** Access carried by a bearer token. */
  access?: TokenAccess[];
}

export interface TokenSettings {
  signer: TokenSigner;
  /** Absolute URL of the token endpoint; derived from the request's Host when unset. */
  realm?: string;
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
}

export interface AuthOptions {
  mode: AuthMode;
  htpasswd?: Htpasswd;
  policy: AccessPolicy;
  token?: TokenSettings;
  basicRealm: string;
}

export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

const NO_AUTH: Identity = { account: ANONYMOUS, via: 'none' };

export class Authenticator {
  constructor(readonly options: AuthOptions) {}

  get mode(): AuthMode {
    return this.options.mode;
  }

  /**
   * Authenticates a request and checks it may perform `scopes`. An empty list
   * (the `/v2/` ping) only asks for a valid identity. Throws 401 with a
   * challenge, or 403 DENIED for a known user without the right.
   */
  async authorize(req: IncomingMessage, scopes: Scope[], secure: boolean): Promise<Identity> {
    if (this.options.mode === 'none') return NO_AUTH;
    const header = req.headers.authorization ?? '';
    const space = header.indexOf(' ');
    const scheme = space > 0 ? header.slice(0, space).toLowerCase() : '';
    const credentials = space > 0 ? header.slice(space + 1).trim() : '';

    if (scheme === 'basic') {
      const user = await this.checkBasic(credentials);
      if (user === undefined) throw this.challenge(req, scopes, secure, 'invalid_token', 'invalid username or password');
      for (const scope of scopes) {
        if (!this.options.policy.allows(user, scope)) {
          throw ociError('DENIED', `${user} may not ${scope.actions.join(',')} ${scope.name}`, [{ Type: scope.type, Name: scope.name, Action: scope.actions.join(',') }]);
        }
      }
      return { account: user, via: 'basic' };
    }
    if (scheme === 'bearer' && this.options.mode === 'token') {
      const claims = this.options.token!.signer.verify(credentials, 'access');
      if (claims === undefined) throw this.challenge(req, scopes, secure, 'invalid_token', 'invalid or expired token');
      for (const scope of scopes) {
        if (!tokenCovers(claims.access, scope)) throw this.challenge(req, scopes, secure, 'insufficient_scope', 'token does not grant the access needed');
      }
      const identity: Identity = { account: claims.sub, via: 'bearer' };
      if (claims.access !== undefined) identity.access = claims.access;
      return identity;
    }
    // No (usable) credentials: anonymous, if the policy lets anonymous do all of it.
    if (scopes.length > 0 && scopes.every((s) => this.options.policy.allows(ANONYMOUS, s))) return { account: ANONYMOUS, via: 'anonymous' };
    throw this.challenge(req, scopes, secure);
  }

  /** Whether an identity may also do `scope` (e.g. pull from a mount's source). */
  can(identity: Identity, scope: Scope): boolean {
    switch (identity.via) {
      case 'none':
        return true;
      case 'bearer':
        return tokenCovers(identity.access, scope);
      default:
        return this.options.policy.allows(identity.account, scope);
    }
  }

  private async checkBasic(credentials: string): Promise<string | undefined> {
    const htpasswd = this.options.htpasswd;
    if (htpasswd === undefined) return undefined;
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    const user = decoded.slice(0, colon);
    return (await htpasswd.verify(user, decoded.slice(colon + 1))) ? user : undefined;
  }

  realm(req: IncomingMessage, secure: boolean): string {
    const configured = this.options.token?.realm;
    if (configured !== undefined) return configured;
    const host = req.headers.host ?? 'localhost';
    return `${secure ? 'https' : 'http'}://${host}/token`;
  }

  private challenge(req: IncomingMessage, scopes: Scope[], secure: boolean, error?: string, message?: string): RegistryError {
    let value: string;
    if (this.options.mode === 'token') {
      const service = this.options.token!.signer.service;
      value = `Bearer realm="${this.realm(req, secure)}",service="${service}"`;
      if (scopes.length > 0) value += `,scope="${scopes.map(formatScope).join(' ')}"`;
      if (error !== undefined) value += `,error="${error}"`;
    } else {
      value = `Basic realm="${this.options.basicRealm}"`;
    }
    const detail = scopes.map((s) => ({ Type: s.type, Name: s.name, Action: s.actions.join(',') }));
    return new RegistryError('UNAUTHORIZED', message ?? 'authentication required', detail.length > 0 ? detail : undefined, 401, {
      'WWW-Authenticate': value,
    });
  }

  // ---- the token service ------------------------------------------------

  /** GET /token: Basic credentials (or none, for anonymous), scopes in `scope` parameters. */
  async tokenGet(req: IncomingMessage, query: URLSearchParams): Promise<TokenResponse> {
    const settings = this.requireTokenMode();
    this.checkService(query.get('service'));
    const header = req.headers.authorization ?? '';
    let account = ANONYMOUS;
    if (header.toLowerCase().startsWith('basic ')) {
      const user = await this.checkBasic(header.slice(6).trim());
      if (user === undefined) throw ociError('UNAUTHORIZED', 'invalid username or password');
      account = user;
    }
    const scopes = query.getAll('scope').flatMap((s) => s.split(' '));
    const offline = query.get('offline_token') === 'true' && account !== ANONYMOUS;
    return this.grant(settings, account, scopes, offline);
  }

  /** POST /token (OAuth2 form): grant_type=password or refresh_token. */
  async tokenPost(form: URLSearchParams): Promise<TokenResponse> {
    const settings = this.requireTokenMode();
    this.checkService(form.get('service'));
    const scopes = (form.get('scope') ?? '').split(' ');
    const grantType = form.get('grant_type');
    if (grantType === 'password') {
      const user = form.get('username') ?? '';
      const htpasswd = this.options.htpasswd;
      if (htpasswd === undefined || !(await htpasswd.verify(user, form.get('password') ?? ''))) {
        throw ociError('UNAUTHORIZED', 'invalid username or password');
      }
      return this.grant(settings, user, scopes, form.get('access_type') === 'offline');
    }
    if (grantType === 'refresh_token') {
      const claims = settings.signer.verify(form.get('refresh_token') ?? '', 'refresh');
      if (claims === undefined || !(this.options.htpasswd?.has(claims.sub) ?? false)) throw ociError('UNAUTHORIZED', 'invalid or expired refresh token');
      const out = this.grant(settings, claims.sub, scopes, false);
      // Hand the same refresh token back: clients keep it as their identity token.
      out.refresh_token = form.get('refresh_token') ?? '';
      return out;
    }
    throw ociError('UNSUPPORTED', `unsupported grant_type ${JSON.stringify(grantType)}`);
  }

  private grant(settings: TokenSettings, account: string, scopeTexts: string[], offline: boolean): TokenResponse {
    const access: TokenAccess[] = [];
    for (const text of scopeTexts) {
      if (text === '') continue;
      const scope = parseScope(text);
      if (scope === undefined) continue;
      const actions = this.options.policy.granted(account, scope);
      if (actions.length > 0) access.push({ type: scope.type, name: scope.name, actions });
    }
    const { token, claims } = settings.signer.issue('access', account, settings.accessTokenSeconds, access);
    const out: TokenResponse = {
      token,
      access_token: token,
      expires_in: settings.accessTokenSeconds,
      issued_at: new Date(claims.iat * 1000).toISOString(),
    };
    if (access.length > 0) out.scope = access.map((a) => formatScope({ type: a.type as Scope['type'], name: a.name, actions: a.actions })).join(' ');
    if (offline) out.refresh_token = settings.signer.issue('refresh', account, settings.refreshTokenSeconds).token;
    return out;
  }

  private requireTokenMode(): TokenSettings {
    if (this.options.mode !== 'token' || this.options.token === undefined) throw ociError('UNSUPPORTED', 'this registry does not run a token service');
    return this.options.token;
  }

  private checkService(service: string | null): void {
    if (service !== null && service !== '' && service !== this.options.token!.signer.service) {
      throw ociError('DENIED', `this token service is for ${this.options.token!.signer.service}, not ${service}`);
    }
  }
}
