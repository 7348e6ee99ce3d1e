/** What a CLI command may touch: injected so tests can run commands in-process too. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export type CliCommand = (args: readonly string[], io: CliIo) => Promise<number>;

/** Exit codes: scripts can tell "you asked wrong" from "the answer is no" from "cannot reach the store". */
export const EXIT = {
  ok: 0,
  /** The operation was refused: unknown key, invalid field, duplicate alias (the API's 4xx). */
  refused: 1,
  /** Bad command line. */
  usage: 2,
  /** The store could not be reached or opened. */
  unavailable: 3,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
  };
}
