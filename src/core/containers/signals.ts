/** Signal names and numbers as Docker accepts them ("SIGTERM", "TERM", "15"). */
import os from 'node:os';
import { invalidArgument } from '../errdefs/index.js';

const SIGNALS = os.constants.signals as Record<string, number>;

/** Returns the canonical name ("SIGTERM") for a signal given in any accepted form. */
export function parseSignal(input: string | number): NodeJS.Signals {
  const raw = String(input).trim();
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    const name = Object.keys(SIGNALS).find((k) => SIGNALS[k] === n);
    if (!name || n === 0) throw invalidArgument(`Invalid signal: ${raw}`);
    return name as NodeJS.Signals;
  }
  const up = raw.toUpperCase();
  const name = up.startsWith('SIG') ? up : `SIG${up}`;
  if (!(name in SIGNALS)) throw invalidArgument(`Invalid signal: ${raw}`);
  return name as NodeJS.Signals;
}

export function signalNumber(name: NodeJS.Signals): number {
  return SIGNALS[name];
}
