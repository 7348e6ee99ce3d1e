/**
 * The key store of the in-process Lambda handler, in a process of its own: in AWS the function
 * reaches DynamoDB over the network, so its table's work (dynalite's, here) must not run on the
 * benchmark's event loop, where it would slow the client, the fake and the handler alike.
 * In memory; prints `DYNAMO {"endpoint":…,"tableName":…}` when ready; stops on SIGTERM.
 */
import { startEmbeddedDynamo } from '../../lambda/store/embedded.js';

const store = await startEmbeddedDynamo();
process.stdout.write(`DYNAMO ${JSON.stringify({ endpoint: store.endpoint, tableName: store.tableName })}\n`);
process.once('SIGTERM', () => void store.stop().then(() => process.exit(0)));
