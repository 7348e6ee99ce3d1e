import { anyModelAllowed } from '../models/ids.js';
import type { RouteSpec } from '../routes/table.js';

/**
 * Discovery answers (ListInferenceProfiles, ListFoundationModels, mantle's model lists) list
 * only what the key may call, so clients such as Claude Code pick a model the key can use.
 * This is the one place the relay rewrites a response body: a model-scoped key must not learn
 * of, or be steered to, models it cannot call. Keys without a model list, error answers and
 * bodies that are not the expected JSON pass through unchanged.
 */
export function filterDiscoveryAnswer(
  discovery: NonNullable<RouteSpec['discovery']>,
  allowedModels: readonly string[] | undefined,
  status: number,
  body: Buffer,
): Buffer {
  if (!allowedModels || allowedModels.length === 0 || status < 200 || status >= 300) return body;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return body;
  }
  const allowed = (id: unknown) => typeof id === 'string' && anyModelAllowed(allowedModels, id);
  switch (discovery) {
    case 'list-inference-profiles':
      return keep(parsed, 'inferenceProfileSummaries', (p) => allowed(p.inferenceProfileId) || allowed(p.inferenceProfileArn));
    case 'list-foundation-models':
      return keep(parsed, 'modelSummaries', (m) => allowed(m.modelId));
    case 'list-mantle-models':
      return keep(parsed, 'data', (m) => allowed(m.id));
    default:
      // Get* calls are checked against the allow-list before they go upstream.
      return body;
  }
}

function keep(parsed: Record<string, unknown>, field: string, predicate: (item: Record<string, unknown>) => boolean): Buffer {
  const items = parsed[field];
  if (!Array.isArray(items)) return Buffer.from(JSON.stringify(parsed));
  const filtered = items.filter(
    (item): item is Record<string, unknown> => typeof item === 'object' && item !== null && predicate(item as Record<string, unknown>),
  );
  return Buffer.from(JSON.stringify({ ...parsed, [field]: filtered }));
}
