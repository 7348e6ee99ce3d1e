/** The part of autocannon's programmatic API the throughput benchmark uses (the package ships no types). */
declare module 'autocannon' {
  export interface Histogram {
    readonly average: number;
    readonly mean: number;
    readonly stddev: number;
    readonly min: number;
    readonly max: number;
    readonly total: number;
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly p97_5: number;
  }

  export interface Options {
    readonly url: string;
    readonly method?: string;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: string | Buffer;
    readonly connections?: number;
    readonly pipelining?: number;
    /** Seconds. */
    readonly duration?: number;
    /** Seconds before a request counts as timed out. */
    readonly timeout?: number;
  }

  export interface Result {
    readonly errors: number;
    readonly timeouts: number;
    readonly non2xx: number;
    readonly resets: number;
    readonly '2xx': number;
    readonly '5xx': number;
    readonly duration: number;
    /** Requests per second, sampled each second. */
    readonly requests: Histogram & { readonly sent: number };
    /** Milliseconds (autocannon records whole milliseconds). */
    readonly latency: Histogram & { readonly totalCount: number };
  }

  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
