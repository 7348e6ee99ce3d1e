/**
 * Every recipe the README shows lives in docs/examples and is run here, as written, against
 * the relay and the fake Bedrock; the README must contain each file verbatim.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { rawRequest } from '../support/clients.js';
import {
  FAKE_REPLY_CHUNKS,
  expectedAnthropicUsage,
  expectedOpenAIResponsesUsage,
  parseSse,
  startFakeBedrock,
  type FakeBedrock,
} from '../support/fake-bedrock.js';
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
    const dynamo = await startEmbeddedDynamo();
    const keyed = await startRelay({ env: { RELAY_KEYS_TABLE: dynamo.tableName }, overrides: { dynamo: dynamo.clients } });
    try {
      assert.ok(README.includes(recipeText('keys-admin.sh')), 'README shows docs/examples/keys-admin.sh verbatim');
      const { stdout } = await runRecipe('keys-admin.sh', { RELAY_URL: keyed.url, RELAY_MASTER_KEY: TEST_MASTER_KEY });
      const answers = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
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

describe('README "Clients" recipes, with a virtual key', () => {
  // Runtime and mantle fakes verify the signing name per host; the key is a virtual one, issued
  // through the admin API, so these runs go through the key store, policy and ledger as in use.
  let runtime: FakeBedrock;
  let mantle: FakeBedrock;
  let dynamo: EmbeddedDynamo;
  let keyed: RelayUnderTest;
  let key: string;
  before(async () => {
    runtime = await startFakeBedrock();
    mantle = await startFakeBedrock({ signingService: 'bedrock-mantle' });
    dynamo = await startEmbeddedDynamo();
    keyed = await startRelay({
      fake: runtime,
      env: { RELAY_KEYS_TABLE: dynamo.tableName, AWS_ENDPOINT_URL_BEDROCK_MANTLE: mantle.url, POWERTOOLS_METRICS_DISABLED: 'true' },
      overrides: { dynamo: dynamo.clients },
    });
    const created = await rawRequest(
      keyed.url,
      'POST',
      '/key/generate',
      { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' },
      JSON.stringify({ key_alias: 'readme-clients' }),
    );
    key = (JSON.parse(created.body.toString('utf8')) as { key: string }).key;
  });
  after(async () => {
    await keyed.close();
    await dynamo.stop();
    await runtime.close();
    await mantle.close();
  });
  beforeEach(() => {
    runtime.reset();
    mantle.reset();
  });
  // The ledger settles a call after its last byte reached the client, so a recipe can exit
  // first: wait until every invocation has ended (each ends once its call is recorded), before
  // the next test or the store stops.
  let callsSoFar = 0;
  afterEach(async () => {
    callsSoFar += runtime.requests.length + mantle.requests.length;
    await keyed.idle();
    const usage = await rawRequest(keyed.url, 'GET', '/key/usage?key_alias=readme-clients', { authorization: `Bearer ${TEST_MASTER_KEY}` });
    const totals = (JSON.parse(usage.body.toString('utf8')) as { totals?: { requests?: number } }).totals;
    assert.ok((totals?.requests ?? 0) >= callsSoFar, `the ledger records ${callsSoFar} calls (has ${totals?.requests ?? 0})`);
  });

  const clientEnv = () => ({ RELAY_URL: keyed.url, RELAY_KEY: key });
  const REPLY = FAKE_REPLY_CHUNKS.join('');

  /** The one call the recipe made reached `fake` as `path`, signed for its host, without the key. */
  function reachedOnce(fake: FakeBedrock, other: FakeBedrock, path: string, service: string) {
    assert.equal(other.requests.length, 0, 'nothing went to the other host');
    assert.deepEqual(
      fake.requests.map((r) => r.path),
      [path],
    );
    const request = fake.requests[0]!;
    assert.ok(request.signature.valid && request.signature.service === service, JSON.stringify(request.signature));
    assert.ok(!request.rawHeaders.join('\n').includes(key) && !request.body.includes(key), 'the virtual key stays at the relay');
    return request;
  }

  it('the Anthropic SDK (streamed, key as authToken)', async () => {
    assertDocumented('anthropic-sdk.mjs');
    const { stdout } = await runRecipe('anthropic-sdk.mjs', clientEnv());
    const [text, usage] = stdout.trim().split('\n');
    assert.equal(text, REPLY);
    const request = reachedOnce(runtime, mantle, '/anthropic/v1/messages', 'bedrock');
    assert.equal((JSON.parse(usage!) as { input_tokens: number }).input_tokens, expectedAnthropicUsage(request.body).input_tokens);
  });

  it('the OpenAI SDK on bedrock-runtime (streamed chat completion)', async () => {
    assertDocumented('openai-sdk.mjs');
    const { stdout } = await runRecipe('openai-sdk.mjs', clientEnv());
    assert.equal(stdout.trim(), REPLY);
    reachedOnce(runtime, mantle, '/openai/v1/chat/completions', 'bedrock');
  });

  it('the OpenAI SDK on bedrock-mantle (Responses API)', async () => {
    assertDocumented('openai-sdk-mantle.mjs');
    const { stdout } = await runRecipe('openai-sdk-mantle.mjs', clientEnv());
    const [text, usage] = stdout.trim().split('\n');
    assert.equal(text, REPLY);
    const request = reachedOnce(mantle, runtime, '/v1/responses', 'bedrock-mantle');
    assert.equal((JSON.parse(usage!) as { input_tokens: number }).input_tokens, expectedOpenAIResponsesUsage(request.body).input_tokens);
  });

  it('an OpenAI-compatible tool configured by OPENAI_BASE_URL and OPENAI_API_KEY alone', async () => {
    assertDocumented('openai-compatible-env.sh');
    assertDocumented('openai-env.mjs');
    // Set to nonsense so that only what the recipe exports can make it work.
    const noise = { OPENAI_BASE_URL: 'http://127.0.0.1:9/nowhere', OPENAI_API_KEY: 'sk-not-this-one', OPENAI_MODEL: '' };
    const { stdout } = await runRecipe('openai-compatible-env.sh', { ...clientEnv(), ...noise });
    assert.equal(stdout.trim(), REPLY);
    reachedOnce(runtime, mantle, '/openai/v1/chat/completions', 'bedrock');

    // The recipe's other base URL, bedrock-mantle (whose gpt-oss IDs carry no version).
    runtime.reset();
    const viaMantle = await runRecipe('openai-env.mjs', {
      OPENAI_BASE_URL: `${keyed.url}/bedrock-mantle/v1`,
      OPENAI_API_KEY: key,
      OPENAI_MODEL: 'openai.gpt-oss-120b',
    });
    assert.equal(viaMantle.stdout.trim(), REPLY);
    const request = reachedOnce(mantle, runtime, '/v1/chat/completions', 'bedrock-mantle');
    assert.equal(JSON.parse(request.body.toString('utf8')).model, 'openai.gpt-oss-120b');
  });

  it('the AWS SDK configured by AWS_ENDPOINT_URL_BEDROCK_RUNTIME and AWS_BEARER_TOKEN_BEDROCK alone', async () => {
    assertDocumented('aws-sdk-env.sh');
    assertDocumented('aws-sdk-env.mjs');
    // AWS credentials in the environment must not win over the relay key.
    const { stdout } = await runRecipe('aws-sdk-env.sh', { ...clientEnv(), AWS_ACCESS_KEY_ID: 'AKIANOTUSED', AWS_SECRET_ACCESS_KEY: 'not-used' });
    assert.equal(stdout.trim(), REPLY);
    reachedOnce(runtime, mantle, '/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse-stream', 'bedrock');
  });

  it('curl: Anthropic Messages, streamed (SSE printed as it arrives)', async () => {
    assertDocumented('curl-anthropic-stream.sh');
    const { stdout } = await runRecipe('curl-anthropic-stream.sh', clientEnv());
    const events = parseSse(stdout);
    const text = events
      .map((e) => e.json as { type?: string; delta?: { type?: string; text?: string } } | undefined)
      .filter((e) => e?.type === 'content_block_delta' && e.delta?.type === 'text_delta')
      .map((e) => e!.delta!.text)
      .join('');
    assert.equal(text, REPLY);
    assert.equal(events.at(-1)?.event, 'message_stop');
    reachedOnce(runtime, mantle, '/anthropic/v1/messages', 'bedrock');
  });

  it('the Claude Code env blocks are documented (test/e2e/claude-code.test.ts runs them with Claude Code)', () => {
    assertDocumented('claude-code-bedrock.sh');
    assertDocumented('claude-code-mantle.sh');
  });
});

/**
 * Each recipe must appear in the README's "Clients" section verbatim.
 */
function assertDocumented(file: string): void {
  const text = recipeText(file);
  assert.ok(README.includes(text), `README shows docs/examples/${file} verbatim`);
}
