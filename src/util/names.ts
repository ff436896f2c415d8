/**
 * Random container names in Docker's "adjective_surname" shape. The word
 * lists are Berth's own: pioneers of computing, mathematics and science.
 */
import crypto from 'node:crypto';

const ADJECTIVES = [
  'agile', 'amazing', 'bold', 'brave', 'bright', 'calm', 'charming', 'clever', 'cool', 'crisp',
  'curious', 'daring', 'dazzling', 'eager', 'earnest', 'elegant', 'epic', 'fair', 'fervent', 'festive',
  'fond', 'friendly', 'gallant', 'gentle', 'gifted', 'glad', 'graceful', 'happy', 'hardy', 'honest',
  'hopeful', 'humble', 'jolly', 'jovial', 'keen', 'kind', 'lively', 'loyal', 'lucid', 'merry',
  'mighty', 'modest', 'nifty', 'noble', 'patient', 'peaceful', 'plucky', 'polite', 'proud', 'quick',
  'quiet', 'radiant', 'ready', 'serene', 'sharp', 'sleepy', 'smart', 'snappy', 'steady', 'sunny',
  'swift', 'tender', 'thrifty', 'tidy', 'upbeat', 'vibrant', 'vigilant', 'vivid', 'warm', 'wise',
  'witty', 'zealous', 'zen', 'bouncy', 'cheerful', 'dreamy', 'fancy', 'frosty', 'golden', 'lucky',
];

const SURNAMES = [
  'lovelace', 'babbage', 'turing', 'hopper', 'knuth', 'dijkstra', 'hamilton', 'ritchie', 'thompson', 'kernighan',
  'liskov', 'lamport', 'backus', 'mccarthy', 'shannon', 'neumann', 'noether', 'euler', 'gauss', 'riemann',
  'curie', 'meitner', 'franklin', 'hodgkin', 'darwin', 'mendel', 'pasteur', 'faraday', 'maxwell', 'tesla',
  'kepler', 'galileo', 'newton', 'leibniz', 'pascal', 'fermat', 'hilbert', 'godel', 'cantor', 'ramanujan',
  'boole', 'church', 'kleene', 'hoare', 'milner', 'wirth', 'stroustrup', 'torvalds', 'cerf', 'kahn',
  'bell', 'hollerith', 'zuse', 'wilkes', 'goldberg', 'kay', 'engelbart', 'sutherland', 'allen', 'jackson',
  'johnson', 'vaughan', 'clarke', 'wing', 'goldwasser', 'micali', 'rivest', 'shamir', 'adleman', 'diffie',
  'hellman', 'merkle', 'tarjan', 'hartmanis', 'cook', 'karp', 'rabin', 'scott', 'floyd', 'perlman',
];

export function generateName(): string {
  const a = ADJECTIVES[crypto.randomInt(ADJECTIVES.length)];
  const s = SURNAMES[crypto.randomInt(SURNAMES.length)];
  return `${a}_${s}`;
}

/** Adds a digit when the first choice is taken, like Docker's retry. */
export function generateUniqueName(taken: (name: string) => boolean): string {
  for (let i = 0; i < 10; i++) {
    const name = generateName();
    if (!taken(name)) return name;
  }
  for (;;) {
    const name = `${generateName()}${crypto.randomInt(10)}`;
    if (!taken(name)) return name;
  }
}
