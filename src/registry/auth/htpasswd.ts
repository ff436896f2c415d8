/**
 * htpasswd files with bcrypt entries (`htpasswd -B`), as CNCF distribution
 * accepts them. bcrypt is deliberately slow, so successful checks are
 * remembered for a while by a hash of the credentials (never the password).
 */
import fsp from 'node:fs/promises';
import crypto from 'node:crypto';
import bcrypt from 'bcryptjs';
import { invalidArgument } from '../../core/errdefs/index.js';

const CACHE_TTL_MS = 5 * 60_000;

export class Htpasswd {
  private readonly verified = new Map<string, number>();

  private constructor(private readonly entries: Map<string, string>) {}

  static parse(text: string, source = 'htpasswd'): Htpasswd {
    const entries = new Map<string, string>();
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon <= 0) throw invalidArgument(`${source}:${i + 1}: expected user:hash`);
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (!/^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
        throw invalidArgument(`${source}:${i + 1}: user ${JSON.stringify(user)} has no bcrypt hash (create entries with htpasswd -B)`);
      }
      entries.set(user, hash);
    }
    return new Htpasswd(entries);
  }

  static async load(file: string): Promise<Htpasswd> {
    return Htpasswd.parse(await fsp.readFile(file, 'utf8'), file);
  }

  has(user: string): boolean {
    return this.entries.has(user);
  }

  async verify(user: string, password: string): Promise<boolean> {
    const hash = this.entries.get(user);
    if (hash === undefined) return false;
    const key = crypto.createHash('sha256').update(`${user}\0${password}\0${hash}`).digest('base64');
    const until = this.verified.get(key);
    if (until !== undefined && until > Date.now()) return true;
    // bcryptjs knows $2a$/$2b$; htpasswd writes $2y$, the same algorithm.
    const ok = await bcrypt.compare(password, hash.replace(/^\$2[xy]\$/, '$2b$'));
    if (ok) {
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(key, Date.now() + CACHE_TTL_MS);
    }
    return ok;
  }
}
