/**
 * Acknowledgements of cdk-nag (AwsSolutionsChecks) findings that are deliberate, each with its reason.
 * cdk-nag v3 uses CDK's `Validations.of(construct).acknowledge()` and needs one acknowledgement per
 * finding; IAM5 findings are named after the wildcard resource exactly as cdk-nag prints it, which
 * {@link nagResourceName} reproduces, so only the wildcards this stack really grants are acknowledged.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function acknowledge(construct: IConstruct, id: string, reason: string): void {
  Validations.of(construct).acknowledge({ id, reason });
}

/** Acknowledges AwsSolutions-IAM5 for each wildcard resource in `resources`. */
export function acknowledgeWildcardResources(construct: IConstruct, resources: readonly string[], reason: string): void {
  const stack = Stack.of(construct);
  for (const resource of resources) {
    const name = nagResourceName(stack.resolve(resource));
    if (name.includes('*')) acknowledge(construct, `AwsSolutions-IAM5[Resource::${name}]`, reason);
  }
}

/**
 * A resolved CloudFormation value as cdk-nag names it in findings: Fn::Join concatenated,
 * `{Ref: X}` as `<X>`, `{Fn::GetAtt: [R, A]}` as `<R.A>`.
 */
export function nagResourceName(value: unknown): string {
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (value !== null && typeof value === 'object') {
    const node = value as Record<string, unknown>;
    const join = node['Fn::Join'];
    if (Array.isArray(join)) {
      const [delimiter, parts] = join as [string, unknown[]];
      return parts.map(nagResourceName).join(delimiter);
    }
    if ('Fn::Sub' in node) return nagResourceName(node['Fn::Sub']);
    const getAtt = node['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${nagResourceName(getAtt[0])}.${nagResourceName(getAtt[1])}>`;
    if ('Ref' in node) return `<${nagResourceName(node.Ref)}>`;
  }
  return JSON.stringify(value);
}
