/**
 * bedrock-agent-runtime: agents, knowledge bases, flows, sessions. Small, stateless answers in
 * the shapes of the SDK's models (timestamps as ISO-8601 date-time strings, as the model says).
 */
import { randomUUID } from 'node:crypto';
import { isoSeconds, replyText, stringField, type OperationContext } from './context.js';
import { chunkFrame, eventFrame } from './eventstream.js';
import { awsErrorReply, eventStreamReply, jsonReply, type Reply } from './reply.js';

// ── agents ──

// Bedrock's model: sessionId matches [0-9a-zA-Z._:-]+ (and so is always safe in a header).
const SESSION_ID = /^[0-9a-zA-Z._:-]{2,100}$/;

function invalidSessionId(sessionId: string): Reply | undefined {
  return SESSION_ID.test(sessionId)
    ? undefined
    : awsErrorReply(
        400,
        'ValidationException',
        "1 validation error detected: Value at 'sessionId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z._:-]+",
      );
}

export function invokeAgent(ctx: OperationContext): Reply {
  const sessionId = ctx.params['sessionId'] ?? '';
  const invalid = invalidSessionId(sessionId);
  if (invalid) return invalid;
  const memoryId = stringField(ctx.json, 'memoryId');
  return eventStreamReply(
    ctx.replyChunks.map((text) => chunkFrame(text)),
    {
      'x-amzn-bedrock-agent-content-type': 'application/json',
      'x-amz-bedrock-agent-session-id': sessionId,
      ...(memoryId ? { 'x-amz-bedrock-agent-memory-id': memoryId } : {}),
    },
  );
}

export function invokeInlineAgent(ctx: OperationContext): Reply {
  const invalid = invalidSessionId(ctx.params['sessionId'] ?? '');
  if (invalid) return invalid;
  return eventStreamReply(
    ctx.replyChunks.map((text) => chunkFrame(text)),
    { 'x-amzn-bedrock-agent-content-type': 'application/json', 'x-amz-bedrock-agent-session-id': ctx.params['sessionId'] ?? '' },
  );
}

export function getAgentMemory(ctx: OperationContext): Reply {
  const memoryId = ctx.query.get('memoryId') ?? 'fake-memory';
  return jsonReply(200, {
    memoryContents: [
      {
        sessionSummary: {
          memoryId,
          sessionId: 'fake-session-0001',
          sessionStartTime: isoSeconds(ctx.now),
          sessionExpiryTime: isoSeconds(new Date(ctx.now.getTime() + 86_400_000)),
          summaryText: 'The user asked about the weather and was told it was sunny.',
        },
      },
    ],
  });
}

export function deleteAgentMemory(): Reply {
  return jsonReply(202, {});
}

// ── knowledge bases ──

export function retrieve(ctx: OperationContext): Reply {
  return jsonReply(200, { retrievalResults: retrievalResults(ctx.params['knowledgeBaseId'] ?? 'KB') });
}

export function retrieveAndGenerate(ctx: OperationContext): Reply {
  const text = replyText(ctx);
  return jsonReply(200, {
    sessionId: stringField(ctx.json, 'sessionId') ?? randomUUID(),
    output: { text },
    citations: [citation(text)],
  });
}

export function retrieveAndGenerateStream(ctx: OperationContext): Reply {
  const text = replyText(ctx);
  return eventStreamReply([...ctx.replyChunks.map((chunk) => eventFrame('output', { text: chunk })), eventFrame('citation', { citation: citation(text) })], {
    'x-amzn-bedrock-knowledge-base-session-id': stringField(ctx.json, 'sessionId') ?? randomUUID(),
  });
}

export function agenticRetrieveStream(ctx: OperationContext): Reply {
  const results = retrievalResults('KB').map((r) => ({
    content: { text: r.content.text, mimeType: 'text/plain' },
    metadata: r.metadata,
    sourceRetriever: { identifier: 'fake-knowledge-base' },
  }));
  return eventStreamReply([
    eventFrame('traceEvent', {
      id: randomUUID(),
      timestamp: ctx.now.getTime(),
      attributes: { step: 'Retrieval', status: 'SUCCEEDED', message: 'Retrieved 2 results.' },
    }),
    ...ctx.replyChunks.map((text) => eventFrame('responseEvent', { text })),
    eventFrame('result', {
      results,
      generatedResponse: { answer: replyText(ctx), citations: [{ startIndex: 0, endIndex: replyText(ctx).length, references: [{ resultIndex: 0 }] }] },
    }),
  ]);
}

export function rerank(ctx: OperationContext): Reply {
  const sources = Array.isArray(ctx.json['sources']) ? ctx.json['sources'].length : 2;
  // Earlier sources score higher: a stable order tests can predict.
  const results = Array.from({ length: Math.max(1, sources) }, (_, index) => ({ index, relevanceScore: Number((0.9 / (index + 1)).toFixed(4)) }));
  return jsonReply(200, { results });
}

export function generateQuery(): Reply {
  return jsonReply(200, { queries: [{ type: 'REDSHIFT_SQL', sql: 'SELECT COUNT(*) FROM orders;' }] });
}

export function optimizePrompt(ctx: OperationContext): Reply {
  return eventStreamReply([
    eventFrame('analyzePromptEvent', { message: 'The prompt is clear; adding structure.' }),
    eventFrame('optimizedPromptEvent', { optimizedPrompt: { textPrompt: { text: `Answer concisely: ${replyText(ctx)}` } } }),
  ]);
}

export function getDocumentContent(ctx: OperationContext): Reply {
  const documentId = ctx.params['documentId'] ?? 'doc';
  return jsonReply(200, {
    mimeType: 'text/plain',
    presignedUrl: `https://fake-bedrock-documents.s3.${ctx.region}.amazonaws.com/${encodeURIComponent(documentId)}?X-Amz-Expires=300`,
    documentContentLength: 1024,
  });
}

export function checkIngestedDocumentAcl(): Reply {
  return jsonReply(200, { hasAccess: true });
}

export function getIngestedDocumentAcl(): Reply {
  return jsonReply(200, {
    documentAcl: {
      allowList: { memberRelation: 'OR', conditions: [{ conditionOperator: 'OR', users: [{ id: 'user-1', type: 'KNOWLEDGE_BASE' }] }] },
    },
  });
}

// ── flows ──

export function invokeFlow(ctx: OperationContext): Reply {
  return eventStreamReply(
    [
      eventFrame('flowOutputEvent', { nodeName: 'FlowOutputNode', nodeType: 'FlowOutputNode', content: { document: replyText(ctx) } }),
      eventFrame('flowCompletionEvent', { completionReason: 'SUCCESS' }),
    ],
    { 'x-amz-bedrock-flow-execution-id': randomUUID() },
  );
}

export function startFlowExecution(ctx: OperationContext): Reply {
  return jsonReply(200, { executionArn: executionArn(ctx, randomUUID()) });
}

export function getFlowExecution(ctx: OperationContext): Reply {
  return jsonReply(200, {
    executionArn: executionArn(ctx, lastSegment(ctx.params['executionIdentifier'])),
    status: 'Succeeded',
    startedAt: isoSeconds(ctx.now),
    endedAt: isoSeconds(ctx.now),
    flowAliasIdentifier: ctx.params['flowAliasIdentifier'],
    flowIdentifier: ctx.params['flowIdentifier'],
    flowVersion: '1',
  });
}

export function getExecutionFlowSnapshot(ctx: OperationContext): Reply {
  return jsonReply(200, {
    flowIdentifier: ctx.params['flowIdentifier'],
    flowAliasIdentifier: ctx.params['flowAliasIdentifier'],
    flowVersion: '1',
    executionRoleArn: `arn:aws:iam::${ctx.accountId}:role/fake-flow-role`,
    definition: JSON.stringify({
      nodes: [
        { name: 'FlowInputNode', type: 'Input' },
        { name: 'FlowOutputNode', type: 'Output' },
      ],
      connections: [],
    }),
  });
}

export function listFlowExecutionEvents(ctx: OperationContext): Reply {
  const timestamp = isoSeconds(ctx.now);
  return jsonReply(200, {
    flowExecutionEvents: [
      { flowInputEvent: { nodeName: 'FlowInputNode', timestamp, fields: [{ name: 'document', content: { document: 'Hello' } }] } },
      { flowOutputEvent: { nodeName: 'FlowOutputNode', timestamp, fields: [{ name: 'document', content: { document: replyText(ctx) } }] } },
    ],
  });
}

export function stopFlowExecution(ctx: OperationContext): Reply {
  return jsonReply(200, { executionArn: executionArn(ctx, lastSegment(ctx.params['executionIdentifier'])), status: 'Aborted' });
}

export function listFlowExecutions(ctx: OperationContext): Reply {
  const flowIdentifier = ctx.params['flowIdentifier'] ?? '';
  const flowAliasIdentifier = ctx.query.get('flowAliasIdentifier') ?? 'TSTALIASID';
  return jsonReply(200, {
    flowExecutionSummaries: [
      {
        executionArn: executionArn(ctx, 'fake-execution-0001', flowAliasIdentifier),
        flowAliasIdentifier,
        flowIdentifier,
        flowVersion: '1',
        status: 'Succeeded',
        createdAt: isoSeconds(ctx.now),
        endedAt: isoSeconds(ctx.now),
      },
    ],
  });
}

// ── sessions ──

export function createSession(ctx: OperationContext): Reply {
  const sessionId = randomUUID();
  return jsonReply(201, { sessionId, sessionArn: sessionArn(ctx, sessionId), sessionStatus: 'ACTIVE', createdAt: isoSeconds(ctx.now) });
}

export function listSessions(ctx: OperationContext): Reply {
  const sessionId = 'fake-session-0001';
  const at = isoSeconds(ctx.now);
  return jsonReply(200, {
    sessionSummaries: [{ sessionId, sessionArn: sessionArn(ctx, sessionId), sessionStatus: 'ACTIVE', createdAt: at, lastUpdatedAt: at }],
  });
}

export function getSession(ctx: OperationContext): Reply {
  const sessionId = lastSegment(ctx.params['sessionIdentifier']);
  const at = isoSeconds(ctx.now);
  return jsonReply(200, {
    sessionId,
    sessionArn: sessionArn(ctx, sessionId),
    sessionStatus: 'ACTIVE',
    createdAt: at,
    lastUpdatedAt: at,
    sessionMetadata: {},
  });
}

export function updateSession(ctx: OperationContext): Reply {
  const sessionId = lastSegment(ctx.params['sessionIdentifier']);
  const at = isoSeconds(ctx.now);
  return jsonReply(200, { sessionId, sessionArn: sessionArn(ctx, sessionId), sessionStatus: 'ACTIVE', createdAt: at, lastUpdatedAt: at });
}

export function endSession(ctx: OperationContext): Reply {
  const sessionId = lastSegment(ctx.params['sessionIdentifier']);
  return jsonReply(200, { sessionId, sessionArn: sessionArn(ctx, sessionId), sessionStatus: 'ENDED' });
}

export function deleteSession(): Reply {
  return jsonReply(200, {});
}

export function createInvocation(ctx: OperationContext): Reply {
  return jsonReply(201, {
    sessionId: lastSegment(ctx.params['sessionIdentifier']),
    invocationId: stringField(ctx.json, 'invocationId') ?? randomUUID(),
    createdAt: isoSeconds(ctx.now),
  });
}

export function listInvocations(ctx: OperationContext): Reply {
  const sessionId = lastSegment(ctx.params['sessionIdentifier']);
  return jsonReply(200, { invocationSummaries: [{ sessionId, invocationId: 'fake-invocation-0001', createdAt: isoSeconds(ctx.now) }] });
}

export function putInvocationStep(ctx: OperationContext): Reply {
  return jsonReply(201, { invocationStepId: stringField(ctx.json, 'invocationStepId') ?? randomUUID() });
}

export function listInvocationSteps(ctx: OperationContext): Reply {
  return jsonReply(200, {
    invocationStepSummaries: [
      {
        sessionId: lastSegment(ctx.params['sessionIdentifier']),
        invocationId: stringField(ctx.json, 'invocationIdentifier') ?? 'fake-invocation-0001',
        invocationStepId: 'fake-step-0001',
        invocationStepTime: isoSeconds(ctx.now),
      },
    ],
  });
}

export function getInvocationStep(ctx: OperationContext): Reply {
  return jsonReply(200, {
    invocationStep: {
      sessionId: lastSegment(ctx.params['sessionIdentifier']),
      invocationId: stringField(ctx.json, 'invocationIdentifier') ?? 'fake-invocation-0001',
      invocationStepId: ctx.params['invocationStepId'],
      invocationStepTime: isoSeconds(ctx.now),
      payload: { contentBlocks: [{ text: replyText(ctx) }] },
    },
  });
}

// ── tags ──

export function tagResource(): Reply {
  return jsonReply(200, {});
}

export function untagResource(): Reply {
  return jsonReply(200, {});
}

export function listTagsForResource(): Reply {
  return jsonReply(200, { tags: { team: 'fake', 'cost-center': '1234' } });
}

// ── shapes ──

function retrievalResults(knowledgeBaseId: string) {
  return [1, 2].map((n) => ({
    content: { type: 'TEXT', text: `Passage ${n} from knowledge base ${knowledgeBaseId}.` },
    location: { type: 'S3', s3Location: { uri: `s3://fake-knowledge-base/doc-${n}.txt` } },
    score: Number((0.9 - n * 0.1).toFixed(2)),
    metadata: { 'x-amz-bedrock-kb-source-uri': `s3://fake-knowledge-base/doc-${n}.txt`, 'x-amz-bedrock-kb-chunk-id': `chunk-${n}` },
  }));
}

function citation(text: string) {
  return {
    generatedResponsePart: { textResponsePart: { text, span: { start: 0, end: Math.max(0, text.length - 1) } } },
    retrievedReferences: retrievalResults('KB').map(({ content, location, metadata }) => ({ content, location, metadata })),
  };
}

function sessionArn(ctx: OperationContext, sessionId: string): string {
  return `arn:aws:bedrock:${ctx.region}:${ctx.accountId}:session/${sessionId}`;
}

function executionArn(ctx: OperationContext, executionId: string, alias = ctx.params['flowAliasIdentifier'] ?? 'TSTALIASID'): string {
  return `arn:aws:bedrock:${ctx.region}:${ctx.accountId}:flow/${lastSegment(ctx.params['flowIdentifier'])}/alias/${lastSegment(alias)}/execution/${executionId}`;
}

/** Identifiers may be given as ARNs; answers use the bare ID. */
function lastSegment(value: string | undefined): string {
  return (value ?? '').split('/').pop() ?? '';
}
