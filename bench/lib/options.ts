import { Command, InvalidArgumentError, Option } from 'commander';
import type { StepTiming } from './steps.js';

/**
 * Benchmark options, parsed once, with commander (the CLI's library): each benchmark declares its
 * options as a spec (help, default, parser); `--help` and the errors come from commander, and the
 * result is typed by the spec. Option `fooBar` is `--foo-bar` on the command line.
 */

export interface Opt<T> {
  help: string;
  default: T;
  /** Absent for a boolean flag (default false). */
  parse?: (text: string) => T;
}

type Values<S> = { [K in keyof S]: S[K] extends Opt<infer T> ? T : never };

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const shown = (value: unknown) => (Array.isArray(value) ? value.join(',') : String(value));

/** Parses this process's arguments for `command` against `spec` (exits on --help or a bad option). */
export function parseOptions<S extends Record<string, Opt<unknown>>>(command: string, about: string, spec: S, footer = ''): Values<S> {
  const program = new Command(command).description(about).allowExcessArguments(false);
  for (const [name, opt] of Object.entries(spec)) {
    const parse = opt.parse;
    program.addOption(parse ? new Option(`--${kebab(name)} <value>`, opt.help).argParser((text: string) => parse(text)).default(opt.default, shown(opt.default)) : new Option(`--${kebab(name)}`, opt.help));
  }
  if (footer) program.addHelpText('after', `\n${footer}`);
  program.parse(process.argv);
  const values = program.opts();
  // A flag not given is off (a commander default would print "(default: false)" in the help).
  for (const [name, opt] of Object.entries(spec)) if (!opt.parse) values[name] ??= false;
  return values as Values<S>;
}

/** A problem across options (each option's own checks are its parser's): the message, exit code 2. */
export function usageError(message: string): never {
  console.error(`error: ${message}`);
  process.exit(2);
}

export function int(min: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`an integer >= ${min} expected`);
    return n;
  };
}

export function positive(text: string): number {
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError('a positive number expected');
  return n;
}

/** Comma-separated values, each parsed by `item`. */
export function list<T>(item: (text: string) => T): (text: string) => T[] {
  return (text) => text.split(',').map((part) => item(part.trim()));
}

/** One of `allowed`. */
export function oneOf<C extends string>(...allowed: C[]): (text: string) => C {
  return (text) => {
    if (!(allowed as string[]).includes(text)) throw new InvalidArgumentError(`one of ${allowed.join(', ')} expected`);
    return text as C;
  };
}

/** The warm-up / measured / drain seconds of every stepped benchmark. */
export function timingOptions(defaults: { warmup: number; step: number; drain: number }) {
  return {
    warmup: { help: 'warm-up seconds per step, not measured', default: defaults.warmup, parse: positive },
    step: { help: 'measured seconds per step', default: defaults.step, parse: positive },
    drain: { help: 'longest wait in seconds for stragglers after a step', default: defaults.drain, parse: positive },
  };
}

export function timingOf(o: { warmup: number; step: number; drain: number }): StepTiming {
  return { warmupS: o.warmup, stepS: o.step, drainS: o.drain };
}

/** Re-runs of steps disturbed by other load on the machine, shared by the whole run. */
export function retriesOption(defaultRetries: number) {
  return { retries: { help: 're-runs allowed for steps disturbed by other load on the machine', default: defaultRetries, parse: int(0) } };
}
