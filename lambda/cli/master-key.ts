import { parseArgs } from 'node:util';
import { CliError, EXIT, type CliCommand } from './io.js';
import { deployedMasterKey, regionOf } from './stack.js';

export const MASTER_KEY_HELP = `relay master-key --stack NAME [--region R]

Prints the deployed relay's master key (the whole value of the Secrets Manager secret the
stack's MasterKeySecretArn output names), and nothing else:

  export RELAY_MASTER_KEY=$(npx relay master-key --stack BedrockRelay-dev --region us-east-1)

Uses your AWS credentials (cloudformation:DescribeStacks, secretsmanager:GetSecretValue).
--region is where the stack is deployed (default: AWS_REGION, AWS_DEFAULT_REGION, your profile's).

Exit codes: 0 ok, 2 usage (no stack, no region, not a relay stack), 3 AWS could not be read.
`;

export const runMasterKey: CliCommand = async (args, io) => {
  let values: { help?: boolean; stack?: string; region?: string };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: { help: { type: 'boolean', short: 'h' }, stack: { type: 'string' }, region: { type: 'string' } },
      allowPositionals: false,
      strict: true,
    }));
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n\n${MASTER_KEY_HELP}`, EXIT.usage);
  }
  if (values.help) {
    io.stdout(MASTER_KEY_HELP);
    return EXIT.ok;
  }
  if (!values.stack) throw new CliError(`relay master-key: name the stack with --stack NAME.\n\n${MASTER_KEY_HELP}`, EXIT.usage);
  // The key goes to stdout only, alone on its line, for $(…); every message goes to stderr.
  io.stdout(`${await deployedMasterKey(values.stack, regionOf(values.region, io.env))}\n`);
  return EXIT.ok;
};
