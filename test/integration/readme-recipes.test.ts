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
