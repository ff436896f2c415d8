/**
 * .dockerignore matching with Docker's rules (@balena/dockerignore, a port
 * of Docker's fileutils patterns: `**`, `!` exceptions, leading-slash and
 * `./` normalisation). The package is CommonJS: its factory is the default.
 */
import * as dockerignoreModule from '@balena/dockerignore';

export interface IgnoreMatcher {
  ignores(relPath: string): boolean;
}

type Factory = (options?: { ignorecase?: boolean }) => { add(patterns: string[]): IgnoreMatcher };
const imported = dockerignoreModule as unknown as { default: Factory | { default: Factory } };
const factory: Factory = typeof imported.default === 'function' ? imported.default : imported.default.default;

export function dockerignoreMatcher(text: string): IgnoreMatcher {
  const lines = text.split(/\r?\n/).filter((l) => !l.trimStart().startsWith('#'));
  return factory({ ignorecase: false }).add(lines);
}
