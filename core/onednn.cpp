#include "core/onednn.hpp"

#include <cstdlib>

#include <omp.h>

#include "core/error.hpp"

namespace xmodal {

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream s(cpu_engine());
  return s;
}

static int g_threads = 0;

void set_num_threads(int n) {
  if (n < 0) throw UsageError("--threads must be >= 0, got " + std::to_string(n));
  g_threads = n;
  // 0: OMP_NUM_THREADS when the user set it (the OpenMP default then honours it), else all cores.
  const char* env = std::getenv("OMP_NUM_THREADS");
  if (n == 0 && env && *env) return;
  omp_set_num_threads(n == 0 ? omp_get_num_procs() : n);
}

int num_threads() { return g_threads == 0 ? omp_get_max_threads() : g_threads; }

PrimitiveCache& PrimitiveCache::instance() {
  static PrimitiveCache c;
  return c;
}

void PrimitiveCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
}

dnnl::memory::data_type dnnl_dtype(DType t) {
  switch (t) {
    case DType::f32: return dnnl::memory::data_type::f32;
    case DType::bf16: return dnnl::memory::data_type::bf16;
    case DType::i32: return dnnl::memory::data_type::s32;
    case DType::u8: return dnnl::memory::data_type::u8;
    default: throw InternalError(std::string("oneDNN has no dtype for ") + dtype_name(t));
  }
}

dnnl::memory::desc md_of(const Tensor& t) {
  dnnl::memory::dims dims(t.shape().begin(), t.shape().end());
  dnnl::memory::dims strides(t.strides().begin(), t.strides().end());
  return dnnl::memory::desc(dims, dnnl_dtype(t.dtype()), strides);
}

dnnl::memory mem_of(const Tensor& t) { return mem_of(t, md_of(t)); }

dnnl::memory mem_of(const Tensor& t, const dnnl::memory::desc& md) {
  return dnnl::memory(md, cpu_engine(), const_cast<void*>(t.raw()));
}

std::string key_of(const dnnl::memory::desc& md) {
  const auto& d = md.data;
  std::string k = "t";  // (built with += only: gcc 12 warns falsely on "lit" + std::string)
  k += std::to_string(static_cast<int>(d.data_type));
  k += "d";
  for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.dims[i]) + ",";
  if (d.format_kind == dnnl_blocked) {
    k += "s";
    for (int i = 0; i < d.ndims; ++i) k += std::to_string(d.format_desc.blocking.strides[i]) + ",";
  } else {
    k += "any";
  }
  return k;
}

}  // namespace xmodal
