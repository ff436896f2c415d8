/**
 * The one error taxonomy of Berth. Services throw these; the API layer maps
 * each kind to an HTTP status in exactly one place (src/api/errors.ts).
 * Messages keep Docker's wording where clients match on it.
 */
export type ErrorKind =
  | 'NotFound'
  | 'InvalidArgument'
  | 'Conflict'
  | 'AlreadyExists'
  | 'NotModified'
  | 'Unauthorized'
  | 'Forbidden'
  | 'Unavailable'
  | 'NotImplemented'
  | 'Internal';

export class BerthError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = `BerthError(${kind})`;
  }
}

export const notFound = (message: string): BerthError => new BerthError('NotFound', message);
export const invalidArgument = (message: string): BerthError => new BerthError('InvalidArgument', message);
export const conflict = (message: string): BerthError => new BerthError('Conflict', message);
export const alreadyExists = (message: string): BerthError => new BerthError('AlreadyExists', message);
export const notModified = (message = ''): BerthError => new BerthError('NotModified', message);
export const unauthorized = (message: string): BerthError => new BerthError('Unauthorized', message);
export const forbidden = (message: string): BerthError => new BerthError('Forbidden', message);
export const unavailable = (message: string): BerthError => new BerthError('Unavailable', message);
export const notImplemented = (message: string): BerthError => new BerthError('NotImplemented', message);
export const internal = (message: string, cause?: unknown): BerthError =>
  new BerthError('Internal', message, { cause });

export function errorKind(err: unknown): ErrorKind {
  return err instanceof BerthError ? err.kind : 'Internal';
}

export function isKind(err: unknown, kind: ErrorKind): boolean {
  return err instanceof BerthError && err.kind === kind;
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Node's system errors carry a string code (ENOENT, EEXIST, ...). */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
