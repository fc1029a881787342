#include "core/tensor.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/error.hpp"

namespace xmodal {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bf16: return 2;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::u8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bf16: return "bf16";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::u8: return "u8";
  }
  return "?";
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw InternalError("negative dimension in shape " + shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw InternalError("shape " + shape_str(s) + " overflows int64");
    n *= d;
  }
  return n;
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

static Shape row_major_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

void check_dtype(const Tensor& t, DType want) {
  if (t.dtype() != want)
    throw InternalError(std::string("tensor has dtype ") + dtype_name(t.dtype()) + ", expected " + dtype_name(want));
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = row_major_strides(shape);
  size_t bytes = static_cast<size_t>(t.numel_) * dtype_size(dtype);
  size_t alloc = (bytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  if (!p) throw InternalError("out of memory allocating " + std::to_string(bytes) + " bytes for " + shape_str(shape));
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::from(const Shape& shape, const std::vector<float>& values) {
  Tensor t = empty(shape, DType::f32);
  if (static_cast<int64_t>(values.size()) != t.numel_)
    throw InternalError("Tensor::from: " + std::to_string(values.size()) + " values for shape " + shape_str(shape));
  std::memcpy(t.data_, values.data(), t.nbytes());
  return t;
}

Tensor Tensor::view_of(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner, Shape strides) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dtype;
  t.shape_ = shape;
  if (strides.empty()) strides = row_major_strides(shape);
  if (strides.size() != shape.size()) throw InternalError("view_of: strides rank differs from shape rank");
  t.strides_ = std::move(strides);
  t.storage_ = std::move(owner);
  t.data_ = data;
  return t;
}

int64_t Tensor::size(int64_t d) const {
  if (d < 0) d += dim();
  if (d < 0 || d >= dim()) throw InternalError("dimension " + std::to_string(d) + " out of range for " + describe());
  return shape_[static_cast<size_t>(d)];
}

bool Tensor::is_contiguous() const { return strides_ == row_major_strides(shape_) || numel_ <= 1; }

Tensor Tensor::reshape(const Shape& shape) const {
  if (!is_contiguous()) throw InternalError("reshape of a non-contiguous tensor " + describe());
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) throw InternalError("reshape: more than one -1 in " + shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel_ % known) throw InternalError("reshape " + describe() + " to " + shape_str(shape));
    s[static_cast<size_t>(infer)] = numel_ / known;
  }
  if (shape_numel(s) != numel_) throw InternalError("reshape " + describe() + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = row_major_strides(s);
  return t;
}

Tensor Tensor::slice(int64_t d, int64_t begin, int64_t end) const {
  if (d < 0) d += dim();
  int64_t n = size(d);
  if (begin < 0 || end > n || begin > end)
    throw InternalError("slice [" + std::to_string(begin) + ", " + std::to_string(end) + ") of dim " + std::to_string(d) + " in " + describe());
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + begin * strides_[static_cast<size_t>(d)] * static_cast<int64_t>(dtype_size(dtype_));
  t.shape_[static_cast<size_t>(d)] = end - begin;
  t.numel_ = shape_numel(t.shape_);
  return t;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  if (d < 0) d += dim();
  Tensor t = slice(d, index, index + 1);
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  if (a < 0) a += dim();
  if (b < 0) b += dim();
  size(a);
  size(b);
  Tensor t = *this;
  std::swap(t.shape_[static_cast<size_t>(a)], t.shape_[static_cast<size_t>(b)]);
  std::swap(t.strides_[static_cast<size_t>(a)], t.strides_[static_cast<size_t>(b)]);
  return t;
}

// Copy any-strided src into contiguous dst of the same shape and element size.
static void strided_copy(const Tensor& src, char* dst) {
  size_t es = dtype_size(src.dtype());
  const int64_t n = src.numel();
  if (n == 0) return;
  const int64_t nd = src.dim();
  std::vector<int64_t> idx(static_cast<size_t>(nd), 0);
  const char* base = static_cast<const char*>(src.raw());
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int64_t k = 0; k < nd; ++k) off += idx[static_cast<size_t>(k)] * src.strides()[static_cast<size_t>(k)];
    std::memcpy(dst + i * static_cast<int64_t>(es), base + off * static_cast<int64_t>(es), es);
    for (int64_t k = nd - 1; k >= 0; --k) {
      if (++idx[static_cast<size_t>(k)] < src.shape()[static_cast<size_t>(k)]) break;
      idx[static_cast<size_t>(k)] = 0;
    }
  }
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  if (is_contiguous())
    std::memcpy(t.data_, data_, nbytes());
  else
    strided_copy(*this, static_cast<char*>(t.data_));
  return t;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  Tensor src = contiguous();
  Tensor t = empty(shape_, dtype);
  if (dtype_ == DType::f32 && dtype == DType::bf16) {
    const float* s = src.f32();
    uint16_t* d = t.data<uint16_t>();
    for (int64_t i = 0; i < numel_; ++i) d[i] = f32_to_bf16(s[i]);
  } else if (dtype_ == DType::bf16 && dtype == DType::f32) {
    const uint16_t* s = src.data<uint16_t>();
    float* d = t.f32();
    for (int64_t i = 0; i < numel_; ++i) d[i] = bf16_to_f32(s[i]);
  } else {
    throw InternalError(std::string("no conversion from ") + dtype_name(dtype_) + " to " + dtype_name(dtype));
  }
  return t;
}

std::string Tensor::describe() const { return std::string(dtype_name(dtype_)) + shape_str(shape_); }

float max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) throw InternalError("max_abs_diff: shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()));
  Tensor ca = a.contiguous(), cb = b.contiguous();
  const float* pa = ca.f32();
  const float* pb = cb.f32();
  float m = 0.f;
  for (int64_t i = 0; i < ca.numel(); ++i) {
    float d = pa[i] - pb[i];
    if (d < 0) d = -d;
    if (!(d <= m)) m = d;  // NaN propagates as "greater"
  }
  return m;
}

}  // namespace xmodal
