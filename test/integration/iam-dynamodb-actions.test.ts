/**
 * The stack grants the function exactly KEYS_TABLE_ACTIONS on its table
 * (lib/constructs/keys-table.ts). A DynamoDB command the code sends without a grant works here
 * (dynalite checks no permissions) and fails in AWS with AccessDenied: so every command the
 * relay sends while it does everything it does — keys created, listed, changed, rotated and
 * deleted, budgeted and limited calls, reports — must be among the granted actions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KEYS_TABLE_ACTIONS } from '../../lib/constructs/keys-table.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { admin, call, createKey, settled, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({ fake, store });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

describe('DynamoDB permissions', () => {
  it('every command the relay sends is granted by the stack', async () => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'grant me' }] }], inferenceConfig: { maxTokens: 50 } });
    const { key, token } = await createKey(relay.url, {
      key_alias: 'iam-all',
      max_budget: 5,
      budget_duration: '1d',
      rpm_limit: 100,
      tpm_limit: 100_000,
      max_parallel_requests: 5,
    });
    assert.equal((await call(relay.url, key, `/bedrock/model/${HAIKU}/converse`, body)).status, 200);
    assert.equal((await call(relay.url, key, `/bedrock/model/${HAIKU}/converse-stream`, body)).status, 200);
    await settled(relay, 'iam-all', 2);
    for (const [method, path, payload] of [
      ['GET', '/key/list?return_full_object=true', undefined],
      ['GET', `/key/info?key=${token}`, undefined],
      ['GET', `/key/usage?key=${token}`, undefined],
      ['POST', '/key/update', { key: token, max_budget: 6 }],
      ['POST', '/key/block', { key: token }],
      ['POST', '/key/unblock', { key: token }],
      ['POST', '/key/regenerate', { key: token }],
      ['POST', '/key/delete', { key_aliases: ['iam-all'] }],
    ] as const) {
      const answer = await admin(relay.url, method, path, payload);
      assert.equal(answer.status, 200, `${method} ${path}: ${JSON.stringify(answer.json)}`);
    }
    const sent = new Set(relay.dynamo.calls.map((c) => `dynamodb:${c.command}`));
    assert.ok(sent.has('dynamodb:BatchGetItem') && sent.has('dynamodb:Query'), `the exercise reached the listing: ${[...sent]}`);
    const granted = new Set<string>(KEYS_TABLE_ACTIONS);
    assert.deepEqual(
      [...sent].filter((action) => !granted.has(action)),
      [],
      'sent but not granted',
    );
  });
});
