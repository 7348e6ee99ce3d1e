/**
 * The key-management errors live with every other error shape in lambda/http/errors.ts; this
 * module keeps the import path the key store, reports and the CLI already use.
 */
export { KeyApiError, StoreUnavailableError, duplicateAlias, invalidField, keyNotFound, type KeyErrorType } from '../http/errors.js';
