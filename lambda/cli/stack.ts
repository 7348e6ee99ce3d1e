/**
 * What the CLI reads from the deployed stack: its outputs (CloudFormation DescribeStacks) and the
 * master key (Secrets Manager GetSecretValue on the MasterKeySecretArn output), in the region
 * the user names, with the caller's own AWS credentials. The output names are the stack's
 * (lib/relay-stack.ts): KeysTableName, MasterKeySecretArn, MasterKeySecretName.
 */
import { CliError, EXIT, type CliIo } from './io.js';

/** --region, else the SDK's own variables; undefined leaves it to the SDK (a profile's region). */
export function regionOf(flag: string | undefined, env: CliIo['env']): string | undefined {
  return flag || env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
}

const NO_REGION = 'No AWS region: pass --region <region> (where the stack is deployed), or set AWS_REGION.';

/** The SDK's "Region is missing", said so that the user knows what to do. */
function isMissingRegion(error: unknown): boolean {
  return /region is missing/i.test((error as Error)?.message ?? '');
}

interface AwsClient {
  send(command: unknown): Promise<unknown>;
  destroy(): void;
}
interface CloudFormationModule {
  CloudFormationClient: new (config: { region?: string }) => AwsClient;
  DescribeStacksCommand: new (input: { StackName: string }) => unknown;
}
interface SecretsManagerModule {
  SecretsManagerClient: new (config: { region?: string }) => AwsClient;
  GetSecretValueCommand: new (input: { SecretId: string }) => unknown;
}
interface DescribeStacksOutput {
  Stacks?: Array<{ Outputs?: Array<{ OutputKey?: string; OutputValue?: string }> }>;
}

async function load<T>(moduleName: string, what: string): Promise<T> {
  try {
    return (await import(moduleName)) as T;
  } catch {
    throw new CliError(`${what} needs the package ${moduleName} (npm install ${moduleName}).`, EXIT.usage);
  }
}

/** The stack's outputs by name. */
export async function stackOutputs(stack: string, region: string | undefined): Promise<Record<string, string>> {
  // A variable, so bundlers leave the optional dependency alone.
  const moduleName = '@aws-sdk/client-cloudformation';
  const cfn = await load<CloudFormationModule>(moduleName, '--stack');
  const client = new cfn.CloudFormationClient(region ? { region } : {});
  try {
    const output = (await client.send(new cfn.DescribeStacksCommand({ StackName: stack }))) as DescribeStacksOutput;
    const outputs: Record<string, string> = {};
    for (const { OutputKey, OutputValue } of output.Stacks?.[0]?.Outputs ?? []) {
      if (OutputKey && OutputValue !== undefined) outputs[OutputKey] = OutputValue;
    }
    return outputs;
  } catch (error) {
    if (isMissingRegion(error)) throw new CliError(NO_REGION, EXIT.usage);
    throw new CliError(`Could not read stack ${stack}${region ? ` in ${region}` : ''}: ${(error as Error).message}`, EXIT.unavailable);
  } finally {
    client.destroy();
  }
}

/** One output of the stack, or a message naming what is missing. */
export async function stackOutput(stack: string, region: string | undefined, name: string): Promise<string> {
  const value = (await stackOutputs(stack, region))[name];
  if (!value) throw new CliError(`Stack ${stack} has no ${name} output: is it the bedrock-relay stack?`, EXIT.usage);
  return value;
}

/** The deployed master key: the whole SecretString of the secret the stack names. */
export async function deployedMasterKey(stack: string, region: string | undefined): Promise<string> {
  const outputs = await stackOutputs(stack, region);
  const secretId = outputs.MasterKeySecretArn ?? outputs.MasterKeySecretName;
  if (!secretId) throw new CliError(`Stack ${stack} has no MasterKeySecretArn output: is it the bedrock-relay stack?`, EXIT.usage);
  const moduleName = '@aws-sdk/client-secrets-manager';
  const sm = await load<SecretsManagerModule>(moduleName, 'relay master-key');
  const client = new sm.SecretsManagerClient(region ? { region } : {});
  try {
    const secret = (await client.send(new sm.GetSecretValueCommand({ SecretId: secretId }))) as { SecretString?: string };
    const key = secret.SecretString?.trim();
    if (!key) throw new CliError(`The master-key secret of stack ${stack} has no value.`, EXIT.unavailable);
    return key;
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (isMissingRegion(error)) throw new CliError(NO_REGION, EXIT.usage);
    // The SDK's message names the secret and the cause (e.g. AccessDeniedException); never the value.
    throw new CliError(`Could not read the master-key secret of stack ${stack}: ${(error as Error).name}: ${(error as Error).message}`, EXIT.unavailable);
  } finally {
    client.destroy();
  }
}
