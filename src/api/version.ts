/** Engine API versions this daemon speaks. */
export const API_VERSION = '1.44';
export const MIN_API_VERSION = '1.24';
export const ENGINE_VERSION = '25.0.0+berth.0.1.0';
export const BERTH_VERSION = '0.1.0';

export function parseApiVersion(v: string): number {
  const [maj, min] = v.split('.').map((n) => parseInt(n, 10));
  return maj + (min ?? 0) / 100;
}

export function compareVersions(a: string, b: string): number {
  const [a1, a2] = a.split('.').map((n) => parseInt(n, 10));
  const [b1, b2] = b.split('.').map((n) => parseInt(n, 10));
  return a1 - b1 || (a2 ?? 0) - (b2 ?? 0);
}

/** Headers Docker sends on every response; clients read Api-Version to negotiate. */
export function commonHeaders(): Record<string, string> {
  return {
    'Api-Version': API_VERSION,
    Ostype: 'linux',
    Server: `Docker/${ENGINE_VERSION} (linux)`,
    'Docker-Experimental': 'false',
  };
}
