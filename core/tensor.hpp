// Tensor: a typed, strided n-d array that owns its memory (64-byte aligned) or views someone
// else's (a safetensors mmap, an arena). Storage is shared, so a view keeps its owner alive and
// moves and copies are cheap. Layout is row-major unless strides say otherwise.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace xmodal {

enum class DType : uint8_t { f32, bf16, i32, i64, u8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "bf16", ...

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
// Product of dims; throws InternalError on a negative dim or int64 overflow.
int64_t shape_numel(const Shape& s);

// bf16 <-> f32 (round to nearest even; NaN stays NaN).
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t b);

class Tensor {
 public:
  Tensor() = default;

  // New owned, 64-byte aligned, uninitialised / zeroed memory.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  // Owned f32 copy of the values, with the given shape.
  static Tensor from(const Shape& shape, const std::vector<float>& values);
  // A view of memory owned elsewhere. `owner` (may be null) is kept alive by the view.
  static Tensor view_of(void* data, const Shape& shape, DType dtype,
                        std::shared_ptr<void> owner = nullptr, Shape strides = {});

  bool defined() const { return data_ != nullptr || numel() == 0; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }  // in elements
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool is_contiguous() const;

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  // Typed access; checks the dtype.
  template <class T> T* data();
  template <class T> const T* data() const;
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }

  // Views sharing storage.
  Tensor reshape(const Shape& shape) const;     // contiguous only; one dim may be -1
  Tensor slice(int64_t d, int64_t begin, int64_t end) const;  // [begin, end) along d
  Tensor select(int64_t d, int64_t index) const;              // drops dim d
  Tensor transpose(int64_t a, int64_t b) const;               // strided view
  // Owned, contiguous copies.
  Tensor contiguous() const;  // returns *this when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;  // f32 <-> bf16 conversions; same dtype clones

  std::string describe() const;  // "f32[2, 3]"

 private:
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
  DType dtype_ = DType::f32;
  Shape shape_, strides_;
  int64_t numel_ = 0;
};

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<uint16_t> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };

void check_dtype(const Tensor& t, DType want);

template <class T> T* Tensor::data() {
  check_dtype(*this, dtype_of<T>::value);
  return static_cast<T*>(data_);
}
template <class T> const T* Tensor::data() const {
  check_dtype(*this, dtype_of<T>::value);
  return static_cast<const T*>(data_);
}

// Largest |a-b| over two f32 tensors of the same shape (any strides).
float max_abs_diff(const Tensor& a, const Tensor& b);

}  // namespace xmodal
