/**
 * The few Prometheus metrics the ponger and the pinger export, in the text exposition format 0.0.4:
 * counters (with labels), one histogram, and the process metrics prom-client's defaults would give
 * them under the same names (CPU, resident memory, start time, V8 heap).
 *
 * Why not prom-client, which the operator uses: loading it cost a pod about 12 MiB of resident
 * memory (it also loads OpenTelemetry, the cluster module and a Pushgateway client), a quarter of
 * what a workload is allowed (`npm run bench -- workloads`). What the workloads need is this file.
 */

export interface MetricsSource {
  readonly contentType: string;
  metrics(): string | Promise<string>;
}

type Labels<L extends string> = Readonly<Record<L, string>>;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const pairs = names.map((name, i) => `${name}="${escapeLabelValue(values[i] ?? "")}"`);
  if (extra !== "") pairs.push(extra);
  return pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
}

interface Metric {
  render(): string;
}

export class Counter<L extends string = never> implements Metric {
  private readonly series = new Map<string, { values: string[]; count: number }>();
  private readonly name: string;
  private readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly unlabelled: { values: string[]; count: number } | undefined;

  constructor(name: string, help: string, labelNames: readonly L[] = []) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    // An unlabelled counter is exported as 0 from the start, as Prometheus clients do.
    if (labelNames.length === 0) {
      this.unlabelled = { values: [], count: 0 };
      this.series.set("", this.unlabelled);
    }
  }

  inc(...args: [L] extends [never] ? [amount?: number] : [labels: Labels<L>, amount?: number]): void {
    const [first, second] = args as [Labels<L> | number | undefined, number | undefined];
    const labels = typeof first === "object" ? first : undefined;
    const amount = (typeof first === "number" ? first : second) ?? 1;
    if (this.unlabelled) {
      // The ponger counts every request: no key to build.
      this.unlabelled.count += amount;
      return;
    }
    const values = this.labelNames.map((name) => labels?.[name] ?? "");
    const key = values.join("\u0000");
    const entry = this.series.get(key);
    if (entry) entry.count += amount;
    else this.series.set(key, { values, count: amount });
  }

  /** Forgets one labelled series, e.g. of a pod that is gone. */
  remove(labels: Labels<L>): void {
    this.series.delete(this.labelNames.map((name) => labels[name]).join("\u0000"));
  }

  render(): string {
    let text = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} counter\n`;
    for (const { values, count } of this.series.values()) {
      text += `${this.name}${labelText(this.labelNames, values)} ${formatValue(count)}\n`;
    }
    return text;
  }
}

export class Histogram implements Metric {
  private readonly name: string;
  private readonly help: string;
  private readonly buckets: readonly number[];
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.buckets = buckets;
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] ?? Infinity)) {
        this.counts[i] = (this.counts[i] ?? 0) + 1;
        break;
      }
    }
  }

  render(): string {
    let text = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} histogram\n`;
    let cumulative = 0;
    this.buckets.forEach((bound, i) => {
      cumulative += this.counts[i] ?? 0;
      text += `${this.name}_bucket{le="${formatValue(bound)}"} ${cumulative}\n`;
    });
    text += `${this.name}_bucket{le="+Inf"} ${this.count}\n`;
    text += `${this.name}_sum ${formatValue(this.sum)}\n${this.name}_count ${this.count}\n`;
    return text;
  }
}

/** A value read when scraped. */
class Sampled implements Metric {
  private readonly name: string;
  private readonly help: string;
  private readonly type: "gauge" | "counter";
  private readonly read: () => number;

  constructor(name: string, help: string, type: "gauge" | "counter", read: () => number) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.read = read;
  }

  render(): string {
    const text = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    return `${text}${this.name} ${formatValue(this.read())}\n`;
  }
}

export class MetricsRegistry implements MetricsSource {
  readonly contentType = "text/plain; version=0.0.4; charset=utf-8";
  private readonly all: Metric[] = [];

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.add(new Counter<L>(name, help, labelNames));
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }

  gauge(name: string, help: string, read: () => number): void {
    this.add(new Sampled(name, help, "gauge", read));
  }

  /** The process metrics prom-client's default collector exports, under the same names. */
  withProcessMetrics(): this {
    const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
    const cpu = () => process.cpuUsage();
    this.add(
      new Sampled(
        "process_cpu_user_seconds_total",
        "Total user CPU time spent in seconds.",
        "counter",
        () => cpu().user / 1e6,
      ),
    );
    this.add(
      new Sampled(
        "process_cpu_system_seconds_total",
        "Total system CPU time spent in seconds.",
        "counter",
        () => cpu().system / 1e6,
      ),
    );
    this.add(
      new Sampled(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        "counter",
        () => {
          const { user, system } = cpu();
          return (user + system) / 1e6;
        },
      ),
    );
    this.gauge(
      "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.",
      () => startSeconds,
    );
    this.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", () =>
      process.memoryUsage.rss(),
    );
    this.gauge(
      "nodejs_heap_size_total_bytes",
      "Process heap size from Node.js in bytes.",
      () => process.memoryUsage().heapTotal,
    );
    this.gauge(
      "nodejs_heap_size_used_bytes",
      "Process heap size used from Node.js in bytes.",
      () => process.memoryUsage().heapUsed,
    );
    this.gauge(
      "nodejs_external_memory_bytes",
      "Node.js external memory size in bytes.",
      () => process.memoryUsage().external,
    );
    return this;
  }

  metrics(): string {
    return this.all.map((metric) => metric.render()).join("");
  }

  private add<M extends Metric>(metric: M): M {
    this.all.push(metric);
    return metric;
  }
}
