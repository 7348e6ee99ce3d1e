/**
 * A key's stored record with nothing set but what a test names: no model, operation or route
 * restrictions, no limits, no spend, not blocked. For unit tests of the code that reads records
 * (policy, cache, limits); the key store builds real ones (lambda/keys/store.ts).
 */
import type { KeyRecord } from '../../lambda/keys/types.js';

export function keyRecord(fields: Partial<KeyRecord> = {}): KeyRecord {
  return {
    token: 'a'.repeat(64),
    key_name: 'sk-...abcd',
    models: [],
    allowed_operations: [],
    allowed_routes: [],
    spend_nanos: 0,
    metadata: {},
    blocked: false,
    created_at: '2030-01-01T00:00:00.000Z',
    updated_at: '2030-01-01T00:00:00.000Z',
    ...fields,
  };
}
