// CLI verbs that run locally, without a server: data synth/check, tokenize.
#pragma once

namespace r1r::cli {

// r1r data synth --out DIR --n N --seed S [--mistake-rate R] [--image-size PX]
// r1r data check --format r1reward|pairs|mmrlhf FILE
int DataCommand(int argc, char** argv);
// r1r tokenize --tokenizer tokenizer.json [--decode] < in.jsonl > out.jsonl
int TokenizeCommand(int argc, char** argv);

}  // namespace r1r::cli
