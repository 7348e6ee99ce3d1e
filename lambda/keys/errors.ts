/**
 * Errors of key management, each carrying what LiteLLM's error shape needs
 * ({"error": {"message", "type", "param", "code"}}). Messages never contain a secret.
 */
export type KeyErrorType = 'bad_request_error' | 'auth_error' | 'not_found_error' | 'service_unavailable' | 'internal_server_error';

export class KeyApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: KeyErrorType,
    message: string,
    /** The request field at fault, when there is one. */
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'KeyApiError';
  }
}

export function invalidField(param: string, message: string): KeyApiError {
  return new KeyApiError(400, 'bad_request_error', message, param);
}

export function keyNotFound(param: string, what: string): KeyApiError {
  return new KeyApiError(404, 'not_found_error', `Key not found: ${what}.`, param);
}

export function duplicateAlias(alias: string): KeyApiError {
  return new KeyApiError(400, 'bad_request_error', `A key with key_alias "${alias}" already exists; aliases must be unique.`, 'key_alias');
}

// The store layer raises it; key management's callers catch it from here.
export { StoreUnavailableError } from '../store/items.js';
