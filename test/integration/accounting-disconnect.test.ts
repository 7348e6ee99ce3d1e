/**
 * Early disconnects are never free (issue 11, item 4), end to end: the official clients read the
 * whole content and leave before the usage event; the relay aborts the upstream (the fake sees
 * the reset) and still records output tokens, estimated from the content it relayed, and spend.
 * The flags themselves (MeterResult.estimated / inputUnknown) are covered by the unit tests:
 * the ledger does not store them yet, so here the estimate shows as its value, which differs
 * from the fake's exact counts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { estimateOutputTokens } from '../../lambda/metering/usage.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { runtimeClient } from '../support/clients.js';
import { FAKE_REPLY_CHUNKS, expectedAnthropicUsage, expectedConverseUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { admin, createKey, keyItem, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';
import { manualClock } from './keys-harness.js';

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;
const clock = manualClock(Date.parse('2031-03-04T10:00:05.000Z'));

/** What the meter estimates from the fake's reply text (its content deltas). */
const REPLY_ESTIMATE = estimateOutputTokens(
  FAKE_REPLY_CHUNKS.reduce((n, text) => n + Buffer.byteLength(text), 0),
  FAKE_REPLY_CHUNKS.length,
);

before(async () => {
  // Paced, so the client can leave between the last content event and the usage event.
  fake = await startFakeBedrock({ frameDelayMs: 120 });
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({ fake, store, clock });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

function relayCallLine(alias: string): Record<string, unknown> {
  const lines = relay.logs.filter((l) => l.message === 'relay-call' && l.fields.keyAlias === alias);
  assert.equal(lines.length, 1, `one relay-call line for ${alias}`);
  return lines[0]!.fields;
}

describe('a client that leaves after the content, before the usage event', () => {
  it('ConverseStream aborted after messageStop (AWS SDK): output estimated, spend > 0', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'leave-converse' });
    const client = runtimeClient(relay.url, key, undefined, 1);
    const model = 'anthropic.claude-3-haiku-20240307-v1:0';
    const abort = new AbortController();
    const input = { modelId: model, messages: [{ role: 'user' as const, content: [{ text: 'hello there' }] }] };
    const seen: string[] = [];
    let text = '';
    try {
      const response = await client.send(new ConverseStreamCommand(input), { abortSignal: abort.signal });
      for await (const event of response.stream!) {
        const name = Object.keys(event).find((k) => (event as unknown as Record<string, unknown>)[k] !== undefined)!;
        seen.push(name);
        text += event.contentBlockDelta?.delta?.text ?? '';
        if (event.messageStop) {
          abort.abort();
          break;
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    } finally {
      client.destroy();
    }
    assert.equal(text, FAKE_REPLY_CHUNKS.join(''), 'the client read the whole content');
    assert.ok(!seen.includes('metadata'), 'and left before the usage event');
    assert.equal(await fake.requests.at(-1)!.finished, 'client-aborted');
    await relay.relay.idle();

    const exact = expectedConverseUsage(JSON.stringify(input));
    assert.notEqual(exact.outputTokens, REPLY_ESTIMATE, "the fake's exact count differs, so the value shows it is the estimate");
    const item = await keyItem(store, token);
    assert.equal(item.total_requests, 1);
    assert.equal(item.total_output_tokens, REPLY_ESTIMATE, 'output estimated from the content relayed (was 0)');
    assert.ok((item.spend_nanos as number) > 0, 'spend > 0 (was 0)');
    const line = relayCallLine('leave-converse');
    assert.equal(line.clientAborted, true);
    assert.equal(line.outputTokens, REPLY_ESTIMATE);
    // ConverseStream reports input only in its metadata event: the accounting layer charges the
    // call's worst-case input bound instead (the request body's bytes), erring upward.
    const bodyBytes = Buffer.byteLength(fake.requests.at(-1)!.body);
    assert.ok(bodyBytes >= exact.inputTokens);
    assert.equal(line.inputTokens, bodyBytes);
    assert.equal(item.total_input_tokens, bodyBytes);
    assert.equal(item.total_estimated_requests, 1, 'flagged estimated on the key');
    const usage = (await admin(relay.url, 'GET', `/key/usage?key=${token}`)).json as { totals?: { estimated_requests?: number } };
    assert.equal(usage.totals?.estimated_requests, 1, 'and in /key/usage');
  });

  it('Anthropic Messages stream aborted after content_block_stop (Anthropic SDK): input from message_start, output estimated', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'leave-anthropic' });
    const client = new Anthropic({ baseURL: `${relay.url}/bedrock/anthropic`, apiKey: key, maxRetries: 0 });
    const model = 'us.anthropic.claude-opus-4-7';
    const params = { model, max_tokens: 300, messages: [{ role: 'user' as const, content: 'tell me a story' }] };
    const stream = client.messages.stream(params);
    const seen: string[] = [];
    let text = '';
    try {
      for await (const event of stream) {
        seen.push(event.type);
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
        if (event.type === 'content_block_stop') {
          stream.abort();
          break;
        }
      }
    } catch (error) {
      if (!(error instanceof Anthropic.APIUserAbortError)) throw error;
    }
    assert.equal(text, FAKE_REPLY_CHUNKS.join(''), 'the client read the whole content');
    assert.ok(!seen.includes('message_delta'), 'and left before the usage event');
    assert.equal(await fake.requests.at(-1)!.finished, 'client-aborted');
    await relay.relay.idle();

    const exact = expectedAnthropicUsage(JSON.stringify({ ...params, stream: true }));
    assert.notEqual(exact.output_tokens, REPLY_ESTIMATE);
    const item = await keyItem(store, token);
    assert.equal(item.total_input_tokens, exact.input_tokens, 'input tokens from message_start, exact');
    assert.equal(item.total_output_tokens, Math.max(1, REPLY_ESTIMATE), "output estimated from the content (was message_start's 1)");
    assert.ok((item.spend_nanos as number) > 0);
    assert.equal(item.total_estimated_requests, 1);
    assert.equal(relayCallLine('leave-anthropic').clientAborted, true);
  });
});
