#pragma once

namespace r1r::cli {

// `r1r demo`: starts every service as its own process on loopback (judge, reward, learner, two
// actors, orchestrator), submits configs/demo.yaml, shows progress per phase, prints the table of
// held-out accuracy / format / consistency before SFT, after SFT and after RL (+ voting@K), starts
// r1r-serve on the published checkpoint and answers one Compare, then stops every process.
int DemoCommand(int argc, char** argv);

}  // namespace r1r::cli
