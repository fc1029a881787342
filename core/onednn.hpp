// The process-wide oneDNN CPU engine and stream, a primitive cache keyed by a string that
// encodes kind + shapes + attributes, and a creation counter that benchmarks print to prove
// that nothing is created on the hot path after the first call for a shape.
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include <dnnl.hpp>

#include "core/tensor.hpp"

namespace xmodal {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

// Number of threads used by oneDNN (OpenMP) and by our own kernels. 0 = all cores.
void set_num_threads(int n);
int num_threads();

class PrimitiveCache {
 public:
  static PrimitiveCache& instance();
  // Returns the cached primitive for key, creating it with make() on the first request.
  template <class P>
  P get(const std::string& key, const std::function<P()>& make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ++hits_;
      return P(it->second);
    }
    P p = make();
    ++created_;
    cache_.emplace(key, p);
    return p;
  }
  int64_t created() const { return created_; }
  int64_t hits() const { return hits_; }
  size_t size() const { return cache_.size(); }
  void clear();

 private:
  std::mutex mu_;
  std::unordered_map<std::string, dnnl::primitive> cache_;
  int64_t created_ = 0, hits_ = 0;
};

// oneDNN memory descriptor for a tensor (its shape and strides), f32/bf16/i32/u8 only.
dnnl::memory::desc md_of(const Tensor& t);
dnnl::memory::data_type dnnl_dtype(DType t);
// A dnnl::memory wrapping the tensor's data (no copy).
dnnl::memory mem_of(const Tensor& t);
dnnl::memory mem_of(const Tensor& t, const dnnl::memory::desc& md);
// "key" fragment from a memory::desc: dims, strides and dtype.
std::string key_of(const dnnl::memory::desc& md);

}  // namespace xmodal
