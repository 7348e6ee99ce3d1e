/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy` (see cdk.json). Configuration comes from CDK
 * context, e.g. `npx cdk deploy -c stage=prod -c bedrockRegions=us-east-1,us-west-2`; every key is
 * described in lib/config.ts and validated before anything is synthesized.
 */
import { App } from 'aws-cdk-lib';
import { addRelayStack } from '../lib/app.js';
import { RelayConfigError } from '../lib/config.js';

const app = new App();
try {
  addRelayStack(app);
} catch (error) {
  // A configuration mistake is the deployer's to fix: say what is wrong, without a stack trace.
  if (!(error instanceof RelayConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();
