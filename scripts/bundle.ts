/**
 * Builds the Lambda deployment bundle the way the CDK stack does (lib/relay-stack.ts,
 * NodejsFunction `bundling`): esbuild, entry lambda/handler.ts, platform node, target node22,
 * minified, linked source map without sources, every dependency bundled (the AWS SDK
 * included), ESM with a `require` of its own for the CommonJS parts → index.mjs.
 *
 *   npm run build                      # → dist/lambda/index.mjs (+ .map)
 *   node --import tsx scripts/bundle.ts --format=cjs --outdir=/tmp/x
 *
 * `format: 'cjs'` (→ index.js, with a package.json saying "commonjs" beside it) is kept for
 * comparison runs; the stack deploys ESM. Either way the handler string is `index.handler`.
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const LAMBDA_ENTRY = join(PROJECT_ROOT, 'lambda', 'handler.ts');
export const DEFAULT_OUT_DIR = join(PROJECT_ROOT, 'dist', 'lambda');

export type BundleFormat = 'esm' | 'cjs';

/** The stack's default; keep in step with lib/relay-stack.ts (`format: OutputFormat.ESM`). */
export const STACK_FORMAT: BundleFormat = 'esm';

/** Same text as the stack's banner: CommonJS code bundled into ESM still calls require(). */
const ESM_REQUIRE_BANNER = "import { createRequire as __relayCreateRequire } from 'node:module'; const require = __relayCreateRequire(import.meta.url);";

export interface BundleOptions {
  /** Where index.mjs / index.js and its map go (emptied first). Default dist/lambda. */
  readonly outDir?: string;
  readonly format?: BundleFormat;
  readonly entry?: string;
}

export interface BundleResult {
  readonly outDir: string;
  /** The module file the runtime loads (index.mjs or index.js). */
  readonly outFile: string;
  readonly format: BundleFormat;
  /** What Lambda's `Handler` setting is for this bundle. */
  readonly handler: 'index.handler';
  readonly bytes: number;
  readonly warnings: readonly string[];
  readonly buildMs: number;
}

/** The esbuild options NodejsFunction derives from the stack's `bundling` block. */
export function stackBuildOptions(outFile: string, format: BundleFormat, entry: string = LAMBDA_ENTRY): BuildOptions {
  return {
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format,
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    external: [],
    logLevel: 'silent',
    ...(format === 'esm' ? { mainFields: ['module', 'main'], banner: { js: ESM_REQUIRE_BANNER } } : {}),
  };
}

export async function bundleLambda(options: BundleOptions = {}): Promise<BundleResult> {
  const format = options.format ?? STACK_FORMAT;
  const outDir = resolve(options.outDir ?? DEFAULT_OUT_DIR);
  const outFile = join(outDir, format === 'esm' ? 'index.mjs' : 'index.js');
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const started = performance.now();
  const result = await build(stackBuildOptions(outFile, format, options.entry));
  const buildMs = performance.now() - started;
  // index.js is CommonJS only where no package.json with "type": "module" is above it (Lambda's
  // /var/task has none; this project's root has one): say so next to it.
  if (format === 'cjs') await writeFile(join(outDir, 'package.json'), '{ "type": "commonjs" }\n');
  const warnings = result.warnings.map((w) => `${w.location ? `${w.location.file}:${w.location.line}: ` : ''}${w.text}`);
  return { outDir, outFile, format, handler: 'index.handler', bytes: (await stat(outFile)).size, warnings, buildMs };
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const format = arg('format') ?? STACK_FORMAT;
  if (format !== 'esm' && format !== 'cjs') throw new Error(`--format must be esm or cjs, not ${format}`);
  const built = await bundleLambda({ format, outDir: arg('outdir') });
  for (const warning of built.warnings) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(`${built.outFile} (${Math.round(built.bytes / 1024)} KB, ${built.format}, ${Math.round(built.buildMs)} ms); handler ${built.handler}\n`);
}
