/**
 * The one place where Berth's error kinds become HTTP statuses, and the
 * Engine API's error body: {"message": "..."} as application/json exactly.
 */
import { type ErrorKind, errorKind, errorMessage } from '../core/errdefs/index.js';

const STATUS: Record<ErrorKind, number> = {
  NotFound: 404,
  InvalidArgument: 400,
  Conflict: 409,
  AlreadyExists: 409,
  NotModified: 304,
  Unauthorized: 401,
  Forbidden: 403,
  Unavailable: 503,
  NotImplemented: 501,
  Internal: 500,
};

export function httpStatus(err: unknown): number {
  return STATUS[errorKind(err)];
}

export function errorBody(err: unknown): string {
  return JSON.stringify({ message: errorMessage(err) }) + '\n';
}
