/**
 * The Lambda entry (lambda/handler.ts, configured from process.env exactly as in AWS) when
 * Secrets Manager fails at cold start: RELAY_MASTER_KEY_SECRET_ARN names the master-key secret
 * and AWS_ENDPOINT_URL_SECRETS_MANAGER points the SDK at a tiny local Secrets Manager that
 * answers 500 until told to recover.
 *
 *   while it fails:   503 ServiceUnavailableException, nothing sent upstream
 *   once it recovers: the next call succeeds (no restart needed: the failed read is not cached)
 *   after that:       the secret is not read again (once per cold start)
 *
 * A process of its own (node --test runs each file in one): the SDK reads the endpoint and the
 * credentials from process.env, which this file sets before the handler is loaded.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { installAwslambdaGlobal, startFunctionUrlEmulator, type RunningEmulator } from '../../lambda/local/function-url-emulator.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { fakeBedrockEnv, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { rawRequest } from '../support/clients.js';

const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bedrock-relay-master-key-AbCdEf';
const MASTER_KEY = 'sk-master-from-secrets-manager-0123456789';
const CONVERSE = '/bedrock/model/amazon.nova-micro-v1:0/converse';
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }] });

interface FakeSecretsManager {
  readonly url: string;
  /** Every GetSecretValue call, in order. */
  readonly calls: { secretId: unknown; signed: boolean }[];
  failing: boolean;
  close(): Promise<void>;
}

/** Just enough of Secrets Manager's JSON 1.1 protocol for GetSecretValue. */
async function startFakeSecretsManager(): Promise<FakeSecretsManager> {
  const state = { failing: true, calls: [] as FakeSecretsManager['calls'] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = req.headers['x-amz-target'];
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { SecretId?: unknown };
      if (target !== 'secretsmanager.GetSecretValue') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'UnknownOperationException', message: String(target) }));
        return;
      }
      state.calls.push({ secretId: input.SecretId, signed: /^AWS4-HMAC-SHA256 /.test(String(req.headers.authorization)) });
      if (state.failing) {
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'InternalServiceError', message: 'simulated outage' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(
        JSON.stringify({
          ARN: SECRET_ARN,
          Name: 'bedrock-relay-master-key',
          SecretString: `${MASTER_KEY}\n`,
          VersionId: 'v1',
          VersionStages: ['AWSCURRENT'],
          CreatedDate: 1_700_000_000,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls: state.calls,
    get failing() {
      return state.failing;
    },
    set failing(value: boolean) {
      state.failing = value;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let fake: FakeBedrock;
let secrets: FakeSecretsManager;
let keyStore: EmbeddedDynamo;
let lambdaUrl: RunningEmulator;

before(async () => {
  fake = await startFakeBedrock();
  secrets = await startFakeSecretsManager();
  keyStore = await startEmbeddedDynamo();
  // What the stack gives the function (lib/relay-stack.ts), with every endpoint local.
  Object.assign(process.env, {
    ...fakeBedrockEnv(fake),
    RELAY_MASTER_KEY_SECRET_ARN: SECRET_ARN,
    RELAY_KEYS_TABLE: keyStore.tableName,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    AWS_ENDPOINT_URL_DYNAMODB: keyStore.endpoint,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  delete process.env.RELAY_MASTER_KEY;
  delete process.env.LITELLM_MASTER_KEY;
  installAwslambdaGlobal();
  // Loaded only now: module scope of the entry runs with the environment above, as at cold start.
  const { handler } = await import('../../lambda/handler.js');
  lambdaUrl = await startFunctionUrlEmulator({ handler });
});

after(async () => {
  await lambdaUrl.close();
  await keyStore.stop();
  await secrets.close();
  await fake.close();
});

describe('Secrets Manager failing at cold start', () => {
  it('fails closed: 503 ServiceUnavailableException, the secret was asked for, nothing upstream', async () => {
    const res = await rawRequest(lambdaUrl.url, 'POST', CONVERSE, { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, BODY);
    assert.equal(res.status, 503, res.body.toString());
    assert.equal(res.headers['x-amzn-errortype'], 'ServiceUnavailableException');
    assert.ok(secrets.calls.length >= 1, 'the handler tried to read the secret');
    for (const call of secrets.calls) {
      assert.equal(call.secretId, SECRET_ARN);
      assert.equal(call.signed, true, 'Secrets Manager is called with SigV4, as in AWS');
    }
    assert.equal(fake.requests.length, 0, 'nothing went to Bedrock');
    assert.ok(!res.body.toString().includes(MASTER_KEY));
  });

  it('stays closed while it keeps failing, and never lets a key through', async () => {
    const before = secrets.calls.length;
    const res = await rawRequest(lambdaUrl.url, 'POST', CONVERSE, { 'x-api-key': MASTER_KEY, 'content-type': 'application/json' }, BODY);
    assert.equal(res.status, 503);
    assert.ok(secrets.calls.length > before, 'a failed read is retried on the next call, not cached');
    assert.equal(fake.requests.length, 0);
  });

  it('recovers on the next call once Secrets Manager answers, without a restart', async () => {
    secrets.failing = false;
    const res = await rawRequest(lambdaUrl.url, 'POST', CONVERSE, { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, BODY);
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(fake.requests.length, 1);
    assert.equal(fake.requests[0]!.signature.valid, true);
    assert.ok(!JSON.stringify(fake.requests[0]!.headers).includes(MASTER_KEY), 'the key never goes upstream');
  });

  it('reads the secret once per cold start, and the secret is what decides', async () => {
    const readsSoFar = secrets.calls.length;
    for (let i = 0; i < 3; i++) {
      const res = await rawRequest(lambdaUrl.url, 'POST', CONVERSE, { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, BODY);
      assert.equal(res.status, 200);
    }
    const wrong = await rawRequest(
      lambdaUrl.url,
      'POST',
      CONVERSE,
      { authorization: 'Bearer sk-not-the-master-key', 'content-type': 'application/json' },
      BODY,
    );
    assert.equal(wrong.status, 401);
    assert.equal(secrets.calls.length, readsSoFar, 'no further GetSecretValue calls');
    assert.equal(fake.requests.length, 4);
  });
});
