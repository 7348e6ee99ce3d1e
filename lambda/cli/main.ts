import { CliError, EXIT, processIo, type CliCommand, type CliIo } from './io.js';
import { runKeys } from './keys.js';
import { runLedger } from './ledger.js';
import { runMasterKey } from './master-key.js';
import { runUsage } from './usage.js';

/**
 * `relay <command> …`. Each command is one entry here; `relay usage` (issue 4) is added the same
 * way, with its module next to keys.ts.
 */
export const COMMANDS: Readonly<Record<string, { readonly summary: string; readonly run: CliCommand }>> = {
  keys: { summary: 'create, list, inspect, change, block, regenerate and delete virtual keys', run: runKeys },
  usage: { summary: 'per-day, per-model tokens, requests and cost of a key', run: runUsage },
  ledger: { summary: 'replay ledger writes the relay logged as failed ("ledger-write-failed")', run: runLedger },
  'master-key': { summary: "print the deployed relay's master key (from its stack's Secrets Manager secret)", run: runMasterKey },
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  return `relay <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nrelay <command> --help shows a command's options.\n`;
}

/** Runs the CLI; returns the exit code (never calls process.exit, so tests can call it). */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.stdout(help());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr(`Unknown command "${name}".\n\n${help()}`);
    return EXIT.usage;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr(`${error.message.trimEnd()}\n`);
      return error.exitCode;
    }
    io.stderr(`relay ${name} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.unavailable;
  }
}
