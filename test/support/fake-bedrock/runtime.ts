/** bedrock-runtime's native operations. */
import { anthropicMessage, anthropicStreamEvents } from './anthropic.js';
import { isoSeconds, randomId, replyText, stringField, type OperationContext } from './context.js';
import { chunkFrame, eventFrame, padding } from './eventstream.js';
import { eventStreamReply, jsonReply, type Reply } from './reply.js';
import { expectedConverseUsage, expectedCountTokens, expectedGuardrailUnits, expectedInvocationMetrics, FAKE_LATENCY_MS } from './usage.js';

export function converse(ctx: OperationContext): Reply {
  return jsonReply(200, {
    output: { message: { role: 'assistant', content: [{ text: replyText(ctx) }] } },
    stopReason: 'end_turn',
    usage: expectedConverseUsage(ctx.body),
    metrics: { latencyMs: FAKE_LATENCY_MS },
  });
}

export function converseStream(ctx: OperationContext): Reply {
  let seed = 0;
  const event = (type: string, payload: Record<string, unknown>) => eventFrame(type, { ...payload, p: padding(seed++) });
  return eventStreamReply([
    event('messageStart', { role: 'assistant' }),
    ...ctx.replyChunks.map((text) => event('contentBlockDelta', { contentBlockIndex: 0, delta: { text } })),
    event('contentBlockStop', { contentBlockIndex: 0 }),
    event('messageStop', { stopReason: 'end_turn' }),
    event('metadata', { usage: expectedConverseUsage(ctx.body), metrics: { latencyMs: FAKE_LATENCY_MS } }),
  ]);
}

export function invokeModel(ctx: OperationContext): Reply {
  const metrics = expectedInvocationMetrics(ctx.body);
  return jsonReply(200, anthropicMessage(ctx, ctx.params['modelId'] ?? ''), {
    'x-amzn-bedrock-input-token-count': metrics.inputTokenCount,
    'x-amzn-bedrock-output-token-count': metrics.outputTokenCount,
    'x-amzn-bedrock-invocation-latency': metrics.invocationLatency,
    'x-amzn-bedrock-cache-read-input-token-count': metrics.cacheReadInputTokenCount,
    'x-amzn-bedrock-cache-write-input-token-count': metrics.cacheWriteInputTokenCount,
  });
}

export function invokeModelWithResponseStream(ctx: OperationContext): Reply {
  const events = anthropicStreamEvents(ctx, ctx.params['modelId'] ?? '');
  const last = events.length - 1;
  const frames = events.map((event, index) =>
    chunkFrame(index === last ? { ...event, 'amazon-bedrock-invocationMetrics': expectedInvocationMetrics(ctx.body) } : event, index),
  );
  return eventStreamReply(frames, { 'x-amzn-bedrock-content-type': 'application/json' });
}

export function countTokens(ctx: OperationContext): Reply {
  return jsonReply(200, { inputTokens: expectedCountTokens(ctx.body) });
}

export function applyGuardrail(ctx: OperationContext): Reply {
  const units = expectedGuardrailUnits(ctx.body);
  return jsonReply(200, {
    usage: {
      topicPolicyUnits: units,
      contentPolicyUnits: units,
      wordPolicyUnits: units,
      sensitiveInformationPolicyUnits: units,
      sensitiveInformationPolicyFreeUnits: 0,
      contextualGroundingPolicyUnits: 0,
    },
    action: 'NONE',
    outputs: [],
    assessments: [],
    guardrailCoverage: { textCharacters: { guarded: ctx.body.byteLength, total: ctx.body.byteLength } },
  });
}

export function invokeGuardrailChecks(ctx: OperationContext): Reply {
  const textUnits = expectedGuardrailUnits(ctx.body);
  return jsonReply(200, {
    results: {
      contentFilter: {
        results: ['VIOLENCE', 'HATE', 'SEXUAL', 'MISCONDUCT', 'INSULTS'].map((category) => ({ category, severityScore: 0.01 })),
      },
      promptAttack: { results: ['JAILBREAK', 'PROMPT_INJECTION', 'PROMPT_LEAKAGE'].map((category) => ({ category, severityScore: 0.02 })) },
    },
    usage: { contentFilter: { textUnits }, promptAttack: { textUnits } },
  });
}

export function startAsyncInvoke(ctx: OperationContext): Reply {
  return jsonReply(200, { invocationArn: `arn:aws:bedrock:${ctx.region}:${ctx.accountId}:async-invoke/${randomId('', 12).toLowerCase()}` });
}

export function getAsyncInvoke(ctx: OperationContext): Reply {
  return jsonReply(200, asyncInvokeSummary(ctx, ctx.params['invocationArn'] ?? ''));
}

export function listAsyncInvokes(ctx: OperationContext): Reply {
  const arn = (id: string) => `arn:aws:bedrock:${ctx.region}:${ctx.accountId}:async-invoke/${id}`;
  return jsonReply(200, { asyncInvokeSummaries: [asyncInvokeSummary(ctx, arn('fakeasync0001')), asyncInvokeSummary(ctx, arn('fakeasync0002'))] });
}

function asyncInvokeSummary(ctx: OperationContext, invocationArn: string) {
  const modelId = stringField(ctx.json, 'modelId') ?? 'amazon.nova-reel-v1:1';
  const at = isoSeconds(ctx.now);
  return {
    invocationArn,
    modelArn: `arn:aws:bedrock:${ctx.region}::foundation-model/${modelId}`,
    status: 'Completed',
    submitTime: at,
    lastModifiedTime: at,
    endTime: at,
    outputDataConfig: { s3OutputDataConfig: { s3Uri: `s3://fake-bedrock-output/${invocationArn.split('/').pop() ?? 'out'}/` } },
  };
}
