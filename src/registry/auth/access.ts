/**
 * Who may do what: access rules per account and repository pattern, and the
 * scopes (`repository:NAME:pull,push`, `registry:catalog:*`) that requests need
 * and tokens carry.
 */
import { invalidArgument } from '../../core/errdefs/index.js';

export type Action = 'pull' | 'push' | 'delete' | '*';

export interface AccessRule {
  /** A user name, `*` for any authenticated user, or `anonymous`. */
  account: string;
  /** A repository name; `*` matches any run of characters, including `/`. */
  repository: string;
  actions: Action[];
}

export interface Scope {
  type: 'repository' | 'registry';
  name: string;
  actions: string[];
}

export const ANONYMOUS = 'anonymous';

/** Parses `repository:NAME:pull,push` (NAME may hold colons only in a registry host, which we never see). */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = text.slice(0, first);
  if (type !== 'repository' && type !== 'registry') return undefined;
  const name = text.slice(first + 1, last);
  const actions = text.slice(last + 1).split(',').filter((a) => a !== '');
  if (name === '' || actions.length === 0) return undefined;
  return { type, name, actions };
}

export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${scope.actions.join(',')}`;
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

export class AccessPolicy {
  private readonly rules: { account: string; repo: RegExp; actions: Set<string> }[];

  /**
   * With no rules, every authenticated user may do everything; anonymous
   * users may pull when `anonymousPull` is set.
   */
  constructor(
    rules: AccessRule[] | undefined,
    private readonly anonymousPull: boolean,
  ) {
    const list = rules ?? [{ account: '*', repository: '*', actions: ['*'] as Action[] }];
    this.rules = list.map((r, i) => {
      if (typeof r.account !== 'string' || typeof r.repository !== 'string' || !Array.isArray(r.actions)) {
        throw invalidArgument(`access rule ${i}: needs account, repository and actions`);
      }
      for (const a of r.actions) {
        if (!['pull', 'push', 'delete', '*'].includes(a)) throw invalidArgument(`access rule ${i}: unknown action ${JSON.stringify(a)}`);
      }
      return { account: r.account, repo: globToRegExp(r.repository), actions: new Set<string>(r.actions) };
    });
  }

  /** The actions of `scope` this account holds (the token service grants exactly these). */
  granted(account: string, scope: Scope): string[] {
    const held = new Set<string>();
    if (account === ANONYMOUS && this.anonymousPull && scope.type === 'repository') held.add('pull');
    for (const rule of this.rules) {
      const matchesAccount = rule.account === account || (rule.account === '*' && account !== ANONYMOUS);
      if (!matchesAccount) continue;
      if (scope.type === 'registry') {
        // The catalog lists every repository: only an all-repositories rule grants it.
        if (scope.name === 'catalog' && rule.repo.test('any/name') && rule.repo.test('x') && rule.actions.has('*')) held.add('*');
        continue;
      }
      if (!rule.repo.test(scope.name)) continue;
      for (const a of rule.actions) held.add(a);
    }
    if (held.has('*')) return scope.actions.slice();
    return scope.actions.filter((a) => held.has(a));
  }

  allows(account: string, scope: Scope): boolean {
    return this.granted(account, scope).length === scope.actions.length;
  }
}
