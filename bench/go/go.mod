// Benchmark tooling only (built by bench/workloads.ts): a seed-style Go ponger to compare against and
// a neutral load generator that drives either. The product is TypeScript.
module pingpong-bench

go 1.24
