/**
 * Builds the relay's CDK app: used by bin/app.ts (`npx cdk synth|deploy`) and by test/infra, so the
 * tests synthesize exactly what a deploy would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validations, type App, type Environment } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readRelayContext, resolveRelayConfig, type RelayConfigInput } from './config.js';
import { PROJECT_ROOT, RelayStack } from './relay-stack.js';

export interface RelayAppOptions {
  /** Overrides for context values (tests use this; deployers use `-c key=value` or cdk.json). */
  readonly config?: RelayConfigInput;
  /**
   * Target account/region. Default: none, an environment-agnostic template. The CLI's
   * CDK_DEFAULT_REGION is deliberately not used: offline (no credentials, as in CI) it falls back to
   * us-east-1, which would then be pinned into IAM ARNs and the Bedrock region. Agnostic, the
   * region is AWS::Region at deploy time and AWS_REGION at run time, wherever the template goes.
   */
  readonly env?: Environment;
  /** Run cdk-nag's AWS Solutions checks at synth (default true). */
  readonly nag?: boolean;
}

/** The stack name for a stage: `BedrockRelay-<stage>`, so stages never collide. */
export function relayStackName(stage: string): string {
  return `BedrockRelay-${stage}`;
}

export function addRelayStack(app: App, options: RelayAppOptions = {}): RelayStack {
  // Resolve once here only to learn the stage for the stack name; the stack validates everything.
  const { stage } = resolveRelayConfig(
    options.config,
    readRelayContext((key) => app.node.tryGetContext(key)),
  );
  const stack = new RelayStack(app, relayStackName(stage), {
    config: options.config,
    env: options.env,
    description: `bedrock-relay (${stage}): native-format Amazon Bedrock gateway with virtual keys`,
  });
  if (options.nag ?? true) Validations.of(stack).addPlugins(new AwsSolutionsChecks(stack, { verbose: true }));
  return stack;
}

/**
 * The context in cdk.json (feature flags and defaults). The CLI merges it into every synth; tests
 * that build an App themselves merge it too, so they synthesize what `npx cdk synth` would.
 */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return { ...cdkJson.context };
}
