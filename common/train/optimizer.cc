#include "common/train/optimizer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <absl/strings/str_cat.h>
#include <nlohmann/json.hpp>

#include "common/dist/process_group.h"
#include "common/train/grad_bucket_reducer.h"

namespace r1r::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "r1r-sharded-adamw-1";
constexpr int64_t kStepChunk = int64_t{1} << 26;  // elements per AdamW chunk (256 MiB of fp32)

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::string ShardName(int index, int count) { return absl::StrCat("shard-", index, "-of-", count, ".pt"); }

}  // namespace

ShardedAdamW::~ShardedAdamW() { ReleaseParamGrads(); }

absl::StatusOr<std::unique_ptr<ShardedAdamW>> ShardedAdamW::Create(std::vector<at::Tensor> params,
                                                                   const ShardedAdamWOptions& options,
                                                                   dist::ProcessGroup* group) {
  if (options.zero_stage < 0 || options.zero_stage > 2) {
    return absl::InvalidArgumentError(absl::StrCat("zero_stage must be 0, 1 or 2, got ", options.zero_stage));
  }
  if (params.empty()) return absl::InvalidArgumentError("the optimizer has no trainable parameters");
  const at::ScalarType dtype = params[0].scalar_type();
  const at::Device device = params[0].device();
  if (dtype != at::kFloat && dtype != at::kBFloat16) {
    return absl::InvalidArgumentError("the optimizer takes float32 or bfloat16 parameters");
  }
  for (const auto& p : params) {
    if (p.scalar_type() != dtype || p.device() != device) {
      return absl::InvalidArgumentError("all trainable parameters must share one dtype and device");
    }
  }
  std::unique_ptr<ShardedAdamW> o(new ShardedAdamW());
  o->options_ = options;
  o->group_ = group;
  o->rank_ = group ? group->rank() : 0;
  o->world_ = group ? group->world_size() : 1;
  o->mixed_ = dtype == at::kBFloat16;
  o->params_ = std::move(params);
  for (const auto& p : o->params_) {
    o->offsets_.push_back(o->numel_);
    o->numel_ += p.numel();
  }
  const int shards = options.zero_stage == 0 ? 1 : o->world_;
  const int my_shard = options.zero_stage == 0 ? 0 : o->rank_;
  o->shard_ = CeilDiv(o->numel_, shards);
  o->begin_ = std::min(o->numel_, my_shard * o->shard_);
  o->end_ = std::min(o->numel_, (my_shard + 1) * o->shard_);
  const int64_t len = o->end_ - o->begin_;
  try {
    torch::NoGradGuard no_grad;
    auto opts = torch::TensorOptions().dtype(dtype).device(device);
    auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(device);
    o->flat_params_ = torch::zeros({o->shard_ * shards}, opts);
    for (size_t i = 0; i < o->params_.size(); ++i) {
      at::Tensor& p = o->params_[i];
      o->flat_params_.narrow(0, o->offsets_[i], p.numel()).copy_(p.reshape(-1));
      const std::vector<int64_t> sizes = p.sizes().vec();
      std::vector<int64_t> strides(sizes.size(), 1);
      for (int64_t d = static_cast<int64_t>(sizes.size()) - 2; d >= 0; --d) strides[d] = strides[d + 1] * sizes[d + 1];
      p.set_(o->flat_params_.storage(), o->offsets_[i], sizes, strides);
    }
    o->master_ = o->mixed_ ? o->flat_params_.narrow(0, o->begin_, len).to(torch::kFloat)
                           : o->flat_params_.narrow(0, o->begin_, len);
    o->exp_avg_ = torch::zeros({len}, f32);
    o->exp_avg_sq_ = torch::zeros({len}, f32);
    if (options.zero_stage == 2) {
      o->grad_acc_ = torch::zeros({o->shard_}, f32);
      o->reduced_ = o->grad_acc_.narrow(0, 0, len);
    } else {
      o->grad_acc_ = torch::zeros({o->shard_ * shards}, f32);
      o->reduced_ = o->grad_acc_.narrow(0, o->begin_, len);
      if (!o->mixed_) {  // float32: autograd accumulates straight into the flat buffer
        for (size_t i = 0; i < o->params_.size(); ++i) {
          o->params_[i].mutable_grad() =
              o->grad_acc_.narrow(0, o->offsets_[i], o->params_[i].numel()).view(o->params_[i].sizes());
        }
      }
    }
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(absl::StrCat("optimizer state: ", e.what_without_backtrace()));
  }
  if (options.zero_stage == 2 && options.overlap_grad_reduce && o->world_ > 1) {
    auto reducer = GradBucketReducer::Create(o->params_, o->offsets_, o->shard_,
                                             std::max<int64_t>(1, options.bucket_bytes / 4), group);
    if (!reducer.ok()) return reducer.status();
    o->reducer_ = std::move(*reducer);
  }
  return o;
}

bool ShardedAdamW::AccumulateIsCollective() const { return options_.zero_stage == 2 && world_ > 1; }

void ShardedAdamW::ReleaseParamGrads() {
  for (auto& p : params_) {
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
  }
}

void ShardedAdamW::ZeroGrad() {
  torch::NoGradGuard no_grad;
  grad_acc_.zero_();
  if (reducer_) reducer_->Reset();
  if (mixed_ || options_.zero_stage == 2) ReleaseParamGrads();
}

void ShardedAdamW::GatherGrads(int64_t a, int64_t b, at::Tensor dst) const {
  dst.zero_();
  // The first parameter that ends after a.
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), a);
  size_t i = it == offsets_.begin() ? 0 : static_cast<size_t>(it - offsets_.begin() - 1);
  for (; i < params_.size() && offsets_[i] < b; ++i) {
    const int64_t lo = std::max(a, offsets_[i]);
    const int64_t hi = std::min(b, offsets_[i] + params_[i].numel());
    if (hi <= lo || !params_[i].grad().defined()) continue;
    dst.narrow(0, lo - a, hi - lo).copy_(params_[i].grad().reshape(-1).narrow(0, lo - offsets_[i], hi - lo));
  }
}

absl::Status ShardedAdamW::ReduceScatterFlat(bool from_accumulator, at::Tensor dst, bool accumulate) {
  const int64_t chunk = std::max<int64_t>(1, options_.bucket_bytes / 4 / world_);
  auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(grad_acc_.device());
  for (int64_t off = 0; off < shard_; off += chunk) {
    const int64_t n = std::min(chunk, shard_ - off);
    at::Tensor input = torch::empty({n * world_}, f32);
    for (int r = 0; r < world_; ++r) {
      const int64_t a = r * shard_ + off;
      if (from_accumulator) {
        input.narrow(0, r * n, n).copy_(grad_acc_.narrow(0, a, n));
      } else {
        GatherGrads(a, a + n, input.narrow(0, r * n, n));
      }
    }
    at::Tensor out = accumulate ? torch::empty({n}, f32) : dst.narrow(0, off, n);
    if (absl::Status s = group_->ReduceScatter(input, out); !s.ok()) return s;
    if (accumulate) dst.narrow(0, off, n).add_(out);
  }
  return absl::OkStatus();
}

absl::Status ShardedAdamW::AccumulateGradients() {
  torch::NoGradGuard no_grad;
  try {
    if (options_.zero_stage == 2) {
      if (world_ == 1) {
        at::Tensor g = torch::empty({shard_}, grad_acc_.options());
        GatherGrads(0, shard_, g);
        grad_acc_.add_(g);
      } else {
        // Overlapped: most buckets left during the backward. `late`: some .grad arrived after its bucket
        // had left (every rank agrees) and goes the synchronous way; the others are freed already.
        bool late = true;
        if (reducer_) {
          auto finished = reducer_->Finish(grad_acc_);
          if (!finished.ok()) return finished.status();
          late = *finished;
        }
        if (late) {
          if (absl::Status s = ReduceScatterFlat(/*from_accumulator=*/false, grad_acc_, /*accumulate=*/true); !s.ok()) {
            return s;
          }
        }
      }
      ReleaseParamGrads();
      return absl::OkStatus();
    }
    for (size_t i = 0; i < params_.size(); ++i) {
      at::Tensor& p = params_[i];
      at::Tensor slot = grad_acc_.narrow(0, offsets_[i], p.numel());
      const at::Tensor& g = p.grad();
      if (!mixed_) {
        // float32: autograd added into the slot already, unless something replaced the view.
        if (g.defined() && g.data_ptr() != slot.data_ptr()) {
          slot.add_(g.reshape(-1));
          p.mutable_grad() = slot.view(p.sizes());
        } else if (!g.defined()) {
          p.mutable_grad() = slot.view(p.sizes());
        }
        continue;
      }
      if (g.defined()) slot.add_(g.reshape(-1));  // bf16 -> fp32 accumulation
    }
    if (mixed_) ReleaseParamGrads();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("accumulating gradients: ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> ShardedAdamW::ReduceGradients() {
  torch::NoGradGuard no_grad;
  try {
    if (world_ > 1 && options_.zero_stage == 0) {
      const int64_t chunk = std::max<int64_t>(1, options_.bucket_bytes / 4);
      for (int64_t off = 0; off < numel_; off += chunk) {
        std::vector<at::Tensor> bucket = {grad_acc_.narrow(0, off, std::min(chunk, numel_ - off))};
        if (absl::Status s = group_->AllReduce(bucket); !s.ok()) return s;
      }
    } else if (world_ > 1 && options_.zero_stage == 1) {
      at::Tensor mine = grad_acc_.narrow(0, rank_ * shard_, shard_);
      if (absl::Status s = ReduceScatterFlat(/*from_accumulator=*/true, mine, /*accumulate=*/false); !s.ok()) return s;
    }
    const double local = reduced_.numel() ? reduced_.norm().item<double>() : 0.0;
    double squared = local * local;
    if (world_ > 1 && options_.zero_stage > 0) {
      std::vector<at::Tensor> t = {torch::tensor({squared}, torch::kFloat64)};
      if (absl::Status s = group_->AllReduce(t); !s.ok()) return s;
      squared = t[0].item<double>();
    }
    return std::sqrt(squared);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("reducing gradients: ", e.what_without_backtrace()));
  }
}

absl::Status ShardedAdamW::Step(double lr, double grad_scale) {
  torch::NoGradGuard no_grad;
  try {
    ++steps_;
    const double bias1 = 1 - std::pow(options_.beta1, static_cast<double>(steps_));
    const double bias2 = 1 - std::pow(options_.beta2, static_cast<double>(steps_));
    // The same operations as torch::optim::AdamW, in chunks: the step's temporaries stay bounded
    // (two fp32 chunks) however large the shard.
    const int64_t len = end_ - begin_;
    for (int64_t off = 0; off < len; off += kStepChunk) {
      const int64_t n = std::min(kStepChunk, len - off);
      at::Tensor g = reduced_.narrow(0, off, n), master = master_.narrow(0, off, n);
      at::Tensor m = exp_avg_.narrow(0, off, n), v = exp_avg_sq_.narrow(0, off, n);
      if (grad_scale != 1.0) g.mul_(grad_scale);
      if (options_.weight_decay != 0) master.mul_(1 - lr * options_.weight_decay);
      m.mul_(options_.beta1).add_(g, 1 - options_.beta1);
      v.mul_(options_.beta2).addcmul_(g, g, 1 - options_.beta2);
      at::Tensor denom = (v.sqrt() / std::sqrt(bias2)).add_(options_.eps);
      master.addcdiv_(m, denom, -lr / bias1);
    }
    if (mixed_) flat_params_.narrow(0, begin_, len).copy_(master_);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("optimizer step: ", e.what_without_backtrace()));
  }
  if (options_.zero_stage > 0 && world_ > 1) {
    // Gloo in LibTorch 1.13 has no bfloat16; these collectives only copy, so bf16 bits travel as float16.
    at::Tensor wire = mixed_ ? flat_params_.view(torch::kHalf) : flat_params_;
    // The all-gather as one broadcast per shard from its owner, in place: c10d's Gloo all-gather stages
    // the input and a flat output (1.5x the parameters) and copies them back, which took longer than
    // the step's AdamW; a broadcast moves the same bytes straight into the flat buffer.
    for (int r = 0; r < world_; ++r) {
      at::Tensor slice = wire.narrow(0, r * shard_, shard_);
      if (absl::Status s = group_->Broadcast(slice, r); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

OptimizerMemory ShardedAdamW::Memory() const {
  OptimizerMemory m;
  m.parameters = static_cast<int64_t>(flat_params_.nbytes());
  m.gradients = static_cast<int64_t>(grad_acc_.nbytes());
  m.optimizer = static_cast<int64_t>(exp_avg_.nbytes() + exp_avg_sq_.nbytes()) +
                (mixed_ ? static_cast<int64_t>(master_.nbytes()) : 0);
  return m;
}

absl::Status ShardedAdamW::Save(const std::string& dir) const {
  const int shards = options_.zero_stage == 0 ? 1 : world_;
  const int index = options_.zero_stage == 0 ? 0 : rank_;
  const fs::path folder = fs::path(dir) / "optimizer";
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", folder.string(), ": ", ec.message()));
  if (options_.zero_stage == 0 && rank_ != 0) return absl::OkStatus();  // every rank holds the same state
  try {
    torch::serialize::OutputArchive archive;
    archive.write("begin", torch::tensor({begin_}, torch::kInt64));
    archive.write("end", torch::tensor({end_}, torch::kInt64));
    archive.write("steps", torch::tensor({steps_}, torch::kInt64));
    archive.write("master", master_.to(torch::kCPU));
    archive.write("exp_avg", exp_avg_.to(torch::kCPU));
    archive.write("exp_avg_sq", exp_avg_sq_.to(torch::kCPU));
    archive.save_to((folder / ShardName(index, shards)).string());
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("saving optimizer shard: ", e.what_without_backtrace()));
  }
  if (rank_ == 0) {
    nlohmann::json layout = {{"format", kFormat}, {"numel", numel_},   {"shards", shards},
                             {"zero_stage", options_.zero_stage}, {"mixed", mixed_}, {"steps", steps_}};
    std::ofstream out(folder / "layout.json");
    out << layout.dump(2);
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", (folder / "layout.json").string()));
  }
  return absl::OkStatus();
}

absl::Status ShardedAdamW::Load(const std::string& dir) {
  const fs::path folder = fs::path(dir) / "optimizer";
  std::ifstream in(folder / "layout.json");
  if (!in) return absl::NotFoundError(absl::StrCat("no sharded optimizer state in ", dir));
  const nlohmann::json layout = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!layout.is_object() || layout.value("format", "") != kFormat) {
    return absl::DataLossError(absl::StrCat(folder.string(), "/layout.json: not a ", kFormat, " layout"));
  }
  const int64_t numel = layout.value("numel", int64_t{-1});
  const int shards = layout.value("shards", 0);
  if (numel != numel_) {
    return absl::FailedPreconditionError(absl::StrCat("optimizer state in ", dir, " covers ", numel,
                                                      " trainable elements, this model has ", numel_,
                                                      " (was model.freeze_vision changed?)"));
  }
  if (shards < 1) return absl::DataLossError(absl::StrCat(folder.string(), "/layout.json: bad shard count"));
  const int64_t saved_shard = CeilDiv(numel, shards);
  torch::NoGradGuard no_grad;
  try {
    int64_t steps = -1;
    for (int i = 0; i < shards; ++i) {
      const int64_t a = std::min(numel, i * saved_shard), b = std::min(numel, (i + 1) * saved_shard);
      const int64_t lo = std::max(a, begin_), hi = std::min(b, end_);
      if (hi <= lo && !(i == 0 && steps < 0)) continue;
      const std::string path = (folder / ShardName(i, shards)).string();
      if (!fs::exists(path)) return absl::DataLossError(absl::StrCat("missing optimizer shard ", path));
      torch::serialize::InputArchive archive;
      archive.load_from(path);
      at::Tensor t_begin, t_steps, master, m, v;
      archive.read("begin", t_begin);
      archive.read("steps", t_steps);
      steps = t_steps.item<int64_t>();
      if (t_begin.item<int64_t>() != a) return absl::DataLossError(absl::StrCat(path, ": unexpected range"));
      if (hi <= lo) continue;
      archive.read("master", master);
      archive.read("exp_avg", m);
      archive.read("exp_avg_sq", v);
      if (master.numel() != b - a || m.numel() != b - a || v.numel() != b - a) {
        return absl::DataLossError(absl::StrCat(path, ": tensor sizes do not match its range"));
      }
      master_.narrow(0, lo - begin_, hi - lo).copy_(master.narrow(0, lo - a, hi - lo));
      exp_avg_.narrow(0, lo - begin_, hi - lo).copy_(m.narrow(0, lo - a, hi - lo));
      exp_avg_sq_.narrow(0, lo - begin_, hi - lo).copy_(v.narrow(0, lo - a, hi - lo));
    }
    steps_ = steps;
    if (mixed_) flat_params_.narrow(0, begin_, end_ - begin_).copy_(master_);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("optimizer state in ", dir, ": ", e.what_without_backtrace()));
  }
  return absl::OkStatus();
}

}  // namespace r1r::train
