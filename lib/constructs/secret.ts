/**
 * A generated secret the function reads at cold start (the master key today; other credentials the
 * relay needs can be added the same way, each granted to the function on its own).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface RelaySecretProps {
  readonly description: string;
  /** Length of the generated SecretString (letters and digits only). */
  readonly length?: number;
}

export class RelaySecret extends Construct {
  readonly secret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: RelaySecretProps) {
    super(scope, id);
    // The whole SecretString is the value (no JSON, no prefix). Retained so a stack update or delete
    // never invalidates it; rotate by putting a new value (see README).
    // "Default" keeps the logical ID independent of this wrapper: see RelayKeysTable.
    this.secret = new secretsmanager.Secret(this, 'Default', {
      description: props.description,
      generateSecretString: { passwordLength: props.length ?? 48, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /**
   * GetSecretValue only: Secret.grantRead would add DescribeSecret, which the relay never calls.
   * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html
   */
  grantRead(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['secretsmanager:GetSecretValue'], resourceArns: [this.secret.secretArn] });
  }
}
