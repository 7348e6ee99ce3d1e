/**
 * `npm start`: the relay's Function URL handler (the one lambda/handler.ts exports in Lambda)
 * behind the local Function URL emulator, with an embedded DynamoDB (dynalite, persisted under
 * RELAY_DATA_DIR) as its key store unless RELAY_KEYS_TABLE names a real table.
 *
 * SIGTERM / SIGINT: stop accepting, let calls in flight finish and record their usage (up to
 * RELAY_SHUTDOWN_TIMEOUT_MS), close the store, exit 0. A second signal exits at once.
 */
import { resolve } from 'node:path';
import { DataDirLockedError } from '../store/embedded.js';
import { makeStdoutAsync } from './async-stdout.js';
import { checkAwsCredentials } from './credentials-check.js';
import { resolveLocalMasterKey } from './master-key-file.js';
import { startLocalServer, type LocalServer } from './server.js';
import { resolveLocalSigningSecret } from './sigv4-secret-file.js';

// Per-call log lines and metrics leave through the thread pool, not a blocking write each.
const stdout = makeStdoutAsync();
const dataDir = resolve(process.env.RELAY_DATA_DIR || '.relay');
const master = resolveLocalMasterKey(process.env, dataDir);
// Keys' AWS secret access keys are derived from this (lambda/keys/aws-credentials.ts).
const env: Record<string, string | undefined> = {
  ...process.env,
  RELAY_MASTER_KEY: master.key,
  RELAY_SIGV4_SECRET: resolveLocalSigningSecret(process.env, dataDir),
};

let local: LocalServer;
try {
  local = await startLocalServer({ env, dataDir });
} catch (error) {
  if (error instanceof DataDirLockedError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  throw error;
}

const keyNote =
  master.source === 'env'
    ? 'master key: from RELAY_MASTER_KEY / LITELLM_MASTER_KEY'
    : master.source === 'generated'
      ? `master key (generated, saved 0600 in ${master.file}): ${master.key}`
      : `master key (from ${master.file}): ${master.key}`;
process.stdout.write(
  [
    `bedrock-relay listening on ${local.url} (HTTP/1.1 and h2c)`,
    keyNote,
    `key store: ${local.embedded ? `embedded DynamoDB in ${dataDir} (table ${local.keysTable})` : `DynamoDB table ${local.keysTable}`}`,
    `Bedrock region: ${env.RELAY_BEDROCK_REGION || env.AWS_REGION || env.AWS_REGION_NAME || env.AWS_DEFAULT_REGION || 'us-east-1'}`,
    'try:',
    `  curl -s ${local.url}/bedrock/model/amazon.nova-micro-v1:0/converse -H "Authorization: Bearer $RELAY_KEY" -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}'`,
    `  (RELAY_KEY=${master.source === 'env' ? '<your master key>' : master.key})`,
    '',
  ].join('\n'),
);

// Not awaited: the provider chain may probe instance metadata for a few seconds, and the server
// is already useful (admin API, health) without credentials.
void checkAwsCredentials(env).then((problem) => {
  if (problem) process.stdout.write(`${problem}\n`);
});

let stopping = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (stopping) {
    process.stderr.write(`${signal} again: exiting now, calls in flight are cut\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  stopping = true;
  const { inFlight } = local.emulator.stats();
  process.stdout.write(
    `${signal}: stopping; ${inFlight} call(s) in flight get up to ${local.emulator.limits.shutdownGraceMs} ms to finish (${signal} again to exit now)\n`,
  );
  local.stop().then(
    ({ unfinished }) => {
      process.stdout.write(unfinished > 0 ? `stopped; ${unfinished} call(s) were cut at the deadline\n` : 'stopped\n');
      void stdout.flush().then(() => process.exit(0));
    },
    (error: unknown) => {
      process.stderr.write(`shutdown failed: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
