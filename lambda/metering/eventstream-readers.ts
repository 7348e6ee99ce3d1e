/** What each event-stream operation reports, and where. */
import { isRecord, type UsageState } from './usage.js';
import { agentTrace, converseUsage, invocationMetrics } from './families.js';
import { converseContent, invokeChunkContent } from './content.js';
import { bodyIncludes, parseBody, type EventReader } from './eventstream.js';

/**
 * ConverseStream: usage comes once, in the `metadata` event after `messageStop`; until then the
 * content deltas feed the estimate (JSON-parsing each, since Bedrock pads every event with a
 * random `p` field that its size must not count).
 */
export function converseStreamReader(): EventReader {
  return {
    events: new Set(['metadata']),
    event(_eventType, body, state) {
      converseUsage(parseBody(body), state);
    },
    estimates: true,
    content: CONVERSE_CONTENT,
    contentEvent(eventType, payload, state) {
      converseContent(eventType, parseBody(payload), state);
    },
  };
}

const CONVERSE_CONTENT: ReadonlySet<string> = new Set(['contentBlockStart', 'contentBlockDelta']);
const CHUNK: ReadonlySet<string> = new Set(['chunk']);

/**
 * InvokeModelWithResponseStream: every `chunk` event carries the model's own JSON, base64-encoded
 * in `{"bytes": …}`; Bedrock adds `amazon-bedrock-invocationMetrics` to the last one. Decoding
 * every chunk would cost a base64 decode and two JSON parses per token, so only the last chunk
 * is decoded (see EventReader.lastOnly).
 */
export function invokeStreamReader(): EventReader {
  return {
    events: new Set(['chunk']),
    lastOnly: true,
    event(_eventType, body, state) {
      const doc = chunkDocument(body);
      if (doc !== undefined) invocationMetrics(doc, state);
    },
    // Each chunk is also read for the estimate (a base64 decode and JSON parse per chunk, about
    // what the ConverseStream estimate costs): without it a Claude stream cut before its last
    // chunk would count 0 output tokens, and its input count (message_start) would be lost too.
    estimates: true,
    content: CHUNK,
    contentEvent(_eventType, payload, state) {
      const doc = chunkDocument(payload);
      if (doc !== undefined) invokeChunkContent(doc, state);
    },
  };
}

/** The model's own JSON inside a chunk event's `{"bytes": base64}`; undefined when it is not JSON. */
function chunkDocument(body: Uint8Array): unknown {
  const envelope = parseBody(body);
  if (!isRecord(envelope) || typeof envelope.bytes !== 'string') return undefined;
  try {
    return JSON.parse(Buffer.from(envelope.bytes, 'base64').toString('utf8'));
  } catch {
    return undefined; // the model's payload is opaque and reports nothing
  }
}

const MODEL_INVOCATION = Buffer.from('modelInvocation');

/**
 * InvokeAgent, InvokeInlineAgent, InvokeFlow: token usage appears only in trace events (when
 * the caller enabled the trace), one report per model invocation.
 */
export function agentTraceReader(): EventReader {
  return {
    events: new Set(['trace', 'flowTraceEvent']),
    event(_eventType, body, state: UsageState) {
      if (bodyIncludes(body, MODEL_INVOCATION)) agentTrace(parseBody(body), state);
    },
  };
}
