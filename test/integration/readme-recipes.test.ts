/**
 * Every recipe the README shows lives in docs/examples and is run here, as written, against
 * the relay and the fake Bedrock; the README must contain each file verbatim.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FAKE_REPLY_CHUNKS } from '../support/fake-bedrock.js';
import { README, recipeText, runRecipe } from '../support/recipes.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';

let relay: RelayUnderTest;
before(async () => {
  relay = await startRelay();
});
after(async () => relay.close());

const env = () => ({ RELAY_URL: relay.url, RELAY_KEY: TEST_MASTER_KEY });

describe('README recipes', () => {
  it('the AWS SDK for JavaScript snippet', async () => {
    assert.ok(README.includes(recipeText('aws-sdk-converse.mjs')), 'README shows docs/examples/aws-sdk-converse.mjs verbatim');
    const { stdout } = await runRecipe('aws-sdk-converse.mjs', env());
    const [text, usage] = stdout.trim().split('\n');
    assert.equal(text, FAKE_REPLY_CHUNKS.join(''));
    assert.ok(JSON.parse(usage!).inputTokens > 0);
  });

  it('curl: converse', async () => {
    assert.ok(README.includes(recipeText('curl-converse.sh')));
    const { stdout } = await runRecipe('curl-converse.sh', env());
    assert.equal(JSON.parse(stdout).output.message.content[0].text, FAKE_REPLY_CHUNKS.join(''));
  });
});

describe('README virtual-key recipes', () => {
  it('every admin call with curl, in order', async () => {
    const { startEmbeddedDynamo } = await import('../../lambda/store/embedded.js');
    const dynamo = await startEmbeddedDynamo();
    const keyed = await startRelay({ env: { RELAY_KEYS_TABLE: dynamo.tableName }, overrides: { dynamo: dynamo.clients } });
    try {
      assert.ok(README.includes(recipeText('keys-admin.sh')), 'README shows docs/examples/keys-admin.sh verbatim');
      const { stdout } = await runRecipe('keys-admin.sh', { RELAY_URL: keyed.url, RELAY_MASTER_KEY: TEST_MASTER_KEY });
      const answers = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.equal(answers.length, 6);
      const [info, list, update, block, unblock, deleted] = answers as Array<Record<string, any>>;
      assert.equal(info!.info.key_alias, 'team-a');
      assert.equal(info!.info.max_budget, 10);
      assert.equal(list!.keys.length, 1);
      assert.deepEqual(update!.allowed_operations, ['Converse', 'ConverseStream']);
      assert.equal(block!.blocked, true);
      assert.equal(unblock!.blocked, false);
      assert.equal(deleted!.deleted_keys.length, 1);
    } finally {
      await keyed.close();
      await dynamo.stop();
    }
  });
});
