/**
 * The service tier a call asks Bedrock for, and the refusal of tiers the relay cannot charge.
 *
 * Where a client asks for a tier (every spelling is read; the body is a parsed JSON copy):
 *   header `x-amzn-bedrock-service-tier: priority`   InvokeModel / InvokeModelWithResponseStream
 *                                                    (the SDK's `serviceTier` input is bound to it)
 *   body `"serviceTier": {"type": "priority"}`       Converse / ConverseStream (Smithy ServiceTier)
 *   body `"service_tier": "priority"`                OpenAI chat completions / responses, Anthropic
 *                                                    Messages, and Bedrock's documented parameter
 * Values: Bedrock's `priority | default | flex | reserved`; OpenAI's `auto` and Anthropic's `auto` /
 * `standard_only` are read as `default` (Bedrock has no account-level tier setting for `auto` to
 * pick up: "By default all requests are routed to through standard inference",
 * docs.aws.amazon.com/bedrock/latest/userguide/service-tiers-inference.html). Case and
 * surrounding blanks are ignored. Anything else is kept as an unrecognised tier: no price covers
 * it, and Bedrock decides whether it is valid.
 *
 * When a call names several tiers (header and body, say), the dearest one is the call's tier, so
 * that a budget never under-charges: unrecognised > priority > default = reserved > flex.
 *
 * Bedrock reports the tier that served a call (InvokeModel response header, Converse body,
 * ConverseStream metadata event); the relay charges the requested tier, which for a priority call
 * served at standard over-charges rather than under-charges.
 */
import { RelayError } from '../http/errors.js';
import type { KeyRecord } from '../keys/types.js';
import type { CallContext } from '../pipeline.js';
import type { PriceFn } from '../pricing/book.js';
import { isStandardTier, type ServiceTier } from '../pricing/tiers.js';

export const SERVICE_TIER_HEADER = 'x-amzn-bedrock-service-tier';

export type TierSource = 'header' | 'body.serviceTier' | 'body.service_tier';

export interface RequestedTier {
  /** The tier the call is charged at: a ServiceTier, or `unrecognised`. `default` when none was asked for. */
  readonly tier: ServiceTier | 'unrecognised';
  /** Where it was asked for (absent: nowhere, Bedrock's default). */
  readonly source?: TierSource;
  /** The value as the client sent it (printable, at most 64 characters). */
  readonly raw?: string;
}

export const DEFAULT_TIER: RequestedTier = { tier: 'default' };

const SYNONYMS: Readonly<Record<string, ServiceTier>> = {
  default: 'default',
  standard: 'default',
  auto: 'default',
  standard_only: 'default',
  priority: 'priority',
  flex: 'flex',
  reserved: 'reserved',
};

const RANK: Readonly<Record<RequestedTier['tier'], number>> = { flex: 0, default: 1, reserved: 1, priority: 2, unrecognised: 3 };

/**
 * The tier asked for by a call's headers (lower-cased names, as RelayRequest has them) and its
 * parsed JSON body (anything else, e.g. undefined for a body that is not JSON, names no tier).
 * Pure: no I/O, no clock.
 */
export function detectServiceTier(headers: Readonly<Record<string, string>>, body: unknown): RequestedTier {
  const found: RequestedTier[] = [];
  const header = headers[SERVICE_TIER_HEADER];
  if (header !== undefined) found.push(classify(header, 'header'));
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const record = body as Record<string, unknown>;
    if (Object.hasOwn(record, 'serviceTier') && record.serviceTier !== null) {
      const value = record.serviceTier;
      // The Smithy shape is a structure {type}; a bare string is read the same way.
      const type = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>).type : value;
      found.push(classify(type, 'body.serviceTier'));
    }
    if (Object.hasOwn(record, 'service_tier') && record.service_tier !== null) found.push(classify(record.service_tier, 'body.service_tier'));
  }
  let chosen: RequestedTier = DEFAULT_TIER;
  for (const tier of found) if (chosen === DEFAULT_TIER || RANK[tier.tier] > RANK[chosen.tier]) chosen = tier;
  return chosen;
}

function classify(value: unknown, source: TierSource): RequestedTier {
  if (typeof value !== 'string') return { tier: 'unrecognised', source, raw: printable(JSON.stringify(value) ?? String(value)) };
  const tier = SYNONYMS[value.trim().toLowerCase()];
  return tier ? { tier, source, raw: printable(value) } : { tier: 'unrecognised', source, raw: printable(value) };
}

function printable(value: string): string {
  const clean = value.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 61)}...` : clean;
}

/** A JSON request body, parsed (undefined when empty or not JSON). */
export function parseJsonBody(body: Buffer): unknown {
  if (body.byteLength === 0) return undefined;
  const first = body.find((byte) => byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d);
  // Only objects can name a tier; skip parsing binary and non-object bodies.
  if (first !== 0x7b) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

const byCall = new WeakMap<CallContext, RequestedTier>();

/** The tier of a call, detected once per call (admission and settle read the same answer). */
export function serviceTierOf(call: CallContext): RequestedTier {
  let tier = byCall.get(call);
  if (!tier) {
    tier = detectServiceTier(call.request.headers, call.document ? call.document.json : parseJsonBody(call.request.body));
    byCall.set(call, tier);
  }
  return tier;
}

/** The tier argument for the price function: undefined for standard calls. */
export function pricedTierOf(call: CallContext): string | undefined {
  const { tier } = serviceTierOf(call);
  return isStandardTier(tier) ? undefined : tier;
}

/** Keys whose spend or tokens are limited must be charged correctly: max_budget, tpm_limit, model_tpm_limit. */
export function tierGuarded(record: Pick<KeyRecord, 'max_budget' | 'tpm_limit' | 'model_tpm_limit'>): boolean {
  return record.max_budget != null || record.tpm_limit != null || (record.model_tpm_limit != null && Object.keys(record.model_tpm_limit).length > 0);
}

const ZERO_USAGE = { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 };

/**
 * Refuses, before anything goes upstream, a call by a budgeted or tpm-limited key that asks for
 * a tier the price table cannot charge for its model: 400 ValidationException for a tier value
 * the relay does not know, 403 AccessDeniedException for a known tier without a price (the key's
 * policy, not the request, is what stands in the way). Other keys may use any tier: their calls
 * are priced where a price is known and flagged unpriced otherwise.
 */
export function refuseUnpricedServiceTier(record: Pick<KeyRecord, 'max_budget' | 'tpm_limit' | 'model_tpm_limit'>, call: CallContext, price: PriceFn): void {
  const requested = serviceTierOf(call);
  if (isStandardTier(requested.tier) || !tierGuarded(record)) return;
  const where =
    requested.source === 'header'
      ? `the ${SERVICE_TIER_HEADER} header`
      : `the request body's ${requested.source === 'body.serviceTier' ? 'serviceTier' : 'service_tier'}`;
  if (requested.tier === 'unrecognised') {
    throw new RelayError(
      400,
      'ValidationException',
      `Unknown service tier "${requested.raw}" in ${where}: this API key has a budget or token limit, so the relay accepts only priority, default, flex or reserved.`,
    );
  }
  if (price([call.model], ZERO_USAGE, requested.tier).priced) return;
  const model = call.model === undefined ? 'this call' : `model ${printable(call.model)}`;
  throw new RelayError(
    403,
    'AccessDeniedException',
    `This API key has a budget or token limit, and the relay has no price for the ${requested.tier} service tier of ${model}, so it cannot charge the call. Use the default tier, or ask the relay's admin to price the tier.`,
  );
}
