import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';

export interface UnsignedRequest {
  readonly method: string;
  readonly url: URL; // scheme, host, port of the upstream
  readonly path: string; // encoded once, as it goes on the wire
  readonly query: ReadonlyArray<readonly [string, string]>;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export type RequestSigner = (request: UnsignedRequest, signingName: string) => Promise<Record<string, string>>;

/**
 * SigV4 with the Lambda's own credentials. The path is signed as it will be sent; the signer
 * encodes it once more for the canonical request (`uriEscapePath`), which is AWS's rule for
 * every service but S3 and what Bedrock recomputes from the wire. Signers are cached per
 * signing name; credentials are resolved (and refreshed before expiry) by the provider.
 */
export function createSigner(region: string, credentials: AwsCredentialIdentityProvider): RequestSigner {
  const signers = new Map<string, SignatureV4>();
  const signerFor = (service: string): SignatureV4 => {
    let signer = signers.get(service);
    if (!signer) {
      signer = new SignatureV4({ service, region, credentials, sha256: Hash.bind(null, 'sha256'), uriEscapePath: true, applyChecksum: true });
      signers.set(service, signer);
    }
    return signer;
  };
  return async (request, signingName) => {
    const query: Record<string, string | string[]> = {};
    for (const [name, value] of request.query) {
      const existing = query[name];
      query[name] = existing === undefined ? value : Array.isArray(existing) ? [...existing, value] : [existing, value];
    }
    const host = request.url.host;
    const signed = await signerFor(signingName).sign({
      method: request.method,
      protocol: request.url.protocol,
      hostname: request.url.hostname,
      port: request.url.port ? Number(request.url.port) : undefined,
      path: request.path,
      query,
      headers: { ...request.headers, host },
      body: request.body,
    });
    return signed.headers as Record<string, string>;
  };
}
