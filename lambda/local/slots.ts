/**
 * A counting semaphore with a FIFO queue: at most `capacity` holders, the rest wait in order.
 * The emulator holds one per invocation, from the handler's start until its usage is written.
 */
export class Slots {
  private held = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly capacity: number) {}

  get waiting(): number {
    return this.queue.length;
  }

  acquire(): Promise<void> | undefined {
    if (this.held < this.capacity) {
      this.held++;
      return undefined;
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.held--;
  }
}
