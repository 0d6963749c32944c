#pragma once

namespace r1r::cli {

// `r1r eval --benchmark vl-rewardbench|multimodal-rewardbench|mm-rlhf-rewardbench --data FILE --images DIR
// [--votes K] [--seed S] [--limit N] [--concurrency C] [--target host:port] [--json]`: reads the benchmark
// with common/eval, shows every pair to r1r-serve in a seeded random order (label remapped), and prints
// the benchmark's metrics as a table (one JSON object with --json). Rows whose image is missing (and
// MM-RLHF video rows) are counted and left out of the scores.
int EvalCommand(int argc, char** argv);

}  // namespace r1r::cli
