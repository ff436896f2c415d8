/**
 * A real CNCF distribution registry (Debian `docker-registry`) of a test's
 * own: its own config and storage under a temp dir, on 127.0.0.1 and a free
 * port, optionally with htpasswd Basic auth or token auth (a small token
 * issuer in this process signs the JWTs the registry verifies). Stopped by
 * pid, directory removed. BERTH_TEST_REGISTRY=host:port points tests at an
 * already running registry instead (for example `berth registry serve`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

export const REGISTRY_BINARY = process.env.BERTH_TEST_REGISTRY_BIN ?? '/usr/bin/docker-registry';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RegistryOptions {
  /** htpasswd Basic auth with one user. */
  basic?: { username: string; password: string };
  /** Token auth: a token issuer in this process; Basic credentials at the issuer. */
  token?: { username: string; password: string };
  /** HTTPS with a self-signed certificate for "localhost" (the registry is then localhost:<port>). */
  tls?: boolean;
}

export class TestRegistry {
  private proc: ChildProcess | undefined;
  private tokenServer: http.Server | undefined;
  /** Token requests seen by the issuer (scopes asked), for assertions. */
  readonly tokenRequests: { scope: string[]; user: string | undefined }[] = [];

  private constructor(
    readonly dir: string,
    readonly host: string,
  ) {}

  /** The CA (the self-signed certificate) of a TLS registry. */
  caFile = '';

  get url(): string {
    return `${this.caFile ? 'https' : 'http'}://${this.host}`;
  }

  static async start(options: RegistryOptions = {}): Promise<TestRegistry> {
    const external = process.env.BERTH_TEST_REGISTRY;
    if (external && !options.basic && !options.token) return new TestRegistry('', external);
    const dir = await fsp.mkdtemp('/tmp/btreg-');
    const port = await freePort();
    const reg = new TestRegistry(dir, options.tls ? `localhost:${port}` : `127.0.0.1:${port}`);
    const lines = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}/data`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  secret: ${crypto.randomBytes(16).toString('hex')}`,
    ];
    if (options.tls) {
      reg.caFile = path.join(dir, 'tls.crt');
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'tls.key'), '-out', reg.caFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
        { stdio: 'ignore' },
      );
      lines.push('  tls:', `    certificate: ${reg.caFile}`, `    key: ${path.join(dir, 'tls.key')}`);
    }
    if (options.basic) {
      const htpasswd = execFileSync('htpasswd', ['-Bbn', options.basic.username, options.basic.password]).toString();
      await fsp.writeFile(path.join(dir, 'htpasswd'), htpasswd);
      lines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${dir}/htpasswd`);
    }
    if (options.token) {
      const realm = await reg.startTokenIssuer(options.token);
      lines.push('auth:', '  token:', `    realm: ${realm}`, '    service: berth-test-registry', '    issuer: berth-test-issuer', `    rootcertbundle: ${dir}/token.crt`);
    }
    await fsp.writeFile(path.join(dir, 'config.yml'), lines.join('\n') + '\n');
    const log = fs.openSync(path.join(dir, 'registry.log'), 'a');
    reg.proc = spawn(REGISTRY_BINARY, ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (reg.proc.exitCode !== null) throw new Error(`registry exited: ${await reg.log()}`);
      const status = await new Promise<number>((resolve) => {
        const get = reg.caFile ? https.get : http.get;
        const req = get(`https://127.0.0.1:${port}/v2/`.replace(/^https/, reg.caFile ? 'https' : 'http'), { rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(0));
      });
      if (status === 200 || status === 401) break;
      if (Date.now() > deadline) throw new Error(`registry did not come up: ${await reg.log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return reg;
  }

  async log(): Promise<string> {
    return this.dir ? fsp.readFile(path.join(this.dir, 'registry.log'), 'utf8').catch(() => '') : '';
  }

  /** Where the registry keeps a blob (to damage it in bad-input tests). */
  blobPath(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    return path.join(this.dir, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  }

  /** A JWT issuer like Docker Hub's auth server: Basic credentials in, a token for the asked scopes out. */
  private async startTokenIssuer(creds: { username: string; password: string }): Promise<string> {
    const keyFile = path.join(this.dir, 'token.key');
    const certFile = path.join(this.dir, 'token.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=berth-test-issuer'], {
      stdio: 'ignore',
    });
    const key = crypto.createPrivateKey(await fsp.readFile(keyFile));
    const certDer = new crypto.X509Certificate(await fsp.readFile(certFile)).raw.toString('base64');
    const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    this.tokenServer = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const authz = req.headers.authorization;
      let user: string | undefined;
      if (authz?.startsWith('Basic ')) {
        const [u, p] = Buffer.from(authz.slice(6), 'base64').toString().split(':');
        if (u !== creds.username || p !== creds.password) {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ details: 'incorrect username or password' }));
          return;
        }
        user = u;
      }
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      this.tokenRequests.push({ scope: scopes, user });
      // anonymous callers get nothing; the user gets what they ask for
      const access = user
        ? scopes.map((s) => {
            const [type, ...rest] = s.split(':');
            const actions = rest.pop() ?? '';
            return { type, name: rest.join(':'), actions: actions.split(',') };
          })
        : [];
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer] };
      const claims = { iss: 'berth-test-issuer', sub: user ?? '', aud: url.searchParams.get('service') ?? '', exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomUUID(), access };
      const signingInput = `${b64url(header)}.${b64url(claims)}`;
      const signature = crypto.sign('sha256', Buffer.from(signingInput), key).toString('base64url');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ token: `${signingInput}.${signature}`, expires_in: 300 }));
    });
    const port = await freePort();
    await new Promise<void>((resolve) => this.tokenServer!.listen(port, '127.0.0.1', resolve));
    return `http://127.0.0.1:${port}/token`;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (this.tokenServer) await new Promise<void>((resolve) => this.tokenServer!.close(() => resolve()));
    if (this.dir && !process.env.BERTH_KEEP_TEST_DIRS) await fsp.rm(this.dir, { recursive: true, force: true });
  }
}
