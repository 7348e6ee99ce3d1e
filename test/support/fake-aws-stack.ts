/**
 * A deployed bedrock-relay stack as the CLI sees it: just enough of CloudFormation (DescribeStacks,
 * AWS query protocol, XML answers) and Secrets Manager (GetSecretValue, JSON 1.1) on one loopback
 * port, for AWS_ENDPOINT_URL_CLOUDFORMATION and AWS_ENDPOINT_URL_SECRETS_MANAGER. Every request
 * must be SigV4-signed, for its service, with the given credentials, and the stack exists in
 * one region only: a request signed for another region finds nothing, as in AWS. That is how a
 * test tells that --region was honoured.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySigV4, type FakeCredentials } from './fake-bedrock/sigv4-verify.js';

export interface FakeStackOptions {
  readonly credentials: FakeCredentials;
  readonly region: string;
  readonly stackName: string;
  readonly outputs: Readonly<Record<string, string>>;
  /** SecretId (ARN or name) → SecretString. */
  readonly secrets: Readonly<Record<string, string>>;
}

export interface FakeStack {
  readonly url: string;
  /** Every request: the service and region it was signed for, the operation, and what it got. */
  readonly calls: Array<{ readonly service: string; readonly region: string; readonly operation: string; readonly status: number }>;
  close(): Promise<void>;
}

export async function startFakeStack(options: FakeStackOptions): Promise<FakeStack> {
  const calls: FakeStack['calls'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const signature = verifySigV4(
        { method: req.method ?? 'GET', rawUrl: req.url ?? '/', rawHeaders: req.rawHeaders, body },
        {
          credentials: options.credentials,
          region: signedRegion(req.headers.authorization) ?? '',
          services: ['cloudformation', 'secretsmanager'],
          now: Date.now(),
        },
      );
      const target = String(req.headers['x-amz-target'] ?? '');
      const answer = (service: string, operation: string, status: number, contentType: string, text: string) => {
        calls.push({ service, region: signature.region ?? '?', operation, status });
        res.writeHead(status, { 'content-type': contentType, 'x-amzn-requestid': `fake-${calls.length}` });
        res.end(text);
      };
      if (!signature.valid) {
        return answer(
          signature.service ?? '?',
          target || 'query',
          403,
          'application/json',
          JSON.stringify({ __type: signature.errorType, message: signature.message }),
        );
      }
      const here = signature.region === options.region;
      if (signature.service === 'secretsmanager') {
        const json = 'application/x-amz-json-1.1';
        if (target !== 'secretsmanager.GetSecretValue')
          return answer('secretsmanager', target, 400, json, JSON.stringify({ __type: 'UnknownOperationException' }));
        const { SecretId } = JSON.parse(body.toString('utf8') || '{}') as { SecretId?: string };
        const value = here && SecretId !== undefined ? options.secrets[SecretId] : undefined;
        if (value === undefined) {
          return answer(
            'secretsmanager',
            'GetSecretValue',
            400,
            json,
            JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }),
          );
        }
        return answer(
          'secretsmanager',
          'GetSecretValue',
          200,
          json,
          JSON.stringify({
            ARN: SecretId,
            Name: 'master-key',
            SecretString: value,
            VersionId: 'v1',
            VersionStages: ['AWSCURRENT'],
            CreatedDate: 1_700_000_000,
          }),
        );
      }
      const form = new URLSearchParams(body.toString('utf8'));
      const xml = 'text/xml';
      if (form.get('Action') !== 'DescribeStacks')
        return answer('cloudformation', String(form.get('Action')), 400, xml, queryError('InvalidAction', 'Unsupported action'));
      const name = form.get('StackName');
      if (!here || name !== options.stackName) {
        return answer('cloudformation', 'DescribeStacks', 400, xml, queryError('ValidationError', `Stack with id ${name} does not exist`));
      }
      const outputs = Object.entries(options.outputs)
        .map(([key, value]) => `<member><OutputKey>${escapeXml(key)}</OutputKey><OutputValue>${escapeXml(value)}</OutputValue></member>`)
        .join('');
      return answer(
        'cloudformation',
        'DescribeStacks',
        200,
        xml,
        `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
          `<StackName>${escapeXml(options.stackName)}</StackName><StackId>arn:aws:cloudformation:${options.region}:123456789012:stack/${escapeXml(options.stackName)}/1</StackId>` +
          `<CreationTime>2026-01-01T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus><Outputs>${outputs}</Outputs>` +
          `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></DescribeStacksResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The region in the credential scope, so the signature is checked against the region it claims. */
function signedRegion(authorization: string | undefined): string | undefined {
  return /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(authorization ?? '')?.[1];
}

function queryError(code: string, message: string): string {
  return `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>fake</RequestId></ErrorResponse>`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
