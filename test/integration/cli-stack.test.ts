/**
 * The CLI against a deployed stack, without the aws CLI: `relay master-key` reads the master key
 * from the secret the stack names, and `relay keys --stack` works on the stack's table, each in
 * the region given with --region. AWS is a local stand-in (test/support/fake-aws-stack.ts) that
 * checks SigV4 and holds the stack in one region only; the table is a dynalite.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KeyStore } from '../../lambda/keys/store.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { startFakeStack, type FakeStack } from '../support/fake-aws-stack.js';
import { FAKE_CREDENTIALS } from '../support/fake-bedrock.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'bin', 'relay.mjs');
const STACK = 'BedrockRelay-dev';
const REGION = 'eu-west-3';
const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:123456789012:secret:MasterKey-AbCdEf`;
const MASTER_KEY = 'Qm9vdHN0cmFwTWFzdGVyS2V5MDEyMzQ1Njc4OUFCQ0RFRkdI';
const TABLE = 'BedrockRelay-dev-KeysTable-1A2B3C';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let home: string;
let dynamo: EmbeddedDynamo;
let aws: FakeStack;

function relay(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          // No ambient AWS configuration: no profile, no region, only what the test gives.
          HOME: home,
          AWS_CONFIG_FILE: join(home, 'no-config'),
          AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-credentials'),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.secretAccessKey,
          AWS_SESSION_TOKEN: FAKE_CREDENTIALS.sessionToken,
          AWS_ENDPOINT_URL_CLOUDFORMATION: aws.url,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: aws.url,
          AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
          RELAY_DATA_DIR: join(home, 'unused-local-store'),
          ...env,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

before(async () => {
  home = await mkdtemp(join(tmpdir(), 'relay-cli-stack-'));
  dynamo = await startEmbeddedDynamo({ dataDir: join(home, 'table'), tableName: TABLE });
  aws = await startFakeStack({
    credentials: FAKE_CREDENTIALS,
    region: REGION,
    stackName: STACK,
    outputs: {
      FunctionUrl: 'https://abc.lambda-url.eu-west-3.on.aws/',
      KeysTableName: TABLE,
      MasterKeySecretArn: SECRET_ARN,
      MasterKeySecretName: 'MasterKey-AbCdEf',
    },
    secrets: { [SECRET_ARN]: MASTER_KEY },
  });
});
after(async () => {
  await aws?.close();
  await dynamo?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});
beforeEach(() => {
  aws.calls.length = 0;
});

describe('relay master-key', () => {
  it("prints the master key from the stack's secret, alone on stdout, read in the region given", async () => {
    // AWS_REGION names another region: --region wins.
    const run = await relay(['master-key', '--stack', STACK, '--region', REGION], { AWS_REGION: 'us-east-1' });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${MASTER_KEY}\n`);
    assert.equal(run.stderr, '');
    assert.deepEqual(aws.calls, [
      { service: 'cloudformation', region: REGION, operation: 'DescribeStacks', status: 200 },
      { service: 'secretsmanager', region: REGION, operation: 'GetSecretValue', status: 200 },
    ]);
  });

  it('takes the region from AWS_REGION when there is no --region', async () => {
    const run = await relay(['master-key', '--stack', STACK], { AWS_REGION: REGION });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${MASTER_KEY}\n`);
  });

  it('says what to do when no region is known, the stack is not in that region, or no stack is named', async () => {
    const noRegion = await relay(['master-key', '--stack', STACK]);
    assert.equal(noRegion.code, 2, noRegion.stderr);
    assert.match(noRegion.stderr, /No AWS region: pass --region <region>/);
    assert.equal(aws.calls.length, 0);

    const elsewhere = await relay(['master-key', '--stack', STACK, '--region', 'us-west-2']);
    assert.equal(elsewhere.code, 3);
    assert.match(elsewhere.stderr, /Could not read stack BedrockRelay-dev in us-west-2: Stack with id BedrockRelay-dev does not exist/);
    assert.equal(elsewhere.stdout, '', 'nothing that could pass for a key');

    const noStack = await relay(['master-key', '--region', REGION]);
    assert.equal(noStack.code, 2);
    assert.match(noStack.stderr, /--stack NAME/);
    for (const run of [noRegion, elsewhere, noStack]) assert.ok(!run.stderr.includes(MASTER_KEY));
  });
});

describe('relay keys --stack --region', () => {
  it("manages keys in the stack's table, found in the region given", async () => {
    const created = await relay(['keys', 'create', '--stack', STACK, '--region', REGION, '--alias', 'deployed']);
    assert.equal(created.code, 0, created.stderr);
    const token = (JSON.parse(created.stdout) as { token: string }).token;
    assert.equal((await new KeyStore(dynamo.clients.doc, TABLE).getByAlias('deployed'))?.token, token, "written to the stack's table");
    assert.deepEqual(
      aws.calls.map((c) => [c.operation, c.region]),
      [['DescribeStacks', REGION]],
    );

    const listed = await relay(['keys', 'list', '--stack', STACK, '--region', REGION]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { keys: Array<{ key_alias: string }> }).keys.map((k) => k.key_alias),
      ['deployed'],
    );

    const elsewhere = await relay(['keys', 'list', '--stack', STACK, '--region', 'ap-south-1']);
    assert.equal(elsewhere.code, 3);
    assert.match(elsewhere.stderr, /in ap-south-1: Stack with id BedrockRelay-dev does not exist/);
  });
});
