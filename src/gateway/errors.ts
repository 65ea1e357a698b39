import { BackendError } from '../providers/types.js';

/**
 * An error meant for the client, with its HTTP status: raised by the product's rules as well as by the
 * routes, and rendered by the error handler in the format of the surface the request came through.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    /** OpenAI-style `type` and `code`, used on /v1. */
    readonly type?: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function badRequest(message: string): HttpError {
  return new HttpError(400, message, 'invalid_request_error');
}

/** Status for any error that reaches a surface: client faults keep theirs, the rest are 500. */
export function statusOf(error: unknown): number {
  if (error instanceof HttpError || error instanceof BackendError) return error instanceof HttpError ? error.statusCode : error.status;
  const status = (error as { statusCode?: number }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}
