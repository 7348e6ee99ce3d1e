/**
 * `npm start`: the relay's Function URL handler (the one lambda/handler.ts exports in Lambda)
 * behind the local Function URL emulator, with an embedded DynamoDB (dynalite, persisted under
 * RELAY_DATA_DIR) as its key store unless RELAY_KEYS_TABLE names a real table.
 */
import { resolve } from 'node:path';
import { appFromEnv, type AppOverrides } from '../deps.js';
import { functionUrlHandler } from '../runtime/function-url.js';
import { DataDirLockedError, startEmbeddedDynamo, writeEndpointFile, removeEndpointFile, type EmbeddedDynamo } from '../store/embedded.js';
import { installAwslambdaGlobal, startFunctionUrlEmulator } from './function-url-emulator.js';
import { resolveLocalMasterKey } from './master-key-file.js';
import { resolveLocalSigningSecret } from './sigv4-secret-file.js';

const dataDir = resolve(process.env.RELAY_DATA_DIR || '.relay');
const master = resolveLocalMasterKey(process.env, dataDir);
// Keys' AWS secret access keys are derived from this (lambda/keys/aws-credentials.ts).
const env: Record<string, string | undefined> = { ...process.env, RELAY_MASTER_KEY: master.key, RELAY_SIGV4_SECRET: resolveLocalSigningSecret(process.env, dataDir) };

let embedded: EmbeddedDynamo | undefined;
const overrides: { -readonly [K in keyof AppOverrides]: AppOverrides[K] } = {};
if (!env.RELAY_KEYS_TABLE) {
  try {
    embedded = await startEmbeddedDynamo({ dataDir });
  } catch (error) {
    if (error instanceof DataDirLockedError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  env.RELAY_KEYS_TABLE = embedded.tableName;
  overrides.dynamo = embedded.clients;
}

installAwslambdaGlobal();
const handler = functionUrlHandler(async () => (await appFromEnv(env, overrides)).app);
const server = await startFunctionUrlEmulator({
  handler,
  port: Number(env.PORT || 4000),
  host: env.HOST || '127.0.0.1',
});
// The CLI (`npx relay keys …`) finds the running store and this server through this file, and
// makes key changes through the admin API so that they apply here at once (lambda/cli/local-relay.ts).
if (embedded) await writeEndpointFile(dataDir, embedded, server.url);

const keyNote =
  master.source === 'env'
    ? 'master key: from RELAY_MASTER_KEY / LITELLM_MASTER_KEY'
    : master.source === 'generated'
      ? `master key (generated, saved 0600 in ${master.file}): ${master.key}`
      : `master key (from ${master.file}): ${master.key}`;
process.stdout.write(
  [
    `bedrock-relay listening on ${server.url} (HTTP/1.1 and h2c)`,
    keyNote,
    `key store: ${embedded ? `embedded DynamoDB in ${dataDir} (table ${embedded.tableName})` : `DynamoDB table ${env.RELAY_KEYS_TABLE}`}`,
    `Bedrock region: ${env.RELAY_BEDROCK_REGION || env.AWS_REGION || env.AWS_REGION_NAME || env.AWS_DEFAULT_REGION || 'us-east-1'}`,
    'try:',
    `  curl -s ${server.url}/bedrock/model/amazon.nova-micro-v1:0/converse -H "Authorization: Bearer $RELAY_KEY" -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}'`,
    `  (RELAY_KEY=${master.source === 'env' ? '<your master key>' : master.key})`,
    '',
  ].join('\n'),
);

const stop = async () => {
  await server.close();
  if (embedded) {
    await removeEndpointFile(dataDir);
    await embedded.stop();
  }
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
