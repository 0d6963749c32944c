// One preference pair as every reader in common/data produces it, whatever the file layout.
#pragma once

#include <optional>
#include <string>

namespace r1r::data {

struct PreferenceSample {
  std::string id;
  std::string image_path;  // resolved: relative paths in a file are taken relative to that file's folder
  bool is_video = false;   // MM-RLHF video rows: image_path is a folder of frames
  std::string question;
  std::string response1;
  std::string response2;
  int label = 1;  // which response is better: 1 or 2
  // The teacher's annotation (paper §4.3): attempts until its answer matched the label (0 = unknown),
  // and whether it ever did within its attempts.
  int teacher_attempts = 0;
  bool teacher_solved = true;
  std::optional<std::string> reasoning;  // SFT trace: "<think>...</think><answer>N</answer>"
  std::string source;                    // "r1reward", "mmrlhf", "pairs", "synthetic"
};

}  // namespace r1r::data
