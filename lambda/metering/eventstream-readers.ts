/** What each event-stream operation reports, and where. */
import { isRecord, type UsageState } from './usage.js';
import { agentTrace, converseUsage, invocationMetrics } from './families.js';
import { bodyIncludes, parseBody, type EventReader } from './eventstream.js';

/** ConverseStream: usage comes once, in the `metadata` event after `messageStop`. */
export function converseStreamReader(): EventReader {
  return {
    events: new Set(['metadata']),
    event(_eventType, body, state) {
      converseUsage(parseBody(body), state);
    },
  };
}

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
      const envelope = parseBody(body);
      if (!isRecord(envelope) || typeof envelope.bytes !== 'string') return;
      try {
        invocationMetrics(JSON.parse(Buffer.from(envelope.bytes, 'base64').toString('utf8')), state);
      } catch {
        // Not JSON: the model's payload is opaque and reports nothing.
      }
    },
  };
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
