/**
 * The registry's error vocabulary: the OCI Distribution error codes, and the
 * one place that turns any thrown error into an HTTP status plus the spec's
 * JSON body `{"errors":[{"code","message","detail"}]}`.
 *
 * Registry errors are BerthErrors (the project's one taxonomy) that also carry
 * an OCI code; plain BerthErrors from shared code map by their kind.
 */
import { BerthError, type ErrorKind, errorMessage } from '../core/errdefs/index.js';

export type OciErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  // Not in the OCI table, but sent by CNCF distribution and understood by clients.
  | 'RANGE_INVALID'
  | 'PAGINATION_NUMBER_INVALID'
  | 'UNAVAILABLE'
  | 'UNKNOWN';

interface CodeInfo {
  status: number;
  kind: ErrorKind;
  message: string;
}

/** Status and default message of each code (statuses as CNCF distribution sends them). */
const CODES: Record<OciErrorCode, CodeInfo> = {
  BLOB_UNKNOWN: { status: 404, kind: 'NotFound', message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, kind: 'InvalidArgument', message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, kind: 'NotFound', message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, kind: 'InvalidArgument', message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, kind: 'InvalidArgument', message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, kind: 'InvalidArgument', message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, kind: 'NotFound', message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, kind: 'InvalidArgument', message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, kind: 'NotFound', message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, kind: 'InvalidArgument', message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, kind: 'Unauthorized', message: 'authentication required' },
  DENIED: { status: 403, kind: 'Forbidden', message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, kind: 'NotImplemented', message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, kind: 'Unavailable', message: 'too many requests' },
  RANGE_INVALID: { status: 416, kind: 'InvalidArgument', message: 'invalid content range' },
  PAGINATION_NUMBER_INVALID: { status: 400, kind: 'InvalidArgument', message: 'invalid number of results requested' },
  UNAVAILABLE: { status: 503, kind: 'Unavailable', message: 'service unavailable' },
  UNKNOWN: { status: 500, kind: 'Internal', message: 'unknown error' },
};

/** Kind → code for errors thrown by shared code that knows nothing of OCI. */
const KIND_CODES: Record<ErrorKind, OciErrorCode> = {
  NotFound: 'NAME_UNKNOWN',
  InvalidArgument: 'UNSUPPORTED',
  Conflict: 'UNSUPPORTED',
  AlreadyExists: 'UNSUPPORTED',
  NotModified: 'UNSUPPORTED',
  Unauthorized: 'UNAUTHORIZED',
  Forbidden: 'DENIED',
  Unavailable: 'UNAVAILABLE',
  NotImplemented: 'UNSUPPORTED',
  Internal: 'UNKNOWN',
};

export class RegistryError extends BerthError {
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (the WWW-Authenticate challenge of a 401). */
  readonly headers: Record<string, string>;
  constructor(code: OciErrorCode, message?: string, detail?: unknown, status?: number, headers: Record<string, string> = {}) {
    const info = CODES[code];
    super(info.kind, message ?? info.message);
    this.code = code;
    this.status = status ?? info.status;
    this.detail = detail;
    this.headers = headers;
  }
}

export function ociError(code: OciErrorCode, message?: string, detail?: unknown): RegistryError {
  return new RegistryError(code, message, detail);
}

/** A 413: the spec names the status but no code; distribution sends SIZE_INVALID-like codes, we send MANIFEST_INVALID. */
export function payloadTooLarge(message: string, limit: number): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message, { limit }, 413);
}

export interface HttpError {
  status: number;
  headers: Record<string, string>;
  body: { errors: { code: OciErrorCode; message: string; detail?: unknown }[] };
  /** True when the error came from a bug or the host, not from the request. */
  internal: boolean;
}

/** The one mapping from a thrown value to the HTTP status and OCI error body. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof RegistryError) {
    const entry = { code: err.code, message: err.message, ...(err.detail === undefined ? {} : { detail: err.detail }) };
    return { status: err.status, headers: err.headers, body: { errors: [entry] }, internal: err.status >= 500 };
  }
  if (err instanceof BerthError) {
    const code = KIND_CODES[err.kind];
    return { status: CODES[code].status, headers: {}, body: { errors: [{ code, message: err.message }] }, internal: err.kind === 'Internal' };
  }
  return { status: 500, headers: {}, body: { errors: [{ code: 'UNKNOWN', message: 'internal error: ' + errorMessage(err) }] }, internal: true };
}
