/** A small path router: "/containers/:id/start" patterns, first match wins. */
import type { RequestContext } from './context.js';

export type Handler = (ctx: RequestContext) => Promise<void>;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, path: string, handler: Handler): this {
    const keys: string[] = [];
    const source = path
      .split('/')
      .map((part) => {
        if (part.startsWith(':')) {
          const name = part.slice(1);
          if (name.endsWith('*')) {
            keys.push(name.slice(0, -1));
            return '(.+)';
          }
          keys.push(name);
          return '([^/]+)';
        }
        return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    this.routes.push({ method, pattern: new RegExp(`^${source}/?$`), keys, handler });
    return this;
  }

  get(path: string, h: Handler): this {
    return this.add('GET', path, h);
  }
  post(path: string, h: Handler): this {
    return this.add('POST', path, h);
  }
  put(path: string, h: Handler): this {
    return this.add('PUT', path, h);
  }
  delete(path: string, h: Handler): this {
    return this.add('DELETE', path, h);
  }
  head(path: string, h: Handler): this {
    return this.add('HEAD', path, h);
  }

  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | { methodMismatch: true } | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => {
        params[k] = decodeURIComponent(m[i + 1]);
      });
      return { handler: r.handler, params };
    }
    return pathMatched ? { methodMismatch: true } : undefined;
  }
}
