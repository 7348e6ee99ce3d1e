/**
 * The read-only discovery calls of the bedrock control plane, answered from a small fixed
 * catalogue: enough variety (geographies, providers, an application profile, a legacy model)
 * for the relay's filtering to have something to filter.
 */
import type { OperationContext } from './context.js';
import { awsErrorReply, jsonReply, type Reply } from './reply.js';

interface CatalogModel {
  readonly modelId: string;
  readonly modelName: string;
  readonly providerName: string;
  readonly inputModalities: readonly string[];
  readonly outputModalities: readonly string[];
  readonly streaming: boolean;
  readonly inferenceTypes: readonly string[];
  readonly lifecycle: 'ACTIVE' | 'LEGACY';
}

export const FAKE_FOUNDATION_MODELS: readonly CatalogModel[] = [
  model('anthropic.claude-3-haiku-20240307-v1:0', 'Claude 3 Haiku', 'Anthropic', ['TEXT', 'IMAGE'], ['ON_DEMAND'], 'LEGACY'),
  model('anthropic.claude-sonnet-4-5-20250929-v1:0', 'Claude Sonnet 4.5', 'Anthropic', ['TEXT', 'IMAGE'], ['INFERENCE_PROFILE']),
  model('anthropic.claude-haiku-4-5-20251001-v1:0', 'Claude Haiku 4.5', 'Anthropic', ['TEXT', 'IMAGE'], ['INFERENCE_PROFILE']),
  model('anthropic.claude-opus-4-1-20250805-v1:0', 'Claude Opus 4.1', 'Anthropic', ['TEXT', 'IMAGE'], ['INFERENCE_PROFILE']),
  model('meta.llama3-3-70b-instruct-v1:0', 'Llama 3.3 70B Instruct', 'Meta', ['TEXT'], ['INFERENCE_PROFILE']),
  model('cohere.command-r-v1:0', 'Command R', 'Cohere', ['TEXT'], ['ON_DEMAND']),
  model('openai.gpt-oss-120b-1:0', 'gpt-oss-120b', 'OpenAI', ['TEXT'], ['ON_DEMAND']),
  {
    ...model('amazon.titan-embed-text-v2:0', 'Titan Text Embeddings V2', 'Amazon', ['TEXT'], ['ON_DEMAND']),
    outputModalities: ['EMBEDDING'],
    streaming: false,
  },
];

interface CatalogProfile {
  readonly id: string;
  readonly name: string;
  readonly type: 'SYSTEM_DEFINED' | 'APPLICATION';
  /** The foundation model behind the profile. */
  readonly modelId: string;
  /** Regions the profile routes to; `''` stands for the global (region-less) model ARN. */
  readonly regions: readonly string[];
}

const US = ['us-east-1', 'us-east-2', 'us-west-2'];
const EU = ['eu-central-1', 'eu-north-1', 'eu-west-1', 'eu-west-3'];

export const FAKE_INFERENCE_PROFILES: readonly CatalogProfile[] = [
  profile('us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'US Anthropic Claude Sonnet 4.5', US),
  profile('eu.anthropic.claude-sonnet-4-5-20250929-v1:0', 'EU Anthropic Claude Sonnet 4.5', EU),
  profile('global.anthropic.claude-sonnet-4-5-20250929-v1:0', 'Global Anthropic Claude Sonnet 4.5', ['us-east-1', '']),
  profile('us.anthropic.claude-haiku-4-5-20251001-v1:0', 'US Anthropic Claude Haiku 4.5', US),
  profile('eu.anthropic.claude-haiku-4-5-20251001-v1:0', 'EU Anthropic Claude Haiku 4.5', EU),
  profile('global.anthropic.claude-haiku-4-5-20251001-v1:0', 'Global Anthropic Claude Haiku 4.5', ['us-east-1', '']),
  profile('us.anthropic.claude-opus-4-1-20250805-v1:0', 'US Anthropic Claude Opus 4.1', US),
  profile('apac.anthropic.claude-3-haiku-20240307-v1:0', 'APAC Anthropic Claude 3 Haiku', ['ap-northeast-1', 'ap-southeast-2']),
  profile('us.meta.llama3-3-70b-instruct-v1:0', 'US Meta Llama 3.3 70B Instruct', US),
  {
    id: 'fakeapp0001',
    name: 'team-a-sonnet',
    type: 'APPLICATION',
    modelId: 'anthropic.claude-sonnet-4-5-20250929-v1:0',
    regions: ['us-east-1'],
  },
];

const CREATED_AT = '2025-09-29T00:00:00Z';

export function listInferenceProfiles(ctx: OperationContext): Reply {
  const type = ctx.query.get('type');
  const matching = FAKE_INFERENCE_PROFILES.filter((p) => type === null || p.type === type).map((p) => profileJson(p, ctx));
  const { page, nextToken } = paginate(matching, ctx);
  return jsonReply(200, { inferenceProfileSummaries: page, ...(nextToken ? { nextToken } : {}) });
}

export function getInferenceProfile(ctx: OperationContext): Reply {
  const wanted = ctx.params['inferenceProfileIdentifier'] ?? '';
  const found = FAKE_INFERENCE_PROFILES.map((p) => profileJson(p, ctx)).find((p) => p.inferenceProfileId === wanted || p.inferenceProfileArn === wanted);
  return found ? jsonReply(200, found) : awsErrorReply(404, 'ResourceNotFoundException', `Inference profile ${wanted} not found.`);
}

export function listFoundationModels(ctx: OperationContext): Reply {
  const provider = ctx.query.get('byProvider')?.toLowerCase();
  const output = ctx.query.get('byOutputModality');
  const inference = ctx.query.get('byInferenceType');
  const summaries = FAKE_FOUNDATION_MODELS.filter(
    (m) =>
      (provider === undefined || m.providerName.toLowerCase() === provider) &&
      (output === null || m.outputModalities.includes(output)) &&
      (inference === null || m.inferenceTypes.includes(inference)),
  ).map((m) => modelJson(m, ctx));
  return jsonReply(200, { modelSummaries: summaries });
}

export function getFoundationModel(ctx: OperationContext): Reply {
  const wanted = ctx.params['modelIdentifier'] ?? '';
  const found = FAKE_FOUNDATION_MODELS.map((m) => modelJson(m, ctx)).find((m) => m.modelId === wanted || m.modelArn === wanted);
  return found ? jsonReply(200, { modelDetails: found }) : awsErrorReply(404, 'ResourceNotFoundException', `The model ${wanted} does not exist.`);
}

function profileJson(p: CatalogProfile, ctx: OperationContext) {
  const arnType = p.type === 'APPLICATION' ? 'application-inference-profile' : 'inference-profile';
  return {
    inferenceProfileName: p.name,
    description: p.type === 'APPLICATION' ? 'Application inference profile' : `Routes requests to ${p.modelId} across regions.`,
    createdAt: CREATED_AT,
    updatedAt: CREATED_AT,
    inferenceProfileArn: `arn:aws:bedrock:${ctx.region}:${ctx.accountId}:${arnType}/${p.id}`,
    models: p.regions.map((region) => ({ modelArn: `arn:aws:bedrock:${region}::foundation-model/${p.modelId}` })),
    inferenceProfileId: p.id,
    status: 'ACTIVE',
    type: p.type,
  };
}

function modelJson(m: CatalogModel, ctx: OperationContext) {
  return {
    modelArn: `arn:aws:bedrock:${ctx.region}::foundation-model/${m.modelId}`,
    modelId: m.modelId,
    modelName: m.modelName,
    providerName: m.providerName,
    inputModalities: m.inputModalities,
    outputModalities: m.outputModalities,
    responseStreamingSupported: m.streaming,
    customizationsSupported: [],
    inferenceTypesSupported: m.inferenceTypes,
    modelLifecycle: { status: m.lifecycle },
  };
}

/** `maxResults` / `nextToken` as the control plane pages them; the token is an opaque offset. */
function paginate<T>(items: readonly T[], ctx: OperationContext): { page: T[]; nextToken?: string } {
  const max = Number(ctx.query.get('maxResults') ?? items.length) || items.length;
  const start = Number(Buffer.from(ctx.query.get('nextToken') ?? '', 'base64').toString('utf8')) || 0;
  const end = start + max;
  return end < items.length ? { page: items.slice(start, end), nextToken: Buffer.from(String(end)).toString('base64') } : { page: items.slice(start) };
}

function model(
  modelId: string,
  modelName: string,
  providerName: string,
  inputModalities: readonly string[],
  inferenceTypes: readonly string[],
  lifecycle: 'ACTIVE' | 'LEGACY' = 'ACTIVE',
): CatalogModel {
  return { modelId, modelName, providerName, inputModalities, outputModalities: ['TEXT'], streaming: true, inferenceTypes, lifecycle };
}

function profile(id: string, name: string, regions: readonly string[]): CatalogProfile {
  return { id, name, type: 'SYSTEM_DEFINED', modelId: id.slice(id.indexOf('.') + 1), regions };
}
