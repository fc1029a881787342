// Controls for the fused SDPA kernel (attention/sdpa_fused.cpp); the kernel's contract is
// sdpa_fused() in attention/sdpa.hpp. Tests and benches use these to run every code path on a
// machine that supports the widest one.
#pragma once
#include <string>

#include "core/tensor.hpp"

namespace xmodal::attn {

// sdpa_fused (attention/sdpa.hpp) writing into a preallocated contiguous f32 out
// [B, Hq, Lq, Dv]: nothing is allocated per call (the hot decode loop, benches).
struct SdpaParams;
void sdpa_fused_into(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p, Tensor& out);

enum class SdpaIsa { best, avx512, avx2, scalar };

// The instruction set sdpa_fused() uses from now on. `best` (the default) picks AVX-512 when
// the CPU has avx512f/vl/bw/dq, else AVX2 with FMA, else scalar. Forcing an ISA the CPU lacks
// throws InternalError. Not thread-safe against concurrent sdpa_fused() calls.
void sdpa_fused_set_isa(SdpaIsa isa);
// The ISA the next call will run: "avx512", "avx2" or "scalar".
std::string sdpa_fused_isa();
// Whether this CPU can run the given ISA.
bool sdpa_fused_isa_supported(SdpaIsa isa);

}  // namespace xmodal::attn
