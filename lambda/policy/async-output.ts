import { ENV } from '../contract.js';
import { RelayError } from '../http/errors.js';
import type { AdmissionControl } from '../pipeline.js';

/**
 * StartAsyncInvoke makes Bedrock write the result into S3 with the caller's permissions, so the
 * execution role needs s3:PutObject on the output bucket. The stack grants it only on the buckets a
 * deployer names (`-c asyncOutputBuckets=…`, passed as RELAY_ASYNC_OUTPUT_BUCKETS); any other bucket
 * would fail inside Bedrock after the job was accepted, so the relay refuses up front and says how
 * to enable it. `buckets` undefined (the local server, running with the caller's own credentials)
 * checks nothing.
 */
export function guardAsyncOutput(admission: AdmissionControl, buckets: readonly string[] | undefined): AdmissionControl {
  if (buckets === undefined) return admission;
  const allowed = new Set(buckets);
  return {
    admit: async (call) => {
      if (call.match.route.operation === 'StartAsyncInvoke') {
        const bucket = outputBucket(call.request.body, call.document?.json);
        if (allowed.size === 0) {
          throw new RelayError(
            403,
            'AccessDeniedException',
            'StartAsyncInvoke writes its output to S3, and this relay was deployed without an output bucket. ' +
              `Redeploy with \`npx cdk deploy -c asyncOutputBuckets=<bucket>\` (sets ${ENV.asyncOutputBuckets} and grants s3:PutObject there).`,
          );
        }
        if (bucket === undefined || !allowed.has(bucket)) {
          throw new RelayError(
            403,
            'AccessDeniedException',
            `StartAsyncInvoke may write only to ${[...allowed].map((b) => `s3://${b}/`).join(', ')} (the relay's asyncOutputBuckets); ` +
              `outputDataConfig.s3OutputDataConfig.s3Uri names ${bucket === undefined ? 'no bucket' : `s3://${bucket}/`}.`,
          );
        }
      }
      return admission.admit(call);
    },
  };
}

/**
 * The bucket of outputDataConfig.s3OutputDataConfig.s3Uri, or undefined when the body has none.
 * `json` is the call's parsed body (CallContext.document.json) when the relay core parsed it.
 */
export function outputBucket(body: Buffer, json?: unknown): string | undefined {
  try {
    const parsed = (json ?? JSON.parse(body.toString('utf8'))) as { outputDataConfig?: { s3OutputDataConfig?: { s3Uri?: unknown } } } | null;
    const uri = parsed?.outputDataConfig?.s3OutputDataConfig?.s3Uri;
    if (typeof uri !== 'string') return undefined;
    return /^s3:\/\/([^/]+)/.exec(uri)?.[1];
  } catch {
    return undefined;
  }
}
