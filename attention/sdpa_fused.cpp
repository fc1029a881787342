// Fused scaled dot-product attention for CPUs: one pass over K and V per (batch, kv head,
// query tile) with an online softmax, so the scores never leave L1 and K/V are read once.
// Contract and mask semantics: attention/sdpa.hpp. ISA control: attention/sdpa_fused.hpp.
// The kernel body (attention/sdpa_fused_kernel.inc) is compiled three times below, for
// AVX-512, AVX2+FMA and scalar, and picked at run time with __builtin_cpu_supports.
// GCC 12's AVX-512 headers self-initialise "undefined" vectors (`__m512 __Y = __Y;`), which
// -Wmaybe-uninitialized reports wherever they are inlined; the warning belongs to the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "attention/sdpa_fused.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "attention/sdpa.hpp"
#include "core/error.hpp"
#include "core/onednn.hpp"

namespace xmodal::attn {
namespace {

constexpr int64_t kMaxTileRows = 32;  // >= every ISA's MT and ROW_TILE

// One call's problem: f32 views with unit stride along D, output contiguous [B, Hq, Lq, Dv].
struct Job {
  const float *q, *k, *v;
  int64_t qs[3], ks[3], vs[3];  // strides (elements) of dims 0..2
  float* o;
  int64_t B, Hq, Hkv, G, Lq, Lk, D, Dv;
  float c;  // scale * log2(e): scores go straight into exp2
  const SdpaParams* p;
};

// Per-thread scratch, grown on demand and reused across calls (OpenMP keeps its threads).
struct Scratch {
  float *q = nullptr, *s = nullptr, *o = nullptr;
  alignas(64) float m[kMaxTileRows], l[kMaxTileRows], alpha[kMaxTileRows], lo[kMaxTileRows], hi[kMaxTileRows];
  size_t cq = 0, cs = 0, co = 0;
  static void grow(float*& p, size_t& cap, size_t need) {
    if (need <= cap) return;
    std::free(p);
    const size_t bytes = (need * sizeof(float) + 63) / 64 * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!p) throw InternalError("sdpa_fused: out of memory for " + std::to_string(bytes) + " bytes of scratch");
    cap = need;
  }
  ~Scratch() {
    std::free(q);
    std::free(s);
    std::free(o);
  }
};

Scratch& thread_scratch(size_t nq, size_t ns, size_t no) {
  thread_local Scratch S;
  Scratch::grow(S.q, S.cq, nq);
  Scratch::grow(S.s, S.cs, ns);
  Scratch::grow(S.o, S.co, no);
  return S;
}

}  // namespace

// ============================================================================================
// AVX-512 (F, VL, BW, DQ): 16 lanes.
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
namespace fused_avx512 {
namespace {
struct V {
  static constexpr int W = 16, MT = 32, KJ = 12, MR = 6, NR = 4, NB = 48, NBR = 128;
  static constexpr int TRANSPOSED_MIN_ROWS = 8, ROW_TILE = 7;
  using reg = __m512;
  static __mmask16 tail(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(tail(n), p); }
  static reg load_n_fill(const float* p, int n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail(n), p);
  }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, reg v, int n) { _mm512_mask_storeu_ps(p, tail(n), v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  // 2^x for x <= 0: round-to-nearest split, degree-7 Taylor of 2^f on [-0.5, 0.5] (rel. error
  // < 3e-9 before rounding), scalef for 2^n. x < -126 and NaN give exactly 0.
  [[gnu::always_inline]] static reg exp2(reg x) {
    const __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.f), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(-126.f));
    const reg n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const reg f = _mm512_sub_ps(x, n);
    reg p = _mm512_set1_ps(1.525273380405984e-05f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.5403530393381608e-04f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-02f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265069591007e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471805599453e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
    return _mm512_maskz_mov_ps(ok, _mm512_scalef_ps(p, n));
  }
  static reg swap256(reg v) { return _mm512_shuffle_f32x4(v, v, 0x4E); }
  static reg swap128(reg v) { return _mm512_shuffle_f32x4(v, v, 0xB1); }
  static float hmax(reg v) {
    v = _mm512_max_ps(v, swap256(v));
    v = _mm512_max_ps(v, swap128(v));
    v = _mm512_max_ps(v, _mm512_permute_ps(v, 0x4E));
    v = _mm512_max_ps(v, _mm512_permute_ps(v, 0xB1));
    return _mm512_cvtss_f32(v);
  }
  static float hsum(reg v) {
    v = _mm512_add_ps(v, swap256(v));
    v = _mm512_add_ps(v, swap128(v));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
    return _mm512_cvtss_f32(v);
  }
  // Four vectors -> per 128-bit lane [sum a, sum b, sum c, sum d] (partial over that lane).
  [[gnu::always_inline]] static reg reduce4(reg a, reg b, reg c, reg d) {
    const reg x = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  // a b a b
    const reg y = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));  // c d c d
    const __m512d xd = _mm512_castps_pd(x), yd = _mm512_castps_pd(y);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(xd, yd)), _mm512_castpd_ps(_mm512_unpackhi_pd(xd, yd)));
  }
  // 16 vectors -> one vector whose lane i is the sum of a[i].
  [[gnu::always_inline]] static reg reduce_w(const reg (&a)[W]) {
    const reg z0 = reduce4(a[0], a[1], a[2], a[3]), z1 = reduce4(a[4], a[5], a[6], a[7]);
    const reg z2 = reduce4(a[8], a[9], a[10], a[11]), z3 = reduce4(a[12], a[13], a[14], a[15]);
    const reg w01 = _mm512_add_ps(_mm512_shuffle_f32x4(z0, z1, 0x44), _mm512_shuffle_f32x4(z0, z1, 0xEE));
    const reg w23 = _mm512_add_ps(_mm512_shuffle_f32x4(z2, z3, 0x44), _mm512_shuffle_f32x4(z2, z3, 0xEE));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w01, w23, 0x88), _mm512_shuffle_f32x4(w01, w23, 0xDD));
  }
  // dst[d * ldd + i] = rows[i][d] * c for d < D, i < W; rows i >= nrows give 0 (transposes a
  // tile of query rows into lanes with 16x16 in-register transposes: 64 shuffles per 256 values).
  static void transpose_rows(const float* const* rows, int nrows, int64_t D, float c, float* dst, int64_t ldd) {
    const reg cv = _mm512_set1_ps(c);
    for (int64_t d0 = 0; d0 < D; d0 += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, D - d0));
      reg r[16], a[16];
      for (int i = 0; i < 16; ++i) r[i] = i < nrows ? _mm512_mul_ps(load_n(rows[i] + d0, n), cv) : zero();
      for (int i = 0; i < 16; i += 2) {
        a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int g = 0; g < 16; g += 4) {  // rows 4g'..: per 128-bit lane L, x_m = column 4L+m
        const __m512d a0 = _mm512_castps_pd(a[g]), a1 = _mm512_castps_pd(a[g + 1]);
        const __m512d a2 = _mm512_castps_pd(a[g + 2]), a3 = _mm512_castps_pd(a[g + 3]);
        r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
      }
      for (int m = 0; m < 4; ++m) {  // 4x4 transpose of 128-bit lanes across the four row groups
        const reg y0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x44), y1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xEE);
        const reg y2 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x44),
                  y3 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xEE);
        const reg out[4] = {_mm512_shuffle_f32x4(y0, y2, 0x88), _mm512_shuffle_f32x4(y0, y2, 0xDD),
                            _mm512_shuffle_f32x4(y1, y3, 0x88), _mm512_shuffle_f32x4(y1, y3, 0xDD)};
        for (int L = 0; L < 4; ++L)
          if (4 * L + m < n) store(dst + (d0 + 4 * L + m) * ldd, out[L]);
      }
    }
  }
  // s where lo <= j < hi (per lane), else -inf.
  static reg mask_keys(reg s, reg lo, reg hi, float j) {
    const reg jv = _mm512_set1_ps(j);
    const __mmask16 vis = _mm512_cmp_ps_mask(lo, jv, _CMP_LE_OQ) & _mm512_cmp_ps_mask(jv, hi, _CMP_LT_OQ);
    return _mm512_mask_blend_ps(vis, _mm512_set1_ps(-INFINITY), s);
  }
};
#include "attention/sdpa_fused_kernel.inc"
}  // namespace
}  // namespace fused_avx512
#pragma GCC pop_options

// ============================================================================================
// AVX2 + FMA: 8 lanes.
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace fused_avx2 {
namespace {
struct V {
  static constexpr int W = 8, MT = 16, KJ = 6, MR = 3, NR = 4, NB = 48, NBR = 128;
  static constexpr int TRANSPOSED_MIN_ROWS = 4, ROW_TILE = 3;
  using reg = __m256;
  static __m256i tail(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg load_n(const float* p, int n) { return _mm256_maskload_ps(p, tail(n)); }
  static reg load_n_fill(const float* p, int n, float fill) {
    const __m256i t = tail(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, t), _mm256_castsi256_ps(t));
  }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, reg v, int n) { _mm256_maskstore_ps(p, tail(n), v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  // As the AVX-512 version; 2^n is added into the exponent bits.
  [[gnu::always_inline]] static reg exp2(reg x) {
    const reg ok = _mm256_cmp_ps(x, _mm256_set1_ps(-126.f), _CMP_GE_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-126.f));
    const reg n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const reg f = _mm256_sub_ps(x, n);
    reg p = _mm256_set1_ps(1.525273380405984e-05f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.5403530393381608e-04f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558146428443e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618129107628477e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550410866482158e-02f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402265069591007e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931471805599453e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.f));
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    const reg r = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
    return _mm256_and_ps(r, ok);
  }
  static float hmax(reg v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
  }
  static float hsum(reg v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
  }
  [[gnu::always_inline]] static reg reduce4(reg a, reg b, reg c, reg d) {
    const reg x = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const reg y = _mm256_add_ps(_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
    const __m256d xd = _mm256_castps_pd(x), yd = _mm256_castps_pd(y);
    return _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(xd, yd)), _mm256_castpd_ps(_mm256_unpackhi_pd(xd, yd)));
  }
  [[gnu::always_inline]] static reg reduce_w(const reg (&a)[W]) {
    const reg z0 = reduce4(a[0], a[1], a[2], a[3]), z1 = reduce4(a[4], a[5], a[6], a[7]);
    return _mm256_add_ps(_mm256_permute2f128_ps(z0, z1, 0x20), _mm256_permute2f128_ps(z0, z1, 0x31));
  }
  // As the AVX-512 version, 8x8 blocks.
  static void transpose_rows(const float* const* rows, int nrows, int64_t D, float c, float* dst, int64_t ldd) {
    const reg cv = _mm256_set1_ps(c);
    for (int64_t d0 = 0; d0 < D; d0 += 8) {
      const int n = static_cast<int>(std::min<int64_t>(8, D - d0));
      reg r[8], a[8];
      for (int i = 0; i < 8; ++i) r[i] = i < nrows ? _mm256_mul_ps(load_n(rows[i] + d0, n), cv) : zero();
      for (int i = 0; i < 8; i += 2) {
        a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int g = 0; g < 8; g += 4) {
        const __m256d a0 = _mm256_castps_pd(a[g]), a1 = _mm256_castps_pd(a[g + 1]);
        const __m256d a2 = _mm256_castps_pd(a[g + 2]), a3 = _mm256_castps_pd(a[g + 3]);
        r[g] = _mm256_castpd_ps(_mm256_unpacklo_pd(a0, a2));
        r[g + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a0, a2));
        r[g + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(a1, a3));
        r[g + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(a1, a3));
      }
      for (int m = 0; m < 4; ++m) {  // column 4L+m: lane half 0 from rows 0-3, half 1 from rows 4-7
        const reg lo = _mm256_permute2f128_ps(r[m], r[4 + m], 0x20), hi = _mm256_permute2f128_ps(r[m], r[4 + m], 0x31);
        if (m < n) store(dst + (d0 + m) * ldd, lo);
        if (4 + m < n) store(dst + (d0 + 4 + m) * ldd, hi);
      }
    }
  }
  static reg mask_keys(reg s, reg lo, reg hi, float j) {
    const reg jv = _mm256_set1_ps(j);
    const reg vis = _mm256_and_ps(_mm256_cmp_ps(lo, jv, _CMP_LE_OQ), _mm256_cmp_ps(jv, hi, _CMP_LT_OQ));
    return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), s, vis);
  }
};
#include "attention/sdpa_fused_kernel.inc"
}  // namespace
}  // namespace fused_avx2
#pragma GCC pop_options

// ============================================================================================
// Scalar: 1 lane, row engine only (the transposed engine is compiled but never chosen).
namespace fused_scalar {
namespace {
struct V {
  static constexpr int W = 1, MT = 2, KJ = 4, MR = 4, NR = 4, NB = 48, NBR = 128;
  static constexpr int TRANSPOSED_MIN_ROWS = 1 << 30, ROW_TILE = 8;
  using reg = float;
  static reg zero() { return 0.f; }
  static reg set1(float x) { return x; }
  static reg load(const float* p) { return *p; }
  static reg load_n(const float* p, int n) { return n > 0 ? *p : 0.f; }
  static reg load_n_fill(const float* p, int n, float fill) { return n > 0 ? *p : fill; }
  static void store(float* p, reg v) { *p = v; }
  static void store_n(float* p, reg v, int n) {
    if (n > 0) *p = v;
  }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  [[gnu::always_inline]] static reg exp2(reg x) { return x >= -126.f ? std::exp2(x) : 0.f; }
  static float hmax(reg v) { return v; }
  static float hsum(reg v) { return v; }
  [[gnu::always_inline]] static reg reduce_w(const reg (&a)[W]) { return a[0]; }
  static void transpose_rows(const float* const* rows, int nrows, int64_t D, float c, float* dst, int64_t ldd) {
    for (int64_t d = 0; d < D; ++d) dst[d * ldd] = nrows > 0 ? rows[0][d] * c : 0.f;
  }
  static reg mask_keys(reg s, reg lo, reg hi, float j) { return (lo <= j && j < hi) ? s : -INFINITY; }
};
#include "attention/sdpa_fused_kernel.inc"
}  // namespace
}  // namespace fused_scalar

// ============================================================================================
// Dispatch

namespace {
bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}
bool cpu_has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

std::atomic<SdpaIsa> g_isa{SdpaIsa::best};

SdpaIsa resolve(SdpaIsa isa) {
  if (isa != SdpaIsa::best) return isa;
  if (cpu_has_avx512()) return SdpaIsa::avx512;
  if (cpu_has_avx2()) return SdpaIsa::avx2;
  return SdpaIsa::scalar;
}

// Below this many multiply-adds the OpenMP fork/join costs more than it saves.
constexpr double kParallelMinFlops = 4e5;
}  // namespace

bool sdpa_fused_isa_supported(SdpaIsa isa) {
  switch (isa) {
    case SdpaIsa::best:
    case SdpaIsa::scalar: return true;
    case SdpaIsa::avx2: return cpu_has_avx2();
    case SdpaIsa::avx512: return cpu_has_avx512();
  }
  return false;
}

void sdpa_fused_set_isa(SdpaIsa isa) {
  if (!sdpa_fused_isa_supported(isa))
    throw InternalError(std::string("sdpa_fused: this CPU cannot run the ") +
                        (isa == SdpaIsa::avx512 ? "avx512" : "avx2") + " kernel");
  g_isa = isa;
}

std::string sdpa_fused_isa() {
  switch (resolve(g_isa)) {
    case SdpaIsa::avx512: return "avx512";
    case SdpaIsa::avx2: return "avx2";
    default: return "scalar";
  }
}

// q [B, Hq, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv] (f32 or bf16, any strides) -> [B, Hq, Lq, Dv] f32
Tensor sdpa_fused(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaParams& p) {
  check_sdpa_shapes(q, k, v, p);
  Tensor out = Tensor::empty({q.size(0), q.size(1), q.size(2), v.size(3)});
  sdpa_fused_into(q, k, v, p, out);
  return out;
}

// same, into out [B, Hq, Lq, Dv] (contiguous f32)
void sdpa_fused_into(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const SdpaParams& p, Tensor& out) {
  check_sdpa_shapes(q_in, k_in, v_in, p);
  const Shape want{q_in.size(0), q_in.size(1), q_in.size(2), v_in.size(3)};
  if (out.dtype() != DType::f32 || !out.is_contiguous() || out.shape() != want)
    throw InternalError("sdpa_fused: out is " + out.describe() + (out.is_contiguous() ? "" : " (strided)") +
                        ", expected contiguous f32" + shape_str(want));
  if (out.numel() == 0) return;
  // f32 with unit stride along the head dim; other strides are used as they are (no copy for
  // the usual [B, L, H, D] -> [B, H, L, D] transposed views).
  auto prep = [](const Tensor& t) {
    if (t.dtype() != DType::f32) return t.to(DType::f32);
    if (t.size(3) > 1 && t.strides()[3] != 1) return t.contiguous();
    return t;
  };
  const Tensor q = prep(q_in), k = prep(k_in), v = prep(v_in);
  const int64_t B = q.size(0), Hq = q.size(1), Lq = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), Lk = k.size(2), Dv = v.size(3);
  Job J{};
  J.q = q.f32();
  J.k = k.f32();
  J.v = v.f32();
  for (int d = 0; d < 3; ++d) {
    J.qs[d] = q.strides()[static_cast<size_t>(d)];
    J.ks[d] = k.strides()[static_cast<size_t>(d)];
    J.vs[d] = v.strides()[static_cast<size_t>(d)];
  }
  J.o = out.f32();
  J.B = B;
  J.Hq = Hq;
  J.Hkv = Hkv;
  J.G = Hq / Hkv;
  J.Lq = Lq;
  J.Lk = Lk;
  J.D = D;
  J.Dv = Dv;
  J.c = sdpa_scale(p, D) * static_cast<float>(M_LOG2E);
  J.p = &p;
  const double flops = 2.0 * static_cast<double>(B * Hq * Lq) * static_cast<double>(Lk) * static_cast<double>(D + Dv);
  const int threads = flops < kParallelMinFlops ? 1 : num_threads();
  switch (resolve(g_isa)) {
    case SdpaIsa::avx512: fused_avx512::run(J, threads); break;
    case SdpaIsa::avx2: fused_avx2::run(J, threads); break;
    default: fused_scalar::run(J, threads); break;
  }
}

}  // namespace xmodal::attn
