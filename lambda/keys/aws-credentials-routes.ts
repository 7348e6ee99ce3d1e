import type { AdminRoute } from './admin.js';
import type { AwsCredentialDeriver } from './aws-credentials.js';

/**
 * GET /key/master/aws-credentials → the master key's AWS pair. Behind the admin API's master-key
 * check like every /key/* route: whoever holds the master key may have its pair (nothing about
 * the pair is stored; it is derived from the master key and the signing secret).
 */
export function awsCredentialAdminRoutes(deriver: AwsCredentialDeriver, masterKey: () => Promise<string>): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: /^\/key\/master\/aws-credentials$/,
      handle: async () => ({ ...(await deriver.masterPair(await masterKey())) }),
    },
  ];
}
