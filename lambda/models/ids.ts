/**
 * Model identifiers as Bedrock accepts them, normalised so that policy and pricing compare the
 * model itself, not its spelling.
 *
 * Spellings of one model that clients send:
 *   anthropic.claude-3-haiku-20240307-v1:0                      plain foundation-model ID
 *   us.anthropic.claude-3-haiku-20240307-v1:0                    cross-region inference profile
 *   arn:aws:bedrock:us-east-1::foundation-model/anthropic.…      foundation-model ARN
 *   arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.…
 *   anthropic.claude-opus-4-7                                    bedrock-mantle ID (no version)
 * Opaque identifiers (application inference profiles, provisioned or custom models, imported
 * models) name no public model: they compare only by their full ARN.
 */

/** Geography prefixes of system-defined cross-region inference profiles. */
export const PROFILE_PREFIXES: readonly string[] = ['us', 'eu', 'apac', 'global', 'jp', 'au', 'ca', 'us-gov'];

export interface NormalizedModel {
  /** The identifier as given, lower-cased and with an ARN reduced to its resource ID. */
  readonly id: string;
  /** The foundation model without any inference-profile prefix, e.g. `anthropic.claude-3-haiku-20240307-v1:0`. */
  readonly base: string;
  /** The base without its version suffix (`-v1:0`, `-v1`, `:0`, `-1:0`), e.g. `anthropic.claude-3-haiku-20240307`. */
  readonly family: string;
  /**
   * The family without a release date (`-20240307`), e.g. `anthropic.claude-3-haiku`: how
   * bedrock-mantle names the model.
   */
  readonly undated: string;
  /** Whether the base carries a version suffix or a release date. */
  readonly versioned: boolean;
  /** The geography of a cross-region inference profile (`us`, `eu`…), if it is one. */
  readonly profilePrefix?: string;
  /** True for identifiers that name no public model (application inference profiles, provisioned models…). */
  readonly opaque: boolean;
}

const ARN = /^arn:aws[a-z-]*:bedrock:[a-z0-9-]*:\d{0,12}:([a-z-]+)\/(.+)$/;
// `-v1:0`, `-v1`, `:0`, and `-1:0` (gpt-oss on bedrock-runtime: `openai.gpt-oss-120b-1:0`, which
// bedrock-mantle calls `openai.gpt-oss-120b`). A bare `-1` is not a version: `claude-haiku-4-5`.
const VERSION_SUFFIX = /(-v\d+(:\d+)?|-\d+:\d+|:\d+)$/;
// Anthropic's model IDs on bedrock-runtime carry a release date (`claude-haiku-4-5-20251001`)
// that the mantle spelling (`claude-haiku-4-5`) leaves out.
const RELEASE_DATE = /-\d{8}$/;

export function normalizeModelId(raw: string): NormalizedModel {
  const lowered = raw.trim().toLowerCase();
  const arn = ARN.exec(lowered);
  if (arn) {
    const [, resourceType, resourceId] = arn;
    if (resourceType === 'foundation-model' || resourceType === 'inference-profile') {
      return fromPlainId(resourceId!);
    }
    return opaque(lowered);
  }
  if (lowered.startsWith('arn:')) return opaque(lowered);
  return fromPlainId(lowered);
}

function fromPlainId(id: string): NormalizedModel {
  const dot = id.indexOf('.');
  const head = dot > 0 ? id.slice(0, dot) : '';
  const profilePrefix = PROFILE_PREFIXES.includes(head) && id.indexOf('.', dot + 1) > 0 ? head : undefined;
  const base = profilePrefix ? id.slice(dot + 1) : id;
  const family = base.replace(VERSION_SUFFIX, '');
  const undated = family.replace(RELEASE_DATE, '');
  return { id, base, family, undated, versioned: undated !== base, profilePrefix, opaque: false };
}

function opaque(id: string): NormalizedModel {
  return { id, base: id, family: id, undated: id, versioned: false, opaque: true };
}

/**
 * Does an allow-list entry admit this model?
 *
 * - `*` admits everything.
 * - A plain entry (`anthropic.claude-3-haiku-20240307-v1:0`) admits that model under every
 *   inference-profile geography; an entry without a version (`anthropic.claude-opus-4-7`, the
 *   bedrock-mantle spelling) admits every version of it, and a versioned entry admits the
 *   unversioned mantle spelling of the same model.
 * - An entry with a geography (`us.anthropic.…`) admits only that profile.
 * - `*` inside an entry is a wildcard over the rest of the ID (`anthropic.claude-*`).
 * - ARNs are reduced to the model or profile they name; opaque ARNs match only themselves.
 */
export function modelAllowed(entry: string, requested: NormalizedModel | string): boolean {
  const model = typeof requested === 'string' ? normalizeModelId(requested) : requested;
  const trimmed = entry.trim().toLowerCase();
  if (trimmed === '*') return true;
  const allowed = normalizeModelId(trimmed);
  if (allowed.opaque || model.opaque) return allowed.opaque && model.opaque && allowed.id === model.id;
  if (allowed.profilePrefix !== undefined && allowed.profilePrefix !== model.profilePrefix) return false;
  if (allowed.base.includes('*')) return globMatches(allowed.base, model.base);
  if (allowed.base === model.base) return true;
  // Only when one side names no version may the families stand in for each other.
  return (!allowed.versioned || !model.versioned) && allowed.undated === model.undated;
}

export function anyModelAllowed(entries: readonly string[] | undefined, requested: string): boolean {
  if (!entries || entries.length === 0) return true;
  const model = normalizeModelId(requested);
  return entries.some((entry) => modelAllowed(entry, model));
}

function globMatches(pattern: string, value: string): boolean {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`).test(value);
}
