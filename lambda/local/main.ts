/**
 * `npm start`: the Lambda handler behind the local Function URL emulator, with the master key
 * from the environment or the data dir.
 */
import { resolve } from 'node:path';
import { installAwslambdaGlobal, startFunctionUrlEmulator } from './function-url-emulator.js';
import { resolveLocalMasterKey } from './master-key-file.js';

const env = process.env;
const dataDir = resolve(env.RELAY_DATA_DIR || '.relay');
const master = resolveLocalMasterKey(env, dataDir);
// The handler reads its master key from the environment, exactly as configured in Lambda
// without a secret; set it before the handler module is loaded.
process.env.RELAY_MASTER_KEY = master.key;

installAwslambdaGlobal();
const { handler } = await import('../handler.js');
const server = await startFunctionUrlEmulator({
  handler,
  port: Number(env.PORT || 4000),
  host: env.HOST || '127.0.0.1',
});

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
    `Bedrock region: ${env.RELAY_BEDROCK_REGION || env.AWS_REGION || env.AWS_REGION_NAME || env.AWS_DEFAULT_REGION || 'us-east-1'}`,
    'try:',
    `  curl -s ${server.url}/bedrock/model/amazon.nova-micro-v1:0/converse -H "Authorization: Bearer $RELAY_KEY" -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}'`,
    `  (RELAY_KEY=${master.source === 'env' ? '<your master key>' : master.key})`,
    '',
  ].join('\n'),
);

const stop = async () => {
  await server.close();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
